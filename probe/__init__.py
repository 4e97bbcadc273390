"""The probe: lives inside the training loop, measures geometry, publishes it."""
