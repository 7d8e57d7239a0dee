"""Templates: carriers."""
