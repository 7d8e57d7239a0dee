"""Benchmark of ``settlement import`` (caturactl/accounting/settlement.py) and the flat-file reader under it.

    python bench/settlement.py [--lines 1000000] [--repeat 3] [--profile]

Figures go to stdout as ``name: value`` lines, nothing else; notes go to stderr.

Why these figures: reconciling a settlement must stay within a small factor of merely splitting
the file, and must not need memory in proportion to the file. So a synthetic settlement of
``--lines`` transaction lines (DE formatting: decimal commas, ``dd.mm.yyyy ... UTC`` dates, a few
decimal points as Amazon was seen to mix them, reference/amazon/README.md §8; 1M lines are about
160 MB and 214,000 orders) is written to a temp dir, and then timed, best of ``--repeat``:

- ``csv_reader_s``: a bare ``csv.reader`` pass (same decoding, same dialect, no values looked at);
- ``parse_s`` / ``parse_ratio``: ``validate_settlement`` (every value parsed, the total checked);
- ``reconcile_s`` / ``reconcile_ratio``: ``import_file`` end to end into a fresh SQLite database
  (check, sum per order, hash, look up our books, store, commit); the database has no orders, so
  every order becomes a stored difference: the most rows to write. Goal: ratio at most 3.

Memory, for 100k, 250k, 500k lines and ``--lines`` (labels ``100k`` ... ``1m``), each import into
its own fresh database: ``peak_memory_mb_*`` is tracemalloc's peak during ``import_file`` (Python
allocations only; tracing is slow, so these runs are not timed); ``peak_rss_mb_*`` is the peak
resident set (VmHWM in /proc/self/status) of a fresh interpreter that does nothing but that
import: the whole process, interpreter, SQLAlchemy, Alembic and SQLite's page cache included;
``peak_rss_mb_empty`` is the same for a settlement of one line, the floor. Not ru_maxrss: Linux
carries it over exec from the forking parent, so a child would report this bench's own peak.
Goal: at most 150 MB, flat.

``--profile`` prints cProfile's top functions of one import to stderr.
"""

from __future__ import annotations

import argparse
import codecs
import cProfile
import csv
import gc
import io
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta
from itertools import chain
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from connectors.amazon.settlement import CAPTIONS, CHUNK_BYTES, validate_settlement  # noqa: E402

SEED = 42
SETTLEMENT_ID = "11894563021"
START = datetime(2024, 5, 1, 8, 14, 20)
DAYS = 14
SKUS = [f"CAT-{kind}-{n:02d}" for kind in ("BOWL", "TOY", "SCRATCH", "BED", "LITTER") for n in range(20)]
MARKETPLACES = ["Amazon.de"] * 6 + ["Amazon.fr", "Amazon.it", "Amazon.es"]


def money(cents: int, rng: random.Random) -> str:
    """DE formatting, with one value in a hundred in EN form (both were seen in one file)."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    sep = "." if rng.random() < 0.01 else ","
    if whole >= 1000:  # Amazon groups thousands only in the summary line, and there in DE form
        sep = ","
    return f"{sign}{whole}{sep}{frac:02d}"


def row(**values: str) -> str:
    return "\t".join(values.get(c.replace("-", "_"), "") for c in CAPTIONS) + "\n"


def transactions(rng: random.Random):
    """Yield (cents, line) forever: orders (most lines), refunds, fees, advertising, reserves."""
    order_no = 0
    while True:
        at = START + timedelta(seconds=rng.randrange(DAYS * 86400))
        day, moment = at.strftime("%d.%m.%Y"), at.strftime("%d.%m.%Y %H:%M:%S UTC")
        common = dict(settlement_id=SETTLEMENT_ID, posted_date=day, posted_date_time=moment,
                      marketplace_name=rng.choice(MARKETPLACES))
        pick = rng.random()
        order_no += 1
        order_id = f"{rng.randrange(200, 410):03d}-{order_no % 10**7:07d}-{rng.randrange(10**7):07d}"
        sku = rng.choice(SKUS)
        if pick < 0.85:  # an order: price, tax, maybe shipping and promotion, fees
            net = rng.randrange(500, 8000)
            afn = rng.random() < 0.4
            parts = [("ItemPrice", "Principal", net), ("ItemPrice", "Tax", net * 19 // 100)]
            if not afn:
                parts += [("ItemPrice", "Shipping", 416), ("ItemPrice", "ShippingTax", 79)]
            if rng.random() < 0.1:
                parts.append(("Promotion", "Principal", -100))
            parts.append(("ItemFees", "Commission", -(net * 15 // 100)))
            if afn:
                parts.append(("ItemFees", "FBAPerUnitFulfillmentFee", -rng.choice((305, 342, 389))))
            shipment = f"{rng.getrandbits(40):010x}"
            item = f"{rng.randrange(10**13, 10**14)}"
            for i, (amount_type, description, cents) in enumerate(parts):
                yield cents, row(**common, transaction_type="Order", order_id=order_id,
                                 shipment_id=shipment, amount_type=amount_type,
                                 amount_description=description, amount=money(cents, rng),
                                 fulfillment_id="AFN" if afn else "MFN", order_item_code=item,
                                 sku=sku, quantity_purchased="1" if i == 0 else "",
                                 promotion_id="DE-SPRING-10" if amount_type == "Promotion" else "")
        elif pick < 0.95:  # a refund
            net = rng.randrange(500, 8000)
            adjustment = f"amzn1.adj.{rng.getrandbits(30):08X}"
            for amount_type, description, cents in (
                    ("ItemPrice", "Principal", -net), ("ItemPrice", "Tax", -(net * 19 // 100)),
                    ("ItemFees", "Commission", net * 15 // 100),
                    ("ItemFees", "RefundCommission", -(net * 3 // 100))):
                yield cents, row(**common, transaction_type="Refund", order_id=order_id,
                                 adjustment_id=adjustment, amount_type=amount_type,
                                 amount_description=description, amount=money(cents, rng),
                                 fulfillment_id="MFN", order_item_code=f"{rng.randrange(10**13, 10**14)}",
                                 sku=sku)
        elif pick < 0.98:
            cents = -rng.randrange(100, 2000)
            yield cents, row(**common, transaction_type="other-transaction",
                             amount_type="other-transaction", amount_description="Storage Fee",
                             amount=money(cents, rng))
        else:
            cents = -rng.randrange(100, 5000)
            yield cents, row(**common, transaction_type="ServiceFee", amount_type="Cost of Advertising",
                             amount_description="TransactionTotalAmount", amount=money(cents, rng))


def build(path: Path, lines: int) -> None:
    """Write a settlement of ``lines`` transaction lines whose summary total matches them."""
    rng = random.Random(SEED)
    body = path.with_suffix(".body")
    total = 0
    with body.open("w", encoding="utf-8", newline="") as out:
        stream = transactions(rng)
        buffer: list[str] = []
        for _ in range(lines):
            cents, line = next(stream)
            total += cents
            buffer.append(line)
            if len(buffer) >= 10000:
                out.write("".join(buffer))
                buffer.clear()
        out.write("".join(buffer))
    end = START + timedelta(days=DAYS)
    sign, (whole, frac) = ("-" if total < 0 else ""), divmod(abs(total), 100)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("\t".join(CAPTIONS) + "\n")
        out.write(row(settlement_id=SETTLEMENT_ID, settlement_start_date=START.strftime("%d.%m.%Y %H:%M:%S UTC"),
                      settlement_end_date=end.strftime("%d.%m.%Y %H:%M:%S UTC"),
                      deposit_date=(end + timedelta(days=2)).strftime("%d.%m.%Y %H:%M:%S UTC"),
                      total_amount=f"{sign}{whole:,}".replace(",", ".") + f",{frac:02d}", currency="EUR"))
        with body.open("r", encoding="utf-8", newline="") as src:
            shutil.copyfileobj(src, out)
    body.unlink()


def bare_csv(path: Path) -> int:
    """The floor: decode and split into fields as the parser does, look at nothing."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    count = 0
    with path.open("rb") as f:
        chunks = iter(lambda: f.read(CHUNK_BYTES), b"")
        text = (decoder.decode(c) for c in chunks)
        carry = [""]

        def lines():
            for t in text:
                pieces = (carry[0] + t).split("\n")
                carry[0] = pieces.pop()
                yield pieces
            if carry[0]:
                yield [carry[0]]

        for _ in csv.reader(chain.from_iterable(lines()), delimiter="\t", quoting=csv.QUOTE_NONE):
            count += 1
    return count


def parse(path: Path) -> int:
    with path.open("rb") as f:
        return validate_settlement(f, path.name).lines


def fresh_session(db: Path):
    """A session on a new, migrated SQLite database at ``db`` (and its engine, to dispose)."""
    from caturactl.migrations.apply import upgrade
    from caturactl.core.db import make_engine, make_sessionmaker
    for old in db.parent.glob(db.name + "*"):  # the database and its WAL files
        old.unlink()
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    return make_sessionmaker(engine)(), engine


def import_once(path: Path, db: Path, *, trace: bool = False, profile: bool = False) -> tuple[float, object]:
    """``settlement import`` of ``path`` into a fresh database at ``db``: (seconds or tracemalloc
    peak in MB, the ImportResult)."""
    from caturactl.accounting.settlement import import_file
    session, engine = fresh_session(db)
    profiler = cProfile.Profile() if profile else None
    gc.collect()
    try:
        if trace:
            tracemalloc.start()
        if profiler:
            profiler.enable()
        t0 = time.perf_counter()
        result = import_file(session, path)
        session.commit()
        elapsed = time.perf_counter() - t0
        if profiler:
            profiler.disable()
        if trace:
            elapsed = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        if trace:
            tracemalloc.stop()
        session.close()
        engine.dispose()
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        note(out.getvalue())
    return elapsed, result


def child_rss_mb(path: Path, db: Path) -> float:
    """Peak RSS of a fresh interpreter importing ``path``."""
    out = subprocess.run([sys.executable, __file__, "--child-import", str(path), str(db)],
                         check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident set (Linux: VmHWM, in kB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def label(lines: int) -> str:
    if lines % 1_000_000 == 0:
        return f"{lines // 1_000_000}m"
    return f"{lines // 1000}k" if lines % 1000 == 0 else str(lines)


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each kind; the best counts")
    ap.add_argument("--profile", action="store_true", help="cProfile one import, to stderr")
    ap.add_argument("--child-import", nargs=2, metavar=("FILE", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_import:
        import_once(Path(args.child_import[0]), Path(args.child_import[1]))
        print(f"{peak_rss_mb():.1f}")
        return
    with tempfile.TemporaryDirectory(prefix="caturactl-bench-settlement-") as tmp:
        path, db = Path(tmp) / "settlement.tsv", Path(tmp) / "reconcile.db"
        t0 = time.perf_counter()
        build(path, args.lines)
        note(f"built {path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s")
        rows, lines = bare_csv(path), parse(path)
        if lines != args.lines or rows != args.lines + 2:
            sys.exit(f"counted {rows} rows and {lines} lines for {args.lines} lines")
        csv_s = best(lambda: bare_csv(path), args.repeat)
        parse_s = best(lambda: parse(path), args.repeat)
        reconcile_s = min(import_once(path, db)[0] for _ in range(args.repeat))
        _, result = import_once(path, db, profile=args.profile)
        print(f"lines: {lines}")
        print(f"file_mb: {path.stat().st_size / 1e6:.1f}")
        print(f"differences_stored: {result.differences}")
        print(f"csv_reader_s: {csv_s:.3f}")
        print(f"parse_s: {parse_s:.3f}")
        print(f"parse_ratio: {parse_s / csv_s:.2f}")
        print(f"reconcile_s: {reconcile_s:.3f}")
        print(f"reconcile_ratio: {reconcile_s / csv_s:.2f}")
        print("peak_memory_method: tracemalloc peak during import_file (Python allocations); "
              "peak_rss: VmHWM of a fresh process doing only the import")
        empty = Path(tmp) / "settlement-1.tsv"
        build(empty, 1)
        print(f"peak_rss_mb_empty: {child_rss_mb(empty, db):.1f}")
        for size in sorted({n for n in (100_000, 250_000, 500_000) if n < args.lines} | {args.lines}):
            sample = path
            if size != args.lines:
                sample = Path(tmp) / f"settlement-{label(size)}.tsv"
                build(sample, size)
            note(f"memory at {label(size)} lines ...")
            peak, _ = import_once(sample, db, trace=True)
            print(f"peak_memory_mb_{label(size)}: {peak:.1f}")
            print(f"peak_rss_mb_{label(size)}: {child_rss_mb(sample, db):.1f}")
            if sample != path:
                sample.unlink()


if __name__ == "__main__":
    main()
