"""Local stand-in for Amazon's Selling Partner API (LWA + Orders v2026-01-01).

    from standins.amazon import AmazonStandin, Fault
    with AmazonStandin(orders=200, seed=1) as s:
        ...  # point python-amazon-sp-api at s.url / s.lwa_url

See ``server.py`` (HTTP behaviour) and ``marketplace.py`` (generated data, money
and PII assumptions).  ``python -m standins.amazon`` runs one in the foreground.
"""

from .server import AmazonStandin, Fault

__all__ = ["AmazonStandin", "Fault"]
