"""The finite-N system, simulated exactly on counts (and agent by agent, as the reference)."""
