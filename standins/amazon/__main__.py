"""Run the SP-API stand-in in the foreground.

    python -m standins.amazon --port 8600 --orders 200 --seed 1 [--day 2026-11-24] [--rate-scale 1.0]
                              [--client-id ID --client-secret S --refresh-token T]
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading

from .server import AmazonStandin


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m standins.amazon", description="Local Amazon SP-API stand-in")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8600)
    p.add_argument("--orders", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2026, 11, 24))
    p.add_argument("--rate-scale", type=float, default=1.0)
    p.add_argument("--client-id", default="standin-client")
    p.add_argument("--client-secret", default="standin-secret")
    p.add_argument("--refresh-token", default="standin-refresh")
    a = p.parse_args(argv)

    s = AmazonStandin(orders=a.orders, seed=a.seed, day=a.day, rate_scale=a.rate_scale,
                      client_id=a.client_id, client_secret=a.client_secret, refresh_token=a.refresh_token,
                      host=a.host, port=a.port).start()
    print(f"Amazon SP-API stand-in on {s.url}", flush=True)
    print(f"  LWA token URL:  {s.lwa_url}")
    print(f"  client_id:      {s.client_id}")
    print(f"  client_secret:  {s.client_secret}")
    print(f"  refresh_token:  {s.refresh_token}")
    print(f"  orders:         {len(s.order_ids())} on {a.day} (seed {a.seed}), clock {s.now().isoformat()}")
    print(f"  rate scale:     {a.rate_scale}")
    print(f"  admin:          {s.url}/_standin/stats  (Ctrl-C to stop)", flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        s.stop()
        print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
