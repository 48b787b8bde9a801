"""The actors of an episode: simulated user, writing agent, inferrer, judge."""
