"""The built-in backend kinds, one module each (see ``prose_sim.models.registry``)."""
