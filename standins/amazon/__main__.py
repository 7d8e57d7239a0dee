"""Run the SP-API stand-in in the foreground.

    python -m standins.amazon --port 8600 --orders 200 --seed 1 [--day 2026-11-24] [--rate-scale 1.0]
                              [--client-id ID --client-secret S --refresh-token T]
"""

from __future__ import annotations

from ..http import options, serve_until_stopped
from .server import AmazonStandin


def main(argv: list[str] | None = None) -> int:
    p = options("python -m standins.amazon", "Local Amazon SP-API stand-in", port=8600, orders=200)
    p.add_argument("--rate-scale", type=float, default=1.0)
    p.add_argument("--client-id", default="standin-client")
    p.add_argument("--client-secret", default="standin-secret")
    p.add_argument("--refresh-token", default="standin-refresh")
    a = p.parse_args(argv)

    s = AmazonStandin(orders=a.orders, seed=a.seed, day=a.day, rate_scale=a.rate_scale,
                      client_id=a.client_id, client_secret=a.client_secret, refresh_token=a.refresh_token,
                      host=a.host, port=a.port).start()
    return serve_until_stopped(s, [
        f"Amazon SP-API stand-in on {s.url}",
        f"  LWA token URL:  {s.lwa_url}",
        f"  client_id:      {s.client_id}",
        f"  client_secret:  {s.client_secret}",
        f"  refresh_token:  {s.refresh_token}",
        f"  orders:         {len(s.order_ids())} on {a.day} (seed {a.seed}), clock {s.now().isoformat()}",
        f"  rate scale:     {a.rate_scale}",
        f"  admin:          {s.url}/_standin/stats  (Ctrl-C to stop)"])


if __name__ == "__main__":
    raise SystemExit(main())
