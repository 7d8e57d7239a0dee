"""Templates: mail."""
