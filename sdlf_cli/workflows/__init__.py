"""Use cases the CLI commands call: each takes the config model and a client factory, returns a result."""
