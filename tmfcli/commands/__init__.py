"""What each command runs: a validated spec in, tables and a manifest out (the CLI is thin)."""
