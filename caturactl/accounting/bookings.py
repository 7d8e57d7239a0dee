"""Accounting: the double-entry bookings (Buchungssätze) an invoice or credit note produces, as
plain values for the accountant's export. Pure functions over plain values.

Revenue is booked gross against the chart's automatic revenue accounts (8400/8300 in SKR03,
4400/4300 in SKR04: the account itself splits off the VAT, so those entries carry no tax key);
intra-Community supplies and exports go to their tax-free accounts, OSS sales to the OSS account
with the OSS tax key plus country and rate (reference/accounting/accounts.md §1, §4, §5), and
an intra-Community supply carries the buyer's VAT id, which DATEV needs for the recapitulative
statement (Zusammenfassende Meldung). The debtor side of an order whose channel collects the money
(Amazon) is that channel's clearing account, because the channel pays it out with its settlement;
other orders use receivables. A credit note books the same the other way round.

A bank credit matched to a payment (``payment_receipts``) books the money from the debtor side
its invoice was booked on (receivables, or the collecting channel's clearing account) to the bank
account (Bank: SKR03 1200, SKR04 1800) on the statement's booking day; a returned direct debit
books it back. Only what was applied to payments is booked: a credit that paid nothing, or
the surplus of an over-payment, waits for a person (its ticket).

A dropshipper's invoice to us books the goods on Wareneingang against the partner's creditor
account, and our purchase credit for goods it took back the other way (``purchase_entries``).

A settlement books each kind of fee line on the account ``[accounts.fee_accounts]`` (or the
defaults, ``DEFAULT_FEE_ACCOUNTS``) names for it. The channel's services (Amazon's: invoiced from
Luxembourg without VAT) carry § 13b UStG: on the automatic § 13b account without a key,
on any other account with the § 13b tax key (accounts.md §3, §4). A line no pattern names is
booked on ``fee_default`` under § 13b, never without it, and ``unmapped_fees`` lists it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Iterable, Mapping

from caturactl.config import DEFAULT_FEE_ACCOUNTS, AccountsConfig
from caturactl.core.errors import InputError
from caturactl.ports import InvoiceDocument, JournalEntry

STANDARD_RATES = frozenset({Decimal(19), Decimal(16)})  # DE standard, and its 2020 cut
REDUCED_RATES = frozenset({Decimal(7), Decimal(5)})


def revenue_account(category: str, rate: Decimal, foreign_vat: bool, accounts: AccountsConfig) -> tuple[str, str]:
    """(account, tax key) for one tax group of an invoice."""
    if category == "K":
        return accounts.account("revenue_intra_eu"), ""
    if category == "G":
        return accounts.account("revenue_export"), ""
    if foreign_vat:
        return accounts.account("revenue_oss"), accounts.oss_tax_key
    if rate in REDUCED_RATES:
        return accounts.account("revenue_reduced"), ""
    return accounts.account("revenue_standard"), ""


def invoice_entries(doc: InvoiceDocument, accounts: AccountsConfig, *, home_country: str = "DE",
                    clearing_account: str | None = None) -> list[JournalEntry]:
    """The bookings of one invoice (or credit note, type 381): one per tax group, gross, against
    ``clearing_account`` (the purpose of the clearing account of the channel that collected the
    money, ``SalesChannel.clearing_account``) or, when no channel did (None), receivables. Raises
    InputError for an intra-Community supply without the buyer's VAT id."""
    # The channel that collected the money pays it out with its settlement: its clearing account.
    debtor = accounts.account(clearing_account or "receivables")
    foreign = bool(doc.tax_country) and doc.tax_country != home_country  # OSS: the destination's VAT
    entries = []
    for t in doc.taxes:
        account, key = revenue_account(t.category, t.rate, foreign and t.category == "S", accounts)
        gross = t.net + t.tax
        if gross == 0:
            continue
        if t.category == "K" and not doc.buyer.vat_id.strip():
            # Tax-free only with the buyer's VAT id (vat.md §4), and DATEV reports it from there.
            raise InputError("an intra-Community supply without the buyer's VAT id cannot be booked tax-free",
                             where=f"{doc.number}: buyer vat_id")
        debit, credit = (account, debtor) if doc.is_credit_note else (debtor, account)
        entries.append(JournalEntry(
            date=doc.issue_date, document=doc.number, text=f"{doc.order_id} {doc.buyer.name}"[:60],
            debit=debit, credit=credit, amount=gross, tax_key=key,
            # OSS: the destination whose VAT is charged (datev.md §3 column 40), which is where
            # the goods went, not necessarily the billing address
            country=doc.tax_country if key else "",
            # intra-Community supply: the buyer's VAT id, country prefix included (datev.md §3 column 40)
            vat_id=doc.buyer.vat_id.replace(" ", "").upper() if t.category == "K" else "",
            rate=t.rate if key else None, order_id=doc.order_id))
    return entries


@dataclass(frozen=True, slots=True)
class FeeBooking:
    """Where one kind of settlement line is booked: ``account``, with ``tax_key`` (BU-Schlüssel).
    ``pattern`` is the fee_accounts or default pattern that named the line, "" when none did."""

    account: str
    tax_key: str
    reverse_charge: bool  # § 13b UStG
    pattern: str


def fee_booking(description: str, accounts: AccountsConfig) -> FeeBooking:
    """The booking of the settlement lines ``description`` ("transaction-type/amount-type/
    amount-description"): the first of ``accounts.fee_accounts``, then ``DEFAULT_FEE_ACCOUNTS``,
    whose pattern matches it (a pattern without "/" matches the amount-description alone); none:
    ``accounts.fee_default`` under § 13b, with ``pattern`` "". KeyError for an unknown purpose."""
    amount_description = description.split("/", 2)[-1]
    rules = [(pattern, rule.account, rule.reverse_charge, rule.tax_key)
             for pattern, rule in accounts.fee_accounts.items()]
    rules += [(pattern, purpose, reverse_charge, "")
              for pattern, (purpose, reverse_charge) in DEFAULT_FEE_ACCOUNTS.items()]
    for pattern, where, reverse_charge, key in rules:
        if fnmatchcase(description if "/" in pattern else amount_description, pattern):
            return _fee_booking(accounts.account(where), reverse_charge, key, pattern, accounts)
    return _fee_booking(accounts.account(accounts.fee_default), True, "", "", accounts)


def _fee_booking(account: str, reverse_charge: bool, key: str, pattern: str, accounts: AccountsConfig) -> FeeBooking:
    if reverse_charge and not key and account != accounts.account("fees_13b"):
        # The automatic § 13b account books both taxes itself (and DATEV refuses a key on it);
        # any other account needs the § 13b key (accounts.md §3, §4).
        key = accounts.reverse_charge_tax_key
    return FeeBooking(account, key, reverse_charge, pattern)


def unmapped_fees(fee_totals: Iterable[tuple[str, Decimal]], accounts: AccountsConfig) -> list[tuple[str, Decimal]]:
    """The fee lines no pattern names (booked on ``fee_default`` under § 13b): a person should
    say where they belong."""
    return [(description, amount) for description, amount in fee_totals
            if not fee_booking(description, accounts).pattern]


def settlement_entries(settlement_id: str, deposit_date: date, fee_totals: Iterable[tuple[str, Decimal]],
                       payout: Decimal, accounts: AccountsConfig, *, clearing_account: str,
                       label: str) -> list[JournalEntry]:
    """The bookings of one settlement of the channel ``label`` (accounts.md §5) on ``deposit_date``
    (the business day): each kind of fee or other line (``fee_totals``: description, sum) against
    the channel's clearing account (the purpose ``clearing_account``) on its own account
    (``fee_booking``), and the payout from the clearing account to money in transit. Sales and
    refunds were booked with their invoices and credit notes; the reserve stays on the clearing
    account; differences wait for a person. So every cent of the settlement is on an account."""
    clearing = accounts.account(clearing_account)
    doc = settlement_id[-36:]
    out = []
    for description, amount in fee_totals:
        if amount == 0:
            continue
        fee = fee_booking(description, accounts)
        text = f"{label} {description}"[:60]
        if amount < 0:  # charged by the channel: a cost
            out.append(JournalEntry(deposit_date, doc, text, fee.account, clearing, -amount, tax_key=fee.tax_key))
        else:  # paid back or paid out by the channel
            out.append(JournalEntry(deposit_date, doc, text, clearing, fee.account, amount, tax_key=fee.tax_key))
    if payout > 0:
        out.append(JournalEntry(deposit_date, doc, f"{label} Auszahlung {settlement_id}",
                                accounts.account("transit"), clearing, payout))
    elif payout < 0:
        out.append(JournalEntry(deposit_date, doc, f"{label} Belastung {settlement_id}",
                                clearing, accounts.account("transit"), -payout))
    return out


def receipt_entry(booking_date: date, document: str, text: str, amount: Decimal, accounts: AccountsConfig, *,
                  clearing_account: str | None = None, order_id: str = "") -> JournalEntry | None:
    """The booking of money received on a payment (``amount`` > 0: bank to debtor side) or taken
    back by a returned direct debit (< 0: the other way), against ``clearing_account`` (an
    [accounts] purpose; None: receivables); None for a zero amount."""
    if amount == 0:
        return None
    bank, debtor = accounts.account("bank"), accounts.account(clearing_account or "receivables")
    debit, credit = (bank, debtor) if amount > 0 else (debtor, bank)
    return JournalEntry(booking_date, document[-36:], text[:60], debit, credit, abs(amount), order_id=order_id)


def purchase_entries(document: str, day: date, text: str, gross_by_rate: Mapping[Decimal, Decimal], creditor: str,
                     accounts: AccountsConfig, *, credit: bool = False) -> list[JournalEntry]:
    """The bookings of a dropshipper's invoice to us (Eingangsrechnung), or with ``credit`` of our
    purchase credit for goods it took back: per VAT rate its gross on the purchases account
    against the partner's creditor account (``creditor``: 70000-99999, accounts.md §2), the other
    way round for a credit. Purchases of goods go to Wareneingang (accounts.md §3: SKR03 3400 /
    SKR04 5400 at 19 %; the 7 % account ``purchases_reduced`` is not in accounts.md), automatic
    input-tax accounts in the DATEV charts, so no tax key. Raises InputError naming the document
    for a rate that is neither standard nor reduced (book it by hand)."""
    out = []
    for rate, gross in sorted(gross_by_rate.items(), key=lambda kv: -kv[0]):
        if gross == 0:
            continue
        if rate in STANDARD_RATES:
            account = accounts.account("purchases")
        elif rate in REDUCED_RATES:
            account = accounts.account("purchases_reduced")
        else:
            raise InputError(f"a purchase at {rate} % VAT has no purchases account here; book it by hand",
                             where=document)
        debit, against = (creditor, account) if credit else (account, creditor)
        out.append(JournalEntry(day, document[-36:], text[:60], debit, against, gross))
    return out
