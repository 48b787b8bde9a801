"""Model backends, one file each; ``build_backend`` picks one for a model spec."""
