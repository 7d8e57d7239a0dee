"""Local stand-in for the Shopware 6 Admin API (OAuth, order search, state transitions, tracking codes).

    from standins.shopware import ShopwareStandin, Fault
    with ShopwareStandin(orders=120, seed=1) as s:
        ...  # point [shop] url at s.url, client_id/secret at s.client_id / s.client_secret

See ``server.py`` (HTTP behaviour, each with its source) and ``shop.py`` (the generated shop).
"""

from .server import Fault, ShopwareStandin

__all__ = ["Fault", "ShopwareStandin"]
