"""Benchmark of matching bank credits to open payments (caturactl/payments/matching.py).

    python bench/payments.py [--credits 10000] [--payments 50000] [--seed 7]

Figures go to stdout as ``name: value`` lines, nothing else.

Why these figures: a merchant's statement of ``--credits`` credits is matched against
``--payments`` open payments; the rule must not compare every credit with every payment (that
would be 5*10^8 fuzzy comparisons here), so references are looked up in an index and only the
few payments sharing a piece of a mistyped reference are compared. The credits are a mix seen on
real statements: 60 % quote the order or invoice number (separators varied or missing), 10 % with
a typo in it (a digit missing or wrong), 10 % quote nothing (amount and payer's name), 10 % pay a
part, 10 % belong to nobody. Figures:

- ``index_s``: building the index of the open payments;
- ``match_s``: matching every credit (best of ``--repeat``), and ``credits_per_s``;
- ``match_rate``: the share of credits matched to a payment (the 10 % of nobody's cannot be);
- ``wrong_matches``: credits matched to a payment they were not made for (goal: 0);
- ``tickets``: credits left for a person.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from caturactl.payments.matching import Matcher, OpenPayment
from caturactl.ports import BankEntry

FIRST = ["Anna", "Bernd", "Claire", "Dario", "Elena", "Frank", "Greta", "Hugo", "Ines", "Jan", "Katrin", "Lars"]
LAST = ["Beispiel", "Muster", "Dupont", "Rossi", "García", "Weber", "Schmidt", "Martin", "Wolf", "Krause",
        "Neumann", "Braun", "Zimmermann", "Hofmann", "Hartmann", "Lange"]


def _order_number(rng: random.Random) -> str:
    return f"{rng.choice(['302', '303', '028', '171'])}-{rng.randrange(10**7):07d}-{rng.randrange(10**7):07d}"


def build(n_payments: int, n_credits: int, seed: int) -> tuple[list[OpenPayment], list[tuple[BankEntry, int | None]]]:
    rng = random.Random(seed)
    payments, seen = [], set()
    for i in range(1, n_payments + 1):
        number = _order_number(rng)
        while number in seen:
            number = _order_number(rng)
        seen.add(number)
        refs = (number, f"RE2026-{i:06d}") if i % 3 == 0 else (number,)
        amount = Decimal(rng.randrange(500, 50000)) / 100
        payments.append(OpenPayment(i, refs, amount, "EUR", f"{rng.choice(FIRST)} {rng.choice(LAST)}"))
    credits = []
    chosen = rng.sample(payments, n_credits)
    for k, p in enumerate(chosen):
        kind = k % 10
        ref = p.references[-1] if kind == 1 else p.references[0]
        name = p.buyer
        amount = p.amount_open
        if kind < 6:  # the reference, its separators as the buyer typed them
            text = rng.choice(["Bestellung {}", "{}", "Rechnung {} danke", "Order {} vom 24.11."]).format(
                rng.choice([ref, ref.replace("-", ""), ref.replace("-", " "), ref.replace("-", "/")]))
        elif kind == 6:  # a typo: a digit missing or wrong
            digits = [i for i, c in enumerate(ref) if c.isdigit()]
            at = rng.choice(digits[3:])
            typo = ref[:at] + ref[at + 1:] if rng.random() < 0.5 else ref[:at] + str((int(ref[at]) + 1) % 10) + ref[at + 1:]
            text = f"Bestellung {typo}"
        elif kind == 7:  # no reference: the amount and the name, the name the bank's way
            first, last = name.split(" ", 1)
            text, name = "Danke fuer die Lieferung", f"{last.upper()}, {first.upper()}"
        elif kind == 8:  # a part of it
            amount = (amount / 2).quantize(Decimal("0.01"))
            text = f"Anzahlung {ref}"
        else:  # nobody's
            text, name, amount, p = f"Spende {rng.randrange(10**5)}", "Hans Unbekannt", Decimal("12.34"), None
        entry = BankEntry(where="bench", entry_ref=str(k), booking_date=date(2026, 11, 25), amount=amount,
                          currency="EUR", debtor_name=name, remittance=text)
        credits.append((entry, p.id if p else None))
    return payments, credits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--credits", type=int, default=10_000)
    ap.add_argument("--payments", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    payments, credits = build(args.payments, args.credits, args.seed)
    t0 = time.perf_counter()
    Matcher(payments)
    index_s = time.perf_counter() - t0
    best, decisions = float("inf"), []
    for _ in range(args.repeat):
        matcher = Matcher(payments)
        t0 = time.perf_counter()
        decisions = [matcher.match(entry) for entry, _ in credits]
        best = min(best, time.perf_counter() - t0)
    matched = wrong = tickets = 0
    for (entry, meant), d in zip(credits, decisions):
        if d.applied:
            matched += 1
            if {pid for pid, _ in d.applied} != {meant}:
                wrong += 1
        if d.outcome == "ticket":
            tickets += 1
    print(f"payments: {args.payments}")
    print(f"credits: {args.credits}")
    print(f"index_s: {index_s:.3f}")
    print(f"match_s: {best:.3f}")
    print(f"credits_per_s: {args.credits / best:.0f}")
    print(f"match_rate: {matched / args.credits:.3f}")
    print(f"wrong_matches: {wrong}")
    print(f"tickets: {tickets}")


if __name__ == "__main__":
    main()
