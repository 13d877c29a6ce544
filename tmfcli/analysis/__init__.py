"""Statistics and bounds over results: bootstrap fits, the reference bound, figures."""
