"""Which open payment a bank credit pays: a pure rule over plain values (no session, no I/O).

A credit is matched first by the references it quotes (order or invoice number) in its
remittance text or end-to-end reference, whatever the separators ("302-1234567-1234567",
"30212345671234567", "RE 2026 0001") and with a typo or two in a long number; then, when it
quotes none, by its exact amount together with the payer's name. What is decided:

``paid``         one payment named, the amount is what is still open
``partly_paid``  one payment named, less than what is open (it accumulates)
``overpaid``     one payment named, more than what is open: paid, and a ticket for the surplus
``split``        several payments named whose open amounts add up to the credit: all paid
``returned``     a returned direct debit takes back what a payment had received (with a ticket)
``ticket``       anything else (foreign currency, unknown reference, ambiguous, a typo whose
                 amount does not fit): a person decides; nothing is guessed

A reference is *strong* when it is found exactly and is long or has letters and digits, *weak*
when it is short and all digits (a postcode could look the same) or found with a typo: a weak
one counts only when the amount is exactly what is open.

References are looked up in a dict, and typos through pieces of each reference (with at most d
edits, one of d+1 pieces is unchanged): the work per credit does not grow with the number of
open payments beyond the few candidates sharing a piece.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from caturactl.ports import BankEntry

ZERO = Decimal("0.00")
MIN_KEY = 4  # shorter references (an order "17") are never looked for in free text
STRONG_DIGITS = 8  # an all-digit reference this long is strong when found exactly
MAX_TOKENS = 5  # a reference written with separators spans at most this many tokens
NAME_SIMILARITY = 85  # rapidfuzz token_sort_ratio of the payer's and the buyer's name


def normalise(reference: str) -> str:
    """A reference as letters and digits only, upper case: the form both sides are compared in."""
    return re.sub(r"[^0-9A-Z]", "", reference.upper())


def name_key(name: str) -> str:
    """A person's or company's name for comparing: lower case, umlauts spelt out, no punctuation."""
    name = name.lower()
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("é", "e"), ("è", "e"), ("á", "a")):
        name = name.replace(a, b)
    return " ".join(re.sub(r"[^0-9a-z]+", " ", name).split())


def max_edits(key: str) -> int:
    """How many typos a reference of this length may carry and still be recognised."""
    return 0 if len(key) < 10 else 1 if len(key) < 15 else 2


def strong(key: str) -> bool:
    return len(key) >= STRONG_DIGITS or not key.isdigit()


def candidates(text: str, shortest: int, longest: int) -> list[str]:
    """Every run of up to MAX_TOKENS adjacent letter or digit groups of ``text``, normalised, of a
    length a reference could have (``shortest - 2`` to ``longest + 2``) and with a digit."""
    tokens = re.findall(r"[A-Z]+|[0-9]+", text.upper())
    out: list[str] = []
    for i in range(len(tokens)):
        joined = ""
        for j in range(i, min(i + MAX_TOKENS, len(tokens))):
            joined += tokens[j]
            if len(joined) > longest + 2:
                break
            if len(joined) >= shortest - 2 and any(c.isdigit() for c in joined):
                out.append(joined)
    return out


@dataclass(frozen=True, slots=True)
class OpenPayment:
    """A payment as matching sees it: what the buyer was told to quote, what is open."""
    id: int
    references: tuple[str, ...]  # order number, invoice number, as the buyer was told them
    amount_open: Decimal  # for a return: what it has received
    currency: str
    buyer: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """What one credit does: ``applied`` (payment id, amount; negative for a return), how it was
    matched, and for a ticket its reason code and text."""
    outcome: str
    applied: tuple[tuple[int, Decimal], ...] = ()
    matched_by: str = ""
    reason: str = ""  # ticket reason: surplus, returned_debit, foreign_currency, unknown_reference, ...
    text: str = ""
    surplus: Decimal = ZERO

    @property
    def needs_ticket(self) -> bool:
        return bool(self.reason)


def _ticket(reason: str, text: str) -> Decision:
    return Decision("ticket", reason=reason, text=text)


class Matcher:
    """The open payments, indexed by reference, piece of reference and (currency, amount); each
    decision is remembered, so a second credit for the same payment sees what is still open."""

    def __init__(self, payments: Iterable[OpenPayment]) -> None:
        self.payments: dict[int, OpenPayment] = {}
        self.open: dict[int, Decimal] = {}
        self.by_key: dict[str, set[int]] = defaultdict(set)
        self.by_piece: dict[tuple[int, int, str], set[str]] = defaultdict(set)
        self.by_amount: dict[tuple[str, Decimal], set[int]] = defaultdict(set)
        self.currencies: set[str] = set()
        for p in payments:
            self.add(p)
        lengths = [len(k) for k in self.by_key] or [MIN_KEY]
        self.shortest, self.longest = min(lengths), max(lengths)

    def add(self, p: OpenPayment) -> None:
        self.payments[p.id] = p
        self.open[p.id] = p.amount_open
        self.currencies.add(p.currency)
        self.by_amount[(p.currency, p.amount_open)].add(p.id)
        for ref in p.references:
            key = normalise(ref)
            if len(key) < MIN_KEY:
                continue
            if key not in self.by_key and max_edits(key):
                for n, (start, size) in enumerate(_pieces(key)):
                    self.by_piece[(len(key), n, key[start:start + size])].add(key)
            self.by_key[key].add(p.id)

    # --- finding the payments a text names ---

    def named(self, text: str) -> tuple[set[int], set[int]]:
        """(payments named by a strong reference, by a weak one) in ``text``."""
        found_strong, found_weak = set(), set()
        cands = candidates(text, self.shortest, self.longest)
        exact = set()
        for c in cands:
            ids = self.by_key.get(c)
            if ids:
                exact.add(c)
                (found_strong if strong(c) else found_weak).update(i for i in ids if i in self.open)
        if found_strong:
            return found_strong, found_weak
        for c in cands:
            if c in exact:
                continue
            for key in self._near(c):
                found_weak.update(i for i in self.by_key[key] if i in self.open)
        return found_strong, found_weak

    def _near(self, c: str) -> set[str]:
        """The references within their allowed typos of ``c``."""
        near: set[str] = set()
        tried: set[str] = set()
        for length in (len(c) - 2, len(c) - 1, len(c), len(c) + 1, len(c) + 2):
            if length < 10:
                continue
            d = 1 if length < 15 else 2
            if abs(length - len(c)) > d:
                continue
            for n, (start, size) in enumerate(_pieces("x" * length)):
                for shift in range(-d, d + 1):
                    if start + shift < 0:
                        continue
                    piece = c[start + shift:start + shift + size]
                    for key in self.by_piece.get((length, n, piece), ()):
                        if key not in tried:
                            tried.add(key)
                            if Levenshtein.distance(c, key, score_cutoff=max_edits(key)) <= max_edits(key):
                                near.add(key)
        return near

    # --- deciding ---

    def match(self, entry: BankEntry) -> Decision:
        """What the credit ``entry`` (amount > 0) pays; remembered for the next credit."""
        amount, ccy = entry.amount, entry.currency
        strong_ids, weak_ids = self.named(f"{entry.remittance} {entry.end_to_end_id}")
        ids, weak = (strong_ids, False) if strong_ids else (weak_ids, True)
        if ids:
            named = sorted(ids)
            refs = ", ".join(self.payments[i].references[0] for i in named)
            if any(self.payments[i].currency != ccy for i in named):
                return _ticket("foreign_currency", f"{amount} {ccy} for {refs}, which is owed in "
                                                   f"{self.payments[named[0]].currency}; not matched")
            if len(named) == 1:
                return self._one(named[0], amount, "fuzzy_reference" if weak else "reference", weak)
            total = sum((self.open[i] for i in named), ZERO)
            if total == amount:
                return self._apply(Decision("split", tuple((i, self.open[i]) for i in named),
                                            "fuzzy_reference" if weak else "reference",
                                            text=f"{amount} {ccy} pays {refs}"))
            return _ticket("ambiguous", f"{amount} {ccy} names {refs}, which are {total} open together")
        if ccy not in self.currencies:
            return _ticket("foreign_currency", f"{amount} {ccy}: no payment is owed in {ccy}; not matched")
        same = [i for i in self.by_amount.get((ccy, amount), ()) if i in self.open and self.open[i] == amount]
        payer = name_key(entry.debtor_name)
        fits = [i for i in same if payer and fuzz.token_sort_ratio(payer, name_key(self.payments[i].buyer))
                >= NAME_SIMILARITY]
        if len(fits) == 1:
            return self._one(fits[0], amount, "amount_and_name", False)
        if len(fits) > 1:
            refs = ", ".join(self.payments[i].references[0] for i in sorted(fits))
            return _ticket("ambiguous", f"{amount} {ccy} from {entry.debtor_name}: no reference, and "
                                        f"{len(fits)} open payments of that amount and name ({refs})")
        return _ticket("unknown_reference", f"{amount} {ccy} from {entry.debtor_name or 'an unnamed payer'}: no "
                                            f"open payment's reference in {entry.remittance[:80]!r}"
                                            + (f", and {len(same)} of that amount from another name" if same else ""))

    def _one(self, pid: int, amount: Decimal, matched_by: str, weak: bool) -> Decision:
        p, open_ = self.payments[pid], self.open[pid]
        ref = p.references[0]
        if weak and amount != open_:
            return _ticket("unclear_reference", f"{amount} {p.currency} quotes something like {ref} ({open_} open), "
                                                "but not exactly and not its amount; not matched")
        if amount == open_:
            return self._apply(Decision("paid", ((pid, amount),), matched_by, text=f"{ref} paid"))
        if amount < open_:
            return self._apply(Decision("partly_paid", ((pid, amount),), matched_by,
                                        text=f"{ref}: {amount} of {open_} received"))
        surplus = amount - open_
        return self._apply(Decision("overpaid", ((pid, amount),), matched_by, reason="surplus",
                                    text=f"{ref} paid with {surplus} {p.currency} too much: pay it back or keep "
                                         "it for the buyer", surplus=surplus))

    def _apply(self, d: Decision) -> Decision:
        for pid, amount in d.applied:
            p = self.payments[pid]
            self.by_amount[(p.currency, self.open[pid])].discard(pid)
            self.open[pid] -= amount
            if self.open[pid] <= 0:
                del self.open[pid]
            else:
                self.by_amount[(p.currency, self.open[pid])].add(pid)
        return d

    def match_return(self, entry: BankEntry) -> Decision:
        """What a returned direct debit (amount < 0) takes back, among payments that received
        money (this matcher's ``amount_open`` is what each received). Always with a ticket."""
        amount, ccy = -entry.amount, entry.currency
        why = f"direct debit of {amount} {ccy} returned" + (f" ({entry.return_reason})" if entry.return_reason else "")
        strong_ids, weak_ids = self.named(f"{entry.remittance} {entry.end_to_end_id}")
        ids = strong_ids or weak_ids
        if len(ids) == 1:
            [pid] = ids
            return self.take_back(pid, amount, ccy, why)
        if not ids:
            return _ticket("returned_debit", f"{why}: no payment of ours found in {entry.remittance[:80]!r}")
        refs = ", ".join(self.payments[i].references[0] for i in sorted(ids))
        return _ticket("returned_debit", f"{why}: names several payments ({refs}); not matched")

    def take_back(self, pid: int, amount: Decimal, currency: str, why: str) -> Decision:
        """A return of ``amount`` from payment ``pid`` (with its ticket), when it received that much
        in that currency; remembered, so a second return sees what is left."""
        p = self.payments[pid]
        if p.currency != currency or self.open.get(pid, ZERO) < amount:
            return _ticket("returned_debit", f"{why}: {p.references[0]} did not receive {amount} {currency}; "
                                             "not matched")
        self.open[pid] -= amount
        return Decision("returned", ((pid, -amount),), "return", reason="returned_debit",
                        text=f"{why}: {p.references[0]} is owed again")


def _pieces(key: str) -> list[tuple[int, int]]:
    """(start, size) of the d+1 pieces of a reference that may carry d typos."""
    n = max_edits(key) + 1
    size, rest = divmod(len(key), n)
    out, start = [], 0
    for i in range(n):
        width = size + (1 if i < rest else 0)
        out.append((start, width))
        start += width
    return out
