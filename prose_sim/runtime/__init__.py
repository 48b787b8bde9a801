"""Running simulations: the bus, the event log, the runner."""
