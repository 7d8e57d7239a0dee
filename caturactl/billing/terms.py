"""Payment terms (Zahlungsbedingungen) of an invoice: whether the buyer has paid already, and if
not, by when and how (BT-20 text, BT-9 due date). A pure rule over plain values; ``invoicing.build``
puts its answer on the document, ``connectors/einvoice/payment.py`` turns it into the payment
means of the XML, the PDF prints it with the bank details and, for a transfer, the EPC QR code.

- The channel collected the money (Amazon): paid through it, nothing due.
- The buyer has paid us already (PayPal, card, a prepayment that came in): "Bezahlt am ... per
  ...", nothing due, never a request for money.
- Cash on delivery: paid to the carrier at the door; direct debit: we collect it. Neither asks
  for a transfer.
- Otherwise (Kauf auf Rechnung, a prepayment still open): payable by transfer within the
  method's ``[payments.methods.<method>] due_days`` of the invoice date, quoting the invoice
  number (BT-83).

When a payment falls due (``Payment.due_at``, which the reminders count from) follows one rule:
the date the buyer reads. A purchase on account owes nothing before its invoice says so
(``first_due``: no due date on import); every other method is due ``due_days`` after the order,
as the order confirmation says. Once an invoice naming a due date is written for an order whose
payment is open, that date is the payment's (``due_at``: the end of that day in the merchant's
time zone), whatever it was before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from babel.dates import format_date

# The channel's words for money the buyer has handed over (the shop passes Shopware's transaction
# states through as ``Order.payment_state``); "authorized": a card or PayPal payment the provider
# holds for us, which the buyer has paid as far as they can tell.
PAID_STATES = frozenset({"paid", "authorized"})
TRANSFER, CASH_ON_DELIVERY, DIRECT_DEBIT = "transfer", "cod", "direct_debit"
# Kauf auf Rechnung: the buyer pays by the day the invoice names; nothing is due before it is written.
DUE_WITH_INVOICE = frozenset({"invoice"})
# The last second of the due date: a transfer on that day is in time, the next day it is overdue.
END_OF_DAY = time(23, 59, 59)
_LOCALES = {"de": "de_DE", "en": "en_GB"}  # as templates/invoices/layout.toml prints dates

METHOD_NAMES = {
    "de": {"prepayment": "Vorkasse (Überweisung)", "invoice": "Rechnung", "direct_debit": "SEPA-Lastschrift",
           "paypal": "PayPal", "card": "Kreditkarte", "cod": "Nachnahme", "channel": "den Verkaufskanal"},
    "en": {"prepayment": "prepayment (bank transfer)", "invoice": "invoice", "direct_debit": "SEPA direct debit",
           "paypal": "PayPal", "card": "credit card", "cod": "cash on delivery", "channel": "the sales channel"},
}
_TEXTS = {
    "de": {"channel": "Der Betrag wurde über {channel} bezahlt.",
           "paid_on": "Bezahlt am {day} per {method}.", "paid": "Bezahlt per {method}.",
           "transfer": "Zahlbar ohne Abzug bis zum {day} per Überweisung; bitte geben Sie die Rechnungsnummer "
                       "als Verwendungszweck an.",
           "cod": "Der Betrag wird bei der Zustellung per Nachnahme bezahlt.",
           "direct_debit": "Der Betrag wird per SEPA-Lastschrift von Ihrem Konto eingezogen."},
    "en": {"channel": "Paid through {channel}.",
           "paid_on": "Paid on {day} by {method}.", "paid": "Paid by {method}.",
           "transfer": "Payable without deduction by {day} by bank transfer; please quote the invoice number as "
                       "the payment reference.",
           "cod": "The amount is paid on delivery (cash on delivery).",
           "direct_debit": "The amount will be collected from your account by SEPA direct debit."},
}


@dataclass(frozen=True, slots=True)
class Settled:
    """Money the buyer has paid us already: on which day (None: the channel said so, not when)
    and how (a ``caturactl.payments.models.METHODS`` value)."""

    on: date | None
    method: str


@dataclass(frozen=True, slots=True)
class Terms:
    """What an invoice says about its money."""

    paid: bool  # the whole amount is paid (prepaid = gross, nothing due)
    through_channel: bool  # paid to the sales channel, which pays it out with its settlement
    text: str  # BT-20
    due_date: date | None = None  # BT-9, for an amount still to be transferred
    means: str = ""  # TRANSFER, CASH_ON_DELIVERY, DIRECT_DEBIT; "" when nothing is due


def day(value: date, lang: str) -> str:
    """``value`` as the document's language writes a date ("17.11.2025", "17 Nov 2025")."""
    return format_date(value, "medium", locale=_LOCALES.get(lang, "en_GB"))


def method_name(method: str, lang: str) -> str:
    """How the buyer pays, in words of ``lang`` (the method's own name when it has none)."""
    return METHOD_NAMES.get(lang, METHOD_NAMES["en"]).get(method, method)


def settled_by_channel(method: str, state: str) -> Settled | None:
    """Paid as the channel reports it (PayPal, card, a prepayment marked paid), with no date."""
    return Settled(None, method) if method and state in PAID_STATES else None


def decide(*, collects: bool, channel: str, method: str, settled: Settled | None, issue_date: date,
           due_days: int, lang: str) -> Terms:
    """The terms of an invoice issued on ``issue_date`` in ``lang`` for an order paid by
    ``method``; ``settled``: what the buyer has paid us already, if anything."""
    texts = _TEXTS.get(lang, _TEXTS["en"])
    if collects:
        return Terms(True, True, texts["channel"].format(channel=channel))
    if settled is not None:
        how = method_name(settled.method or method, lang)
        text = texts["paid_on"].format(day=day(settled.on, lang), method=how) if settled.on else \
            texts["paid"].format(method=how)
        return Terms(True, False, text)
    if method == "cod":
        return Terms(False, False, texts["cod"], means=CASH_ON_DELIVERY)
    if method == "direct_debit":
        return Terms(False, False, texts["direct_debit"], means=DIRECT_DEBIT)
    due = issue_date + timedelta(days=due_days)
    return Terms(False, False, texts["transfer"].format(day=day(due, lang)), due_date=due, means=TRANSFER)


def first_due(method: str, placed: datetime, due_days: int) -> datetime | None:
    """When a payment of ``method`` for an order placed at ``placed`` falls due before any invoice
    is written: ``due_days`` after the order, or None for a purchase on account, which falls due
    only with its invoice (``due_at``)."""
    return None if method in DUE_WITH_INVOICE else placed + timedelta(days=due_days)


def due_at(due_date: date, tz: ZoneInfo) -> datetime:
    """The instant (UTC) a payment due on ``due_date`` (an invoice's BT-9) falls due: the end of
    that day in ``tz``, so that it is overdue from the next day on and still shows ``due_date``."""
    return datetime.combine(due_date, END_OF_DAY, tz).astimezone(timezone.utc)
