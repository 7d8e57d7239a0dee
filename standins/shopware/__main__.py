"""Run the Shopware Admin API stand-in in the foreground.

    python -m standins.shopware --port 8610 --orders 120 --seed 1 [--day 2026-11-24]
"""

from __future__ import annotations

from ..http import options, serve_until_stopped
from .server import ShopwareStandin


def main(argv: list[str] | None = None) -> int:
    p = options("python -m standins.shopware", "Local Shopware 6 Admin API stand-in", port=8610, orders=120)
    a = p.parse_args(argv)
    s = ShopwareStandin(orders=a.orders, seed=a.seed, day=a.day, host=a.host, port=a.port).start()
    return serve_until_stopped(s, [
        f"Shopware Admin API stand-in on {s.url}  (client_id {s.client_id}, secret {s.client_secret})",
        f"  orders: {len(s.shop.order_ids())} placed on {a.day} (seed {a.seed}), clock {s.now().isoformat()}",
        f"  admin:  {s.url}/_standin/transitions  (Ctrl-C to stop)"])


if __name__ == "__main__":
    raise SystemExit(main())
