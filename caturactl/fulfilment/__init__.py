"""Fulfilment: routing to a location, the carrier matrix, delivery files out, tracking and confirmations in, business deadlines."""
