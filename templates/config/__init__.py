"""Templates: config."""
