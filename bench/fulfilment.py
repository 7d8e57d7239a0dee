"""Benchmark of routing, the carrier matrix and rendering for many deliveries, on SQLite.

    python bench/fulfilment.py [--sizes 10000,100000] [--db sqlite|URL]

Figures go to stdout as ``name: value`` lines, nothing else; notes go to stderr.

For each size N a fresh database gets N released orders (1-3 lines from the stand-in catalogue,
DE/FR/IT/ES addresses, about 6 % express) and stock at two locations: the own warehouse (DHL
CSV) holds every second SKU, the fulfiller (order XML) holds everything. Then, timed:

- route: ``Router.run`` -- split by stock, the carrier matrix for each part, delivery notes with
  their lines, reservations and events, committed per batch;
- render: ``shipping.export(dry_run=True)`` -- every delivery note rendered in its location's
  format (DHL CSV or fulfiller XML) through the same code as ``ship export``, nothing queued.

No network and no PDF (a PDF delivery note costs about 10 ms; that is a per-location option).
``growth`` is the time per delivery at the largest size divided by that at the smallest: 1.0
means linear.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import tomllib
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import func, insert, select  # noqa: E402

from caturactl.fulfilment import shipping  # noqa: E402
from caturactl.config import Config  # noqa: E402
from caturactl.migrations.apply import upgrade  # noqa: E402
from caturactl.fulfilment.models import DeliveryNote, Stock  # noqa: E402
from caturactl.catalogue.models import Product
from caturactl.orders.models import Order, OrderLine
from caturactl.core.db import make_engine, make_sessionmaker  # noqa: E402
from caturactl.fulfilment.routing import Router  # noqa: E402
from carriers import formats  # noqa: E402
from standins.amazon.marketplace import CATALOGUE  # noqa: E402
from tests import fulfilment  # noqa: E402

CITIES = {"DE": ("Berlin", "10115", "Hauptstraße 12"), "FR": ("Paris", "75001", "12 Rue de Rivoli"),
          "IT": ("Milano", "20121", "Via Roma 3"), "ES": ("Madrid", "28001", "Calle Mayor 5")}
MARKETPLACE = {"DE": "A1PA6795UKMFR9", "FR": "A13V1IB3VIYZZH", "IT": "APJ6JRA9NG5V4", "ES": "A1RKKUPIHCS9HS"}


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def config(url: str, tmp: Path) -> Config:
    raw = (f'[database]\nurl = "{url}"\n' + fulfilment.carrier_section() + fulfilment.locations(documents="[]")
           + fulfilment.folder_transport("wh", tmp / "wh") + fulfilment.folder_transport("ful", tmp / "ful"))
    return Config.model_validate(tomllib.loads(raw))


def populate(engine, n: int, seed: int) -> None:
    rng = random.Random(seed)
    skus = [p["sku"] for p in CATALOGUE]
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(insert(Product), [{"sku": p["sku"], "title": p["title"], "listing_id": p["asin"],
                                        "price": Decimal(p["price"]), "weight_g": p["weight_g"],
                                        "length_mm": p["length_mm"], "width_mm": p["width_mm"],
                                        "height_mm": p["height_mm"], "active": True} for p in CATALOGUE])
        stock = [{"location": "FUL", "sku": s, "on_hand": 10 * n, "reserved": 0, "updated_at": now} for s in skus]
        stock += [{"location": "WH", "sku": s, "on_hand": 10 * n, "reserved": 0, "updated_at": now} for s in skus[::2]]
        conn.execute(insert(Stock), stock)
        for start in range(0, n, 5000):
            orders, lines = [], []
            for i in range(start, min(n, start + 5000)):
                country = rng.choices(list(CITIES), weights=(60, 15, 13, 12))[0]
                city, code, street = CITIES[country]
                orders.append({"id": i + 1, "channel": "amazon", "external_id": f"302-{i:07d}-{seed:07d}",
                               "marketplace_id": MARKETPLACE[country], "marketplace_name": f"Amazon.{country.lower()}",
                               "state": "released", "remote_status": "UNSHIPPED",
                               "service_level": "EXPEDITED" if rng.random() < 0.06 else "STANDARD",
                               "created_at": now - timedelta(minutes=n - i), "remote_updated_at": now,
                               "imported_at": now, "updated_at": now, "buyer_email": f"b{i}@marketplace.amazon.de",
                               "buyer_name": f"Käufer {i}", "ship_name": f"Käufer {i}", "ship_line1": street,
                               "ship_postal_code": code, "ship_city": city, "ship_country": country, "raw": {}})
                for pos, sku in enumerate(rng.sample(skus, rng.choices((1, 2, 3), weights=(70, 22, 8))[0]), 1):
                    p = CATALOGUE[skus.index(sku)]
                    lines.append({"order_id": i + 1, "position": pos, "external_id": f"{i:08d}{pos:04d}",
                                  "sku": sku, "title": p["title"], "quantity": rng.choices((1, 2), (85, 15))[0],
                                  "unit_price": Decimal(p["price"])})
            conn.execute(insert(Order), orders)
            conn.execute(insert(OrderLine), lines)


def run(n: int, tmp: Path, seed: int) -> dict[str, float]:
    url = f"sqlite:///{tmp / f'bench_{n}.db'}"
    engine = make_engine(url)
    upgrade(engine)
    note(f"{n} orders: populating")
    populate(engine, n, seed)
    cfg = config(url, tmp)
    sessions = make_sessionmaker(engine)
    with sessions() as s:
        note(f"{n} orders: routing")
        t0 = time.perf_counter()
        r = Router(s, cfg).run()
        t1 = time.perf_counter()
        deliveries = s.scalar(select(func.count()).select_from(DeliveryNote))
        note(f"{n} orders: {r.routed} routed, {r.deliveries} deliveries, {len(r.held)} held; rendering")
        t2 = time.perf_counter()
        e = shipping.export(s, cfg, formats(), dry_run=True)
        t3 = time.perf_counter()
        assert e.exported == deliveries and not e.failed, e.failed[:3]
    engine.dispose()
    return {"deliveries": deliveries, "route_s": t1 - t0, "render_s": t3 - t2, "held": len(r.held)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for n in sizes:
            results[n] = run(n, tmp, args.seed)
    for n, r in results.items():
        total = r["route_s"] + r["render_s"]
        print(f"deliveries_{n}: {r['deliveries']}")
        print(f"route_per_s_{n}: {r['deliveries'] / r['route_s']:.0f}")
        print(f"render_per_s_{n}: {r['deliveries'] / r['render_s']:.0f}")
        print(f"deliveries_per_s_{n}: {r['deliveries'] / total:.0f}")
    small, large = min(sizes), max(sizes)
    per = {n: (results[n]["route_s"] + results[n]["render_s"]) / results[n]["deliveries"] for n in sizes}
    print(f"growth_{small}_to_{large}: {per[large] / per[small]:.2f}")


if __name__ == "__main__":
    main()
