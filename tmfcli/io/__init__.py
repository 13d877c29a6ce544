"""Input and output: experiment specs, result directories and manifests, policy files."""
