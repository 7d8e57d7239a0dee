"""Customer matching: who is the buyer of an imported order?

First by buyer e-mail (Amazon's relay address is stable per buyer and seller), then by a
normalised postal address with a fuzzy threshold (same country, postal code and house number
required; street and name compared with rapidfuzz), else a new customer. The reason is stored
on the order. ``decide`` is the pure rule; ``Matcher`` loads candidates a page at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from caturactl.config import MatchingConfig
from caturactl.core.errors import InputError, NotFoundError, StateError
from caturactl.customers.models import Customer, CustomerAddress, CustomerEmail
from caturactl.orders.models import Order
from caturactl.core.events import Event
from caturactl.core.address import Address, address_key, address_similarity, name_similarity, postal_key
from caturactl.core.events import EventKind, record


@dataclass(frozen=True, slots=True)
class Candidate:
    customer_id: int
    name: str
    address: Address


@dataclass(frozen=True, slots=True)
class Match:
    customer_id: int | None  # None: make a new customer
    reason: str
    score: float = 0.0


def decide(email: str, email_owner: int | None, name: str, address: Address | None,
           candidates: Iterable[Candidate], cfg: MatchingConfig) -> Match:
    """The matching rule over plain values: e-mail first, then the best address above both thresholds."""
    if email_owner is not None:
        return Match(email_owner, f"e-mail {email}", 100.0)
    best: Match | None = None
    if address is not None:
        for c in candidates:
            score = address_similarity(address, c.address)
            if score < cfg.address_threshold:
                continue
            who = name_similarity(name or address.name, c.name or c.address.name)
            if who < cfg.name_threshold:
                continue
            combined = (score + who) / 2
            if best is None or combined > best.score:
                one_line = ", ".join(x for x in (c.address.line1, f"{c.address.postal_code} {c.address.city}") if x)
                best = Match(c.customer_id, f"address {score:.0f}% / name {who:.0f}% like '{one_line}'", combined)
    if best is not None:
        return best
    return Match(None, "new customer" if (email or address) else "new customer (no buyer data yet)")


def canonical(session: Session, customer: Customer) -> Customer:
    """Follow merges to the customer that lives on."""
    seen = set()
    while customer.merged_into_id is not None:
        if customer.id in seen:
            raise StateError(f"customer merge loop at {customer.number}")
        seen.add(customer.id)
        customer = session.get(Customer, customer.merged_into_id)
    return customer


class Matcher:
    """Matches the buyers of one page of orders with two queries for the whole page.

    Customers are held as objects (keyed by a number: the id for stored ones, a negative
    number for ones made on this page), so nothing has to be flushed to learn an id.
    """

    def __init__(self, session: Session, cfg: MatchingConfig):
        self.session, self.cfg = session, cfg
        self._customers: dict[int, Customer] = {}
        self._key_by_object: dict[int, int] = {}
        self._emails: dict[str, int] = {}
        self._candidates: dict[tuple[str, str], list[Candidate]] = {}
        self._keys: set[tuple[int, str]] = set()

    def _key(self, customer: Customer) -> int:
        key = self._key_by_object.get(id(customer))
        if key is None:
            key = customer.id if customer.id is not None else -(len(self._key_by_object) + 1)
            self._key_by_object[id(customer)] = key
            self._customers[key] = customer
        return key

    def preload(self, emails: Iterable[str], addresses: Iterable[Address]) -> None:
        emails = {e for e in emails if e}
        ids: set[int] = set()
        rows: list[CustomerAddress] = []
        if emails:
            for email, cid in self.session.execute(
                    select(CustomerEmail.email, CustomerEmail.customer_id).where(CustomerEmail.email.in_(emails))):
                self._emails[email] = cid
                ids.add(cid)
        postals = {postal_key(a.postal_code) for a in addresses if a and a.postal_code}
        if postals:
            rows = list(self.session.scalars(select(CustomerAddress).where(CustomerAddress.postal_key.in_(postals))))
            ids.update(r.customer_id for r in rows)
        if ids:
            for c in self.session.scalars(select(Customer).where(Customer.id.in_(ids))):
                self._key(c)
        for row in rows:
            self._add_candidate(row.customer_id, row)

    def _add_candidate(self, key: int, row: CustomerAddress) -> None:
        self._candidates.setdefault((row.country, row.postal_key), []).append(Candidate(key, row.name, row.to_address()))
        self._keys.add((key, row.address_key))

    def _customer(self, key: int) -> Customer:
        c = self._customers.get(key)
        if c is None:
            c = self.session.get(Customer, key)
            self._key(c)
        return canonical(self.session, c)

    def match(self, email: str, name: str, company: str, address: Address | None) -> tuple[Customer | None, str]:
        """The customer for this buyer (found or created, e-mail and address remembered) and why."""
        owner = self._emails.get(email) if email else None
        if owner is not None:
            owner = self._key(self._customer(owner))
        cands = self._candidates.get((address.country, postal_key(address.postal_code)), []) if address else []
        m = decide(email, owner, name, address, cands, self.cfg)
        if m.customer_id is None:
            if not email and address is None:
                return None, m.reason
            customer = Customer(name=name or (address.name if address else ""),
                                company=company or (address.company if address else ""))
            self.session.add(customer)
        else:
            customer = self._customer(m.customer_id)
        key = self._key(customer)
        if email and email not in self._emails:
            self.session.add(CustomerEmail(customer=customer, email=email))
            self._emails[email] = key
        if address is not None and address.line1:
            akey = address_key(address)
            if (key, akey) not in self._keys:
                row = CustomerAddress(customer=customer, name=address.name, company=address.company,
                                      line1=address.line1, line2=address.line2, line3=address.line3,
                                      postal_code=address.postal_code, city=address.city, state=address.state,
                                      country=address.country, postal_key=postal_key(address.postal_code),
                                      address_key=akey)
                self.session.add(row)
                self._add_candidate(key, row)
        return customer, m.reason


def find_customer(session: Session, ref: str) -> Customer:
    """A customer by number (K000012), id or e-mail; raises NotFoundError."""
    ref = ref.strip()
    cid = None
    if ref[:1].upper() == "K" and ref[1:].isdigit():
        cid = int(ref[1:])
    elif ref.isdigit():
        cid = int(ref)
    elif "@" in ref:
        cid = session.scalar(select(CustomerEmail.customer_id).where(CustomerEmail.email == ref.lower()))
    customer = session.get(Customer, cid) if cid is not None else None
    if customer is None:
        raise NotFoundError(f"no customer {ref!r}")
    return customer


def merge(session: Session, keep_ref: str, gone_ref: str) -> Customer:
    """Join customer ``gone_ref`` into ``keep_ref``: orders, e-mails and addresses move over, the
    merged customer stays (marked) so history and old numbers still resolve. Raises InputError."""
    keep, gone = find_customer(session, keep_ref), find_customer(session, gone_ref)
    if keep.id == gone.id:
        raise InputError(f"cannot merge {keep.number} with itself")
    if keep.merged_into_id is not None:
        raise StateError(f"{keep.number} was merged into K{keep.merged_into_id:06d}; merge into that one")
    if gone.merged_into_id is not None:
        raise StateError(f"{gone.number} is already merged into K{gone.merged_into_id:06d}")
    moved = {}
    for model in (Order, CustomerEmail, CustomerAddress):
        moved[model.__tablename__] = session.execute(
            update(model).where(model.customer_id == gone.id).values(customer_id=keep.id)).rowcount
    gone.merged_into_id = keep.id
    why = (f"{gone.number} merged into {keep.number}: " +
           ", ".join(f"{n} {t}" for t, n in moved.items()))
    record(session, EventKind.CUSTOMER_MERGED, why, customer=keep, data={"merged": gone.id, **moved})
    record(session, EventKind.CUSTOMER_MERGED, why, customer=gone, data={"into": keep.id, **moved})
    return keep


def customer_history(session: Session, customer: Customer) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.customer_id == customer.id).order_by(Event.id)))

