"""Benchmark of the shop's order import next to Amazon's: the same number of orders from each
stand-in, imported in one run, each channel into a fresh database.

    python bench/shop_import.py [--orders 500] [--repeat 3] [--db sqlite|URL]

Figures go to stdout as ``name: value`` lines, nothing else; notes go to stderr.

Both stand-ins hold ``--orders`` orders of the same catalogue, with practically no rate limit
(Amazon's scaled by 10^6; the Shopware Admin API has none of its own), so what is measured is
the work per order, not the waiting. For each channel: a bare pass that only pages through the
stand-in's order search with the channel's own HTTP client and criteria (Amazon: sp_api's
searchOrders, 100 a page; the shop: ``POST /api/search/order`` with every association, 100 a
page), then the import as ``caturactl import orders --channel NAME`` runs it (parsing, customer
matching, triage, storing; for the shop also the payment each order owes, the payment queue),
best of ``--repeat``, each into a fresh database. Figures:

- ``<channel>_ms_per_order``: the whole import, per order;
- ``<channel>_fetch_ms_per_order``: the bare pass, per order (the stand-in and HTTP);
- ``<channel>_our_ms_per_order``: the difference, our own work per order;
- ``shop_to_amazon_ratio`` and ``shop_to_amazon_our_ratio``: the shop's figure over Amazon's.

``--db URL`` (PostgreSQL): each import gets its own scratch database on that server, as in
``bench/import.py``, whose set-up this bench shares.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # ``standins`` lives in the source checkout, not in the package

from caturactl.core import clock  # noqa: E402
from connectors.shopware.client import ShopwareApi  # noqa: E402
from connectors.shopware.orders import criteria  # noqa: E402
from standins.amazon import AmazonStandin  # noqa: E402
from standins.shopware import ShopwareStandin  # noqa: E402

# bench/import.py's databases, configuration and Amazon passes ("import" is a keyword: imported by name).
amazon_bench = importlib.import_module("bench.import")

UNLIMITED_SPEED = 1e6
SHOP_SECRET = "bench-shop-secret"
PAGE_SIZE = 100  # the shop's pages as large as Amazon's searchOrders pages


def note(msg: str) -> None:
    print(f"[bench/shop_import] {msg}", file=sys.stderr, flush=True)


def shop_values(shop: ShopwareStandin) -> dict[tuple[str, str], str]:
    """The [shop] keys that point caturactl at the Shopware stand-in."""
    q = amazon_bench._toml_str
    return {("shop", "enabled"): "true", ("shop", "url"): q(shop.url), ("shop", "client_id"): q(shop.client_id),
            ("shop", "page_size"): str(PAGE_SIZE)}


def shop_bare_fetch(app) -> tuple[int, int]:
    """Page through the shop's order search with the connector's client and criteria; no parsing
    or storing. Returns (orders, pages)."""
    api = ShopwareApi(app.cfg.shop)
    after = clock.now() - dt.timedelta(days=app.cfg.shop.first_import_days)
    try:
        orders = page = 0
        while True:
            page += 1
            rows = api.call("POST", "/api/search/order", criteria(after, "", page, PAGE_SIZE),
                            f"the order search, page {page}")["data"]
            orders += len(rows)
            if len(rows) < PAGE_SIZE:
                return orders, page
    finally:
        api.close()


def measure(args, workdir: Path, amazon: AmazonStandin, shop: ShopwareStandin, channel: str) -> dict[str, float]:
    """The best of ``args.repeat`` imports of ``channel`` into fresh databases, and its bare pass
    (after one untimed pass, which warms the stand-in's caches)."""
    fetch = amazon_bench.bare_fetch if channel == "amazon" else shop_bare_fetch
    best_import = best_fetch = float("inf")
    imported = 0
    for n in range(args.repeat):
        with amazon_bench.fresh_database(args.db, workdir) as url:
            app = amazon_bench.prepare(workdir, amazon, url, UNLIMITED_SPEED, f"{channel}{n}",
                                       extra=shop_values(shop), secrets={"CATURACTL_SHOP_CLIENT_SECRET": SHOP_SECRET})
            try:
                if n == 0:
                    fetch(app)
                started = time.perf_counter()
                fetched, pages = fetch(app)
                best_fetch = min(best_fetch, time.perf_counter() - started)
                result, wall = amazon_bench.run_import(app, channel)
                if result.stopped_by or result.failed:
                    note(f"{channel}: {result.line()}")
                best_import = min(best_import, wall)
                imported = amazon_bench.stored_count(app, channel)
            finally:
                app.dispose()
        if imported != fetched:
            note(f"{channel}: imported {imported} orders, the bare pass saw {fetched} in {pages} pages")
    note(f"{channel}: {imported} orders, import {best_import:.2f} s, bare pass {best_fetch:.2f} s "
         f"(best of {args.repeat})")
    per = 1000 / max(imported, 1)
    return {"orders": imported, "ms": best_import * per, "fetch_ms": best_fetch * per,
            "our_ms": (best_import - best_fetch) * per}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/shop_import.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=500, help="orders in each stand-in (default 500)")
    p.add_argument("--repeat", type=int, default=3, help="imports per channel, the best counts (default 3)")
    p.add_argument("--db", default="sqlite", help="'sqlite' (default) or a postgresql:// URL of a server "
                                                  "where scratch databases may be created")
    args = p.parse_args(argv)
    if args.orders < 1 or args.repeat < 1:
        p.error("--orders and --repeat must be >= 1")
    os.environ.pop("SP_API_DEFAULT_MARKETPLACE", None)  # python-amazon-sp-api would let it override ours
    # Both shops' orders were placed two days ago, all of them visible now and inside the first
    # import's window (bench/import.py reads 3 days back).
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
    started = time.perf_counter()
    amazon = amazon_bench.marketplace(args.orders, day, UNLIMITED_SPEED)
    shop = ShopwareStandin(orders=args.orders, seed=amazon_bench.SEED, day=day, client_secret=SHOP_SECRET,
                           start=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(7, 0), dt.UTC))
    with tempfile.TemporaryDirectory(prefix="caturactl-bench-shop-") as tmp, amazon, shop, \
            contextlib.redirect_stdout(sys.stderr):  # stray prints from libraries must not reach stdout
        note(f"{args.orders} orders a channel (seed {amazon_bench.SEED}, placed {day}); Amazon on {amazon.url}, "
             f"the shop on {shop.url}")
        figures = {channel: measure(args, Path(tmp), amazon, shop, channel) for channel in ("amazon", "shop")}
    a, s = figures["amazon"], figures["shop"]
    amazon_bench.figure("database", "sqlite" if amazon_bench._is_sqlite(args.db) else "postgresql")
    for channel, f in figures.items():
        amazon_bench.figure(f"{channel}_orders_imported", f["orders"])
        amazon_bench.figure(f"{channel}_ms_per_order", f["ms"])
        amazon_bench.figure(f"{channel}_fetch_ms_per_order", f["fetch_ms"])
        amazon_bench.figure(f"{channel}_our_ms_per_order", f["our_ms"])
    amazon_bench.figure("shop_to_amazon_ratio", s["ms"] / a["ms"])
    amazon_bench.figure("shop_to_amazon_our_ratio", s["our_ms"] / a["our_ms"])
    note(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
