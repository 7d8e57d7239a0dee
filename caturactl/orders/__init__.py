"""Orders: their import from the channels, triage and tickets, and what is asked of buyers after delivery."""
