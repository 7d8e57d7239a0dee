"""Run the Shopware Admin API stand-in in the foreground.

    python -m standins.shopware --port 8610 --orders 120 --seed 1 [--day 2026-11-24]
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import threading

from .server import ShopwareStandin


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m standins.shopware", description="Local Shopware 6 Admin API stand-in")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8610)
    p.add_argument("--orders", type=int, default=120)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2026, 11, 24))
    a = p.parse_args(argv)
    s = ShopwareStandin(orders=a.orders, seed=a.seed, day=a.day, host=a.host, port=a.port).start()
    print(f"Shopware Admin API stand-in on {s.url}  (client_id {s.client_id}, secret {s.client_secret})")
    print(f"  orders: {len(s.shop.order_ids())} placed on {a.day} (seed {a.seed}), clock {s.now().isoformat()}")
    print(f"  admin:  {s.url}/_standin/transitions  (Ctrl-C to stop)", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        s.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
