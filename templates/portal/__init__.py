"""The partner portal's pages (Jinja2), its message catalog and its static files (htmx, CSS)."""
