"""The only door to models: requests, backends, and the gateway around them."""
