"""Invoice layouts and assets (package data; read with importlib.resources)."""
