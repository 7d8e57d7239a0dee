"""Accounting: the double-entry bookings (Buchungssätze) an invoice or credit note produces, as
plain values for the accountant's export. Pure functions over plain values.

Revenue is booked gross against the chart's automatic revenue accounts (8400/8300 in SKR03,
4400/4300 in SKR04: the account itself splits off the VAT, so those entries carry no tax key);
intra-Community supplies and exports go to their tax-free accounts, OSS sales to the OSS account
with the OSS tax key plus country and rate (reference/accounting/accounts.md §1, §4, §5). The
debtor side of an Amazon order is the Amazon clearing account, because Amazon collects the money
and pays it out with the settlement; other channels use receivables. A credit note books the
same the other way round.
"""

from __future__ import annotations

from decimal import Decimal

from caturactl.config import AccountsConfig
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
                    paid_through_amazon: bool = True) -> list[JournalEntry]:
    """The bookings of one invoice (or credit note, type 381): one per tax group, gross."""
    debtor = accounts.account("amazon_clearing" if paid_through_amazon else "receivables")
    foreign = bool(doc.tax_country) and doc.tax_country != home_country  # OSS: the destination's VAT
    entries = []
    for t in doc.taxes:
        account, key = revenue_account(t.category, t.rate, foreign and t.category == "S", accounts)
        gross = t.net + t.tax
        if gross == 0:
            continue
        debit, credit = (account, debtor) if doc.is_credit_note else (debtor, account)
        entries.append(JournalEntry(
            date=doc.issue_date, document=doc.number, text=f"{doc.order_id} {doc.buyer.name}"[:60],
            debit=debit, credit=credit, amount=gross, tax_key=key,
            # OSS: the destination whose VAT is charged (datev.md §3 column 40), which is where
            # the goods went, not necessarily the billing address
            country=doc.tax_country if key else "", vat_id=doc.buyer.vat_id if t.category == "K" else "",
            rate=t.rate if key else None, order_id=doc.order_id))
    return entries


def settlement_entries(settlement_id: str, deposit_date, fees: Decimal, other: Decimal, payout: Decimal,
                       accounts: AccountsConfig) -> list[JournalEntry]:
    """The bookings of one settlement (accounts.md §5): Amazon's fees (invoiced from Luxembourg,
    § 13b reverse charge, on the automatic § 13b account) and other charges against the Amazon
    clearing account, and the payout from the clearing account to money in transit. Sales and
    refunds were booked with their invoices and credit notes; the reserve stays on the clearing
    account; differences wait for a person."""
    clearing = accounts.account("amazon_clearing")
    doc = settlement_id[-36:]
    out = []
    for amount, account, text in ((fees, accounts.account("fees_13b"), "Amazon Gebühren (§ 13b UStG)"),
                                  (other, accounts.account("fees"), "Amazon sonstige Buchungen")):
        if amount < 0:
            out.append(JournalEntry(deposit_date, doc, f"{text} {settlement_id}", account, clearing, -amount))
        elif amount > 0:
            out.append(JournalEntry(deposit_date, doc, f"{text} {settlement_id}", clearing, account, amount))
    if payout > 0:
        out.append(JournalEntry(deposit_date, doc, f"Amazon Auszahlung {settlement_id}",
                                accounts.account("transit"), clearing, payout))
    elif payout < 0:
        out.append(JournalEntry(deposit_date, doc, f"Amazon Belastung {settlement_id}",
                                clearing, accounts.account("transit"), -payout))
    return out
