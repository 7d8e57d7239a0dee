"""Layouts and assets shipped with caturactl."""
