"""AegisTrader monitor API: what the delivery toolkit deploys, probes and verifies."""
