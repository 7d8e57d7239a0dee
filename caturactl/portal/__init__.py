"""The partner portal: a small web application over the dropship services for partners without
an ERP (issue 18). ``caturactl portal serve`` runs it; ``app.build`` makes the ASGI app."""
