"""Benchmark of the Amazon order import (Orders API 2026-01-01 searchOrders) against the stand-in.

    python bench/import.py [--orders 5000] [--speed 200] [--db sqlite|URL]

Figures go to stdout as ``name: value`` lines, nothing else; notes go to stderr.

Run 1 (rate-limited): a stand-in marketplace of ``--orders`` orders whose searchOrders bucket runs
at Amazon's published rate and burst times ``--speed``; our client gets the same ``rate_scale``.
The import goes through the same path as ``caturactl import amazon`` into a fresh database, and
its throughput (in Amazon time: wall-clock rate divided by the speed factor) is compared with what
the published rate allows.

Run 2 (unlimited): the same marketplace with practically no rate limit. A bare pass that only pages
through the stand-in with the sp_api client, then the full import into another fresh database; the
difference is our own cost per order (parsing, matching, triage, storing).

``--db URL`` (PostgreSQL): every run creates its own database on that server (CREATE DATABASE,
needs the CREATEDB privilege) and drops it afterwards; the database named in the URL is only used
to connect.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import math
import os
import re
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # ``standins`` lives in the source checkout, not in the package

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from caturactl import channels  # noqa: E402
from caturactl import config as config_mod  # noqa: E402
from caturactl.app import App  # noqa: E402
from caturactl.catalogue.products import import_products  # noqa: E402
from caturactl.orders.importing import Importer, ImportResult  # noqa: E402
from caturactl.migrations.apply import upgrade  # noqa: E402
from caturactl.orders.models import Order  # noqa: E402
from connectors.amazon.client import RATES, SpApi  # noqa: E402
from connectors.amazon.orders import INCLUDED_DATA, PAGE_SIZE, iso  # noqa: E402
from standins.amazon import AmazonStandin  # noqa: E402

SEED = 42
MARKETPLACES = ["DE", "FR", "IT", "ES"]
FIRST_IMPORT_DAYS = 3
UNLIMITED_SPEED = 1e6
CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN = "standin-client", "standin-secret", "standin-refresh"
# Only the secrets reach the configuration from "the environment": a CATURACTL_* variable in the
# caller's shell (e.g. CATURACTL_DATABASE_URL) must not change what is measured.
SECRETS_ENV = {"CATURACTL_AMAZON_CLIENT_SECRET": CLIENT_SECRET, "CATURACTL_AMAZON_REFRESH_TOKEN": REFRESH_TOKEN}

_OUT = sys.stdout
_db_counter = itertools.count(1)


def note(msg: str) -> None:
    print(f"[bench/import] {msg}", file=sys.stderr, flush=True)


def figure(name: str, value) -> None:
    if isinstance(value, float):
        value = f"{value:.1f}" if abs(value) >= 100 else f"{value:.4g}" if math.isfinite(value) else str(value)
    print(f"{name}: {value}", file=_OUT, flush=True)


# --- databases ---------------------------------------------------------------------------------

def _is_sqlite(db: str) -> bool:
    return db == "sqlite" or db.startswith("sqlite:")


@contextlib.contextmanager
def fresh_database(db: str, workdir: Path) -> Iterator[str]:
    """The URL of a new, empty database of the kind asked for; dropped afterwards."""
    n = next(_db_counter)
    if _is_sqlite(db):
        yield f"sqlite:///{workdir / f'bench{n}.db'}"
        return
    url = make_url(db.replace("postgresql://", "postgresql+psycopg://", 1) if db.startswith("postgresql://") else db)
    if url.get_backend_name() != "postgresql":
        raise SystemExit(f"--db: expected 'sqlite' or a postgresql:// URL, got {url.get_backend_name()!r}")
    name = f"caturactl_bench_{os.getpid()}_{n}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except Exception as exc:  # noqa: BLE001 - a leftover scratch database is only worth a note
            note(f"could not drop scratch database {name}: {exc}")
        admin.dispose()


# --- setting up caturactl as the CLI would ----------------------------------------------------------

def _toml_str(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(workdir: Path, standin: AmazonStandin, db_url: str, rate_scale: float, tag: str,
                 extra: dict[tuple[str, str], str] | None = None) -> Path:
    """A caturactl.toml made from the packaged template with the stand-in's endpoints; ``extra``:
    more (section, key) -> TOML value (bench/shop_import.py: the shop's)."""
    template = resources.files("templates.config").joinpath("caturactl.toml").read_text(encoding="utf-8")
    values = {
        ("database", "url"): _toml_str(db_url),
        ("amazon", "endpoint"): _toml_str(standin.url),
        ("amazon", "lwa_url"): _toml_str(standin.lwa_url),
        ("amazon", "client_id"): _toml_str(CLIENT_ID),
        ("amazon", "marketplaces"): "[" + ", ".join(_toml_str(m) for m in MARKETPLACES) + "]",
        ("amazon", "first_import_days"): str(FIRST_IMPORT_DAYS),
        ("amazon", "rate_scale"): repr(float(rate_scale)),
        **(extra or {}),
    }
    out, section, done = [], None, set()
    for line in template.splitlines():
        m = re.match(r"\s*\[([A-Za-z_]+)\]\s*(#.*)?$", line)
        if m:
            # keys the template does not have go at the end of their section
            out.extend(f"{k} = {v}" for (s, k), v in values.items() if s == section and (s, k) not in done)
            done |= {(s, k) for (s, k) in values if s == section}
            section = m.group(1)
        else:
            m = re.match(r"\s*([A-Za-z_]+)\s*=", line)
            if m and (section, m.group(1)) in values:
                line = f"{m.group(1)} = {values[(section, m.group(1))]}"
                done.add((section, m.group(1)))
        out.append(line)
    out.extend(f"{k} = {v}" for (s, k), v in values.items() if s == section and (s, k) not in done)
    path = workdir / tag / "caturactl.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def prepare(workdir: Path, standin: AmazonStandin, db_url: str, rate_scale: float, tag: str,
            extra: dict[tuple[str, str], str] | None = None, secrets: dict[str, str] | None = None) -> App:
    """caturactl init + db upgrade + products import, as a merchant would do before importing
    (``extra``: more configuration, ``secrets``: more CATURACTL_* secrets, for another channel)."""
    cfg_path = write_config(workdir, standin, db_url, rate_scale, tag, extra)
    cfg = config_mod.load(cfg_path, environ={**SECRETS_ENV, **(secrets or {})})
    assert cfg.amazon.rate_scale == rate_scale and cfg.amazon.first_import_days == FIRST_IMPORT_DAYS
    app = App(cfg)
    upgrade(app.engine)
    csv_path = cfg_path.parent / "products.csv"
    csv_path.write_text(standin.catalogue_csv(), encoding="utf-8")
    with app.session() as s:
        import_products(s, csv_path)
        s.commit()
    return app


def run_import(app: App, channel: str = "amazon") -> tuple[ImportResult, float]:
    """``caturactl import orders --channel CHANNEL``: the importer over the channel's adapter;
    returns (result, wall s)."""
    with app.session() as s:
        started = time.perf_counter()
        mp, scope = channels.get(channel).order_source(app, s)
        try:
            result = Importer(s, app.cfg, mp).run(tuple(scope))
        finally:
            mp.close()
        return result, time.perf_counter() - started


def stored_ids(app: App) -> set[str]:
    with app.session() as s:
        return set(s.scalars(select(Order.external_id).where(Order.channel == "amazon").distinct()))


def stored_count(app: App, channel: str = "amazon") -> int:
    with app.session() as s:
        return s.scalar(select(func.count(func.distinct(Order.external_id))).where(Order.channel == channel))


def bare_fetch(app: App) -> tuple[int, int]:
    """Page through searchOrders with the plain sp_api client and the connector's parameters;
    no rate limiting, parsing or storing. Returns (orders, pages)."""
    from sp_api.api import OrdersV20260101

    api = SpApi(app.cfg.amazon)
    client = api.client(OrdersV20260101, app.cfg.amazon.marketplaces[0])
    try:
        api.login(client)
        after = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=app.cfg.amazon.first_import_days)
        params = {"lastUpdatedAfter": iso(after), "marketplaceIds": list(app.cfg.amazon.marketplaces),
                  "includedData": list(INCLUDED_DATA), "maxResultsPerPage": PAGE_SIZE}
        orders = pages = 0
        token = None
        while True:
            kwargs = dict(params, paginationToken=token) if token else dict(params)
            resp = client.search_orders(**kwargs)
            pages += 1
            orders += len(resp.payload["orders"])
            token = ((resp.payload.get("pagination") or resp.pagination or {}).get("nextToken"))
            if not token:
                return orders, pages
    finally:
        client.close()


# --- the runs --------------------------------------------------------------------------------------

def bound_per_hour(orders: int) -> tuple[float, float]:
    """(orders per hour, minimum seconds) that Amazon's published searchOrders plan allows when every
    page carries 100 orders and nothing else is called.

    The bucket starts full, so the first ``burst`` pages cost no waiting and every further page one
    refill interval 1/rate. With pages <= burst the published plan imposes no wait at all: the
    minimum time is 0 and the bound is unlimited, reported as ``inf`` (the ratio is then ``nan``:
    this run does not exercise the rate limit; use more than burst * 100 orders)."""
    rate, burst = RATES["searchOrders"]
    pages = math.ceil(orders / 100)
    min_seconds = max(0, pages - burst) / rate
    return (orders / min_seconds * 3600 if min_seconds > 0 else math.inf), min_seconds


def settle_clock(standin: AmazonStandin) -> None:
    """Move the stand-in's clock on until no order changed in the last 2 minutes.

    searchOrders only returns orders last updated at least 2 minutes before the request (Amazon's
    rule, kept by the stand-in); an order changed later is not lost, it comes with the next import.
    So that ``orders_lost`` only counts real losses, the clock is advanced past such changes."""
    for _ in range(20):
        now = standin.now()
        latest = max((dt.datetime.fromisoformat(o["lastUpdatedTime"].replace("Z", "+00:00"))
                      for o in standin.visible_orders()), default=None)
        if latest is None or latest < now - dt.timedelta(minutes=2):
            return
        note(f"an order changed at {latest.isoformat()}, within 2 minutes of the stand-in's clock; "
             "advancing it 3 minutes")
        standin.advance(dt.timedelta(minutes=3))


def marketplace(orders: int, day: dt.date, rate_scale: float) -> AmazonStandin:
    """The bench's stand-in marketplace, started: ``orders`` orders placed on ``day`` (seed SEED,
    the bench's credentials), its clock past their last change (``settle_clock``)."""
    standin = AmazonStandin(orders=orders, seed=SEED, day=day, rate_scale=rate_scale,
                            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=REFRESH_TOKEN)
    settle_clock(standin)
    return standin.start()


def run_limited(args, workdir: Path, day: dt.date) -> None:
    speed = args.speed
    note(f"run 1: {args.orders} orders (seed {SEED}, day {day}), searchOrders at "
         f"{RATES['searchOrders'][0]}/s x {speed:g}, burst {RATES['searchOrders'][1]}")
    standin = marketplace(args.orders, day, speed)
    try:
        with fresh_database(args.db, workdir) as url:
            app = prepare(workdir, standin, url, speed, "limited")
            try:
                result, wall = run_import(app)
                note("run 1: " + result.line())
                if result.stopped_by:
                    note(f"run 1 STOPPED EARLY: {result.stopped_by}")
                for f in result.failures[:10]:
                    note(f"  failed: {f}")
                db_ids = stored_ids(app)
                imported = stored_count(app)
            finally:
                app.dispose()
        visible = {o["orderId"] for o in standin.visible_orders()}
        stats = standin.stats()
    finally:
        standin.stop()

    lost = visible - db_ids
    if lost:
        note(f"run 1: {len(lost)} visible orders not in the database, e.g. {sorted(lost)[:5]}")
    n = len(visible)
    if n != args.orders:
        note(f"run 1: the stand-in shows {n} orders, not {args.orders}; the bound uses {n}")
    bound, min_seconds = bound_per_hour(n)
    achieved = imported / wall * 3600 / speed if wall > 0 else math.inf
    api_calls = stats["calls"]["searchOrders"] + stats["calls"]["getOrder"]
    if (api_calls, stats["throttled"]) != (result.calls, result.throttled):
        note(f"run 1: our client counted {result.calls} calls / {result.throttled} throttled, "
             f"the stand-in {api_calls} / {stats['throttled']}")
    note(f"run 1: minimum time at the published rate {min_seconds / speed:.1f} s wall "
         f"({min_seconds:.0f} s Amazon time), took {wall:.1f} s")

    figure("database", "sqlite" if _is_sqlite(args.db) else "postgresql")
    figure("orders_imported", imported)
    figure("pages", result.pages)
    figure("orders_per_hour", achieved)
    figure("bound_orders_per_hour", bound)
    figure("ratio", achieved / bound if math.isfinite(bound) else math.nan)
    figure("api_calls", api_calls)
    figure("client_api_calls", result.calls)
    figure("throttled_429", stats["throttled"])
    figure("client_throttled_429", result.throttled)
    figure("orders_failed", result.failed)
    figure("orders_lost", len(lost))
    figure("wall_seconds", wall)


def run_unlimited(args, workdir: Path, day: dt.date) -> None:
    note(f"run 2: {args.orders} orders, rate scale {UNLIMITED_SPEED:g} (no effective limit)")
    standin = marketplace(args.orders, day, UNLIMITED_SPEED)
    try:
        with fresh_database(args.db, workdir) as url:
            app = prepare(workdir, standin, url, UNLIMITED_SPEED, "unlimited")
            try:
                # Untimed warm-up: the stand-in renders each order once per snapshot and caches it;
                # without this the timed bare pass would pay the rendering and the import would not.
                bare_fetch(app)
                started = time.perf_counter()
                fetched, pages = bare_fetch(app)
                bare = time.perf_counter() - started
                note(f"run 2: bare fetch {fetched} orders in {pages} pages, {bare:.2f} s")
                result, wall = run_import(app)
                note("run 2: " + result.line())
                if result.stopped_by:
                    note(f"run 2 STOPPED EARLY: {result.stopped_by}")
                imported = stored_count(app)
            finally:
                app.dispose()
        stats = standin.stats()
    finally:
        standin.stop()
    if stats["throttled"]:
        note(f"run 2: {stats['throttled']} requests throttled although the limit is scaled by {UNLIMITED_SPEED:g}")
    if imported != fetched:
        note(f"run 2: imported {imported} orders but the bare pass saw {fetched}")
    figure("unlimited_orders_imported", imported)
    figure("unlimited_import_seconds", wall)
    figure("bare_fetch_seconds", bare)
    figure("our_ms_per_order", (wall - bare) / max(imported, 1) * 1000)
    figure("orders_per_second_unlimited", imported / wall if wall > 0 else math.inf)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/import.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=5000, help="orders in the stand-in marketplace (default 5000)")
    p.add_argument("--speed", type=float, default=200.0,
                   help="rate-limit speed factor on the stand-in and in our client (default 200)")
    p.add_argument("--db", default="sqlite", help="'sqlite' (default) or a postgresql:// URL of a server "
                                                  "where scratch databases may be created")
    p.add_argument("--skip-unlimited", action="store_true", help="only the rate-limited run")
    args = p.parse_args(argv)
    if args.orders < 1 or args.speed <= 0:
        p.error("--orders must be >= 1 and --speed > 0")

    # python-amazon-sp-api would let this override the marketplace (and endpoint) we pass.
    os.environ.pop("SP_API_DEFAULT_MARKETPLACE", None)
    # The stand-in's orders are created on ``day`` and the first import reaches back
    # first_import_days from the real now: use yesterday (UTC) so they always fall in the window.
    day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="caturactl-bench-import-") as tmp, \
            contextlib.redirect_stdout(sys.stderr):  # stray prints from libraries must not reach stdout
        workdir = Path(tmp)
        run_limited(args, workdir, day)
        if not args.skip_unlimited:
            run_unlimited(args, workdir, day)
    note(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
