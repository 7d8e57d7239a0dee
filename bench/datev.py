"""Benchmark of the DATEV booking batch: ``write_extf`` against a bare csv.writer, in one run.

    python bench/datev.py [--bookings 1000000] [--seed 7]

Figures go to stdout as ``name: value`` lines, nothing else; notes go to stderr.

The bookings: a month of Amazon sales (collective debitor against the revenue account by tax
rate, a fee now and then, Polish and Czech buyer names in some texts), built in memory before
the clock starts, so both sides time only the writing.

- ``bare_csv_s``: ``csv.writer`` (``;``, Windows-1252, CRLF) writing the same values per row
  the plain way -- ``str()`` of the Decimal, the date as DDMM, the 125 columns padded -- with no
  checks, no transliteration and no DATEV header: the floor of writing such a file in Python.
- ``extf_s``: ``write_extf`` to a file: checks, transliteration, quoting, header and captions.
- ``ratio``: extf_s / bare_csv_s (goal: at most 2).
- ``rows``: the rows ``write_extf`` reported.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from connectors.datev.extf import BOOKING_CAPTIONS, BatchHeader, Booking, write_extf  # noqa: E402

NAMES = ["Jürgen Müller", "Anna Schäfer", "Paweł Łukasiewicz", "Jiří Dvořák", "Zoë Becker",
         "Małgorzata Wiśniewska", "Ines Hoffmann", 'Shop "Teeladen" GmbH']
HEADER = BatchHeader(consultant_number=29098, client_number=55003,
                     fiscal_year_start=date(2026, 1, 1), account_length=4,
                     date_from=date(2026, 10, 1), date_to=date(2026, 10, 31),
                     description="Amazon Oktober 2026", created_at=datetime(2026, 11, 2, 9, 30),
                     initials="CT")


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def bookings(n: int, seed: int) -> list[Booking]:
    """``n`` bookings in October 2026: sales at 19 % or 7 %, every tenth a § 13b fee."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        day = date(2026, 10, 1 + i % 31)
        cents = rng.randint(199, 25000)
        amount = Decimal(cents).scaleb(-2)
        if i % 10 == 9:
            out.append(Booking(amount, "S", "4760", "10000", day, f"FEE{i:08d}",
                               "Amazon Verkaufsgebühr", tax_key="94"))
            continue
        account = "8400" if i % 3 else "8300"
        out.append(Booking(amount, "S", "10000", account, day, f"RE-2026/{i:07d}",
                           f"Rechnung {NAMES[i % len(NAMES)]}",
                           order_id=f"302-{i:07d}-{rng.randint(0, 9999999):07d}"))
    return out


def bare(rows: list[Booking], path: Path) -> None:
    pad = [""] * (len(BOOKING_CAPTIONS) - 14)
    with open(path, "w", encoding="cp1252", errors="replace", newline="") as f:
        w = csv.writer(f, delimiter=";", lineterminator="\r\n")
        for b in rows:
            w.writerow([str(b.amount), b.debit_credit, b.currency, "", "", "", b.account,
                        b.contra_account, b.tax_key, f"{b.date.day:02d}{b.date.month:02d}",
                        b.document, b.document2, "", b.text, *pad])


def ours(rows: list[Booking], path: Path) -> int:
    with open(path, "wb") as f:
        return write_extf(HEADER, rows, f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    note(f"building {args.bookings} bookings in memory ...")
    rows = bookings(args.bookings, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        bare_path, extf_path = Path(tmp) / "bare.csv", Path(tmp) / "extf.csv"
        started = time.perf_counter()
        bare(rows, bare_path)
        bare_s = time.perf_counter() - started
        started = time.perf_counter()
        written = ours(rows, extf_path)
        extf_s = time.perf_counter() - started
        note(f"sizes: bare {bare_path.stat().st_size / 1e6:.1f} MB, "
             f"extf {extf_path.stat().st_size / 1e6:.1f} MB")
    print(f"bare_csv_s: {bare_s:.3f}")
    print(f"extf_s: {extf_s:.3f}")
    print(f"ratio: {extf_s / bare_s:.2f}")
    print(f"rows: {written}")


if __name__ == "__main__":
    main()
