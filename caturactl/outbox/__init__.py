"""The outbox: every message to the outside world, written in the transaction that decided it and sent afterwards."""
