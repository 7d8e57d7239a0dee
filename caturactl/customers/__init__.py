"""Customers: who bought, matched across orders."""
