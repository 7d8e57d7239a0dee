"""What the buyer is told, in one place: a notice is an e-mail from
``templates/mail/<kind>_<lang>.txt.j2`` (German or English by the buyer's country, as the invoice
is: ``billing/invoicing.language_for``), queued in the outbox in the transaction that decided it,
once per key.

Only a channel that lets us mail its buyers gets notices (``tells_buyers``): Amazon's buyers are
told by Amazon. The merchant is told of each new order at ``[company] order_mail`` when it is set
(``notify_merchant``), whatever the channel.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from babel.numbers import format_currency
from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy.orm import Session

from caturactl import channels
from caturactl.billing import terms
from caturactl.billing.invoicing import language_for
from caturactl.config import Config
from caturactl.core import clock
from caturactl.core.lifecycle import OrderState
from caturactl.orders.models import Order
from caturactl.outbox.service import enqueue

EMAIL = "email"
# An order placed longer ago than this is not confirmed at its import: a first import reads weeks
# back, and those buyers had their confirmation from the shop when they ordered.
CONFIRM_WITHIN = timedelta(days=2)
_LOCALES = {"de": "de_DE", "en": "en_GB"}
SUBJECTS = {
    "de": {"order_confirmation": "Ihre Bestellung {order}", "payment_received": "Zahlung zu Ihrer Bestellung {order} "
           "erhalten", "payment_reminder": "Zahlungserinnerung zu Ihrer Bestellung {order}",
           "order_cancelled": "Ihre Bestellung {order} wurde storniert", "shipped": "Ihre Bestellung {order} ist unterwegs",
           "new_order": "Neue Bestellung {order}", "return_received": "Ihre Rücksendung zur Bestellung {order} ist "
           "angekommen", "return_refused": "Ihre Rücksendung zur Bestellung {order}",
           "delayed": "Ihre Bestellung {order}: ein Artikel verzögert sich",
           "new_purchase_orders": "Neue Bestellungen für {order} im Partnerportal"},
    "en": {"order_confirmation": "Your order {order}", "payment_received": "Payment received for your order {order}",
           "payment_reminder": "Payment reminder for your order {order}",
           "order_cancelled": "Your order {order} has been cancelled", "shipped": "Your order {order} is on its way",
           "new_order": "New order {order}", "return_received": "Your return for order {order} has arrived",
           "return_refused": "Your return for order {order}",
           "delayed": "Your order {order}: an item is delayed",
           "new_purchase_orders": "New purchase orders for {order} on the partner portal"},
}


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=PackageLoader("templates", "mail"), undefined=StrictUndefined,
                       keep_trailing_newline=True, autoescape=False)


def render(kind: str, lang: str, **context) -> str:
    """The text of notice ``kind`` in ``lang`` with ``context``; StrictUndefined: a template that
    names a value nobody gave fails loudly instead of mailing a blank."""
    return _env().get_template(f"{kind}_{lang}.txt.j2").render(**context)


def outbox_key(order: Order, key: str) -> str:
    """The outbox key of notice ``key`` ("kind" or "kind:qualifier") about ``order``:
    ``email:<kind>:<order>[:<qualifier>]`` (``email:shipped:<order>:<package>``)."""
    kind, _, qualifier = key.partition(":")
    return f"{EMAIL}:{kind}:{order.external_id}" + (f":{qualifier}" if qualifier else "")


def notify(session: Session, cfg: Config, order: Order, kind: str, *, key: str | None = None, **context) -> bool:
    """Queue notice ``kind`` for the buyer of ``order`` (once per ``key``: "kind" or
    "kind:qualifier", default the kind; ``outbox_key``); False when the channel does not let us
    mail its buyers, the buyer has no address, or the notice was queued before."""
    if not (order.buyer_email and channels.get(order.channel).tells_buyers(cfg)):
        return False
    lang = language_for(cfg, order.ship_country)
    body = render(kind, lang, order=order, company=cfg.company, **context)
    subject = SUBJECTS[lang][kind].format(order=order.external_id)
    return enqueue(session, outbox_key(order, key or kind), EMAIL, "customer",
                   {"to": [order.buyer_email], "subject": subject, "body": body, "order_id": order.id})


def notify_merchant(session: Session, cfg: Config, order: Order, kind: str, *, lang: str = "de",
                    **context) -> bool:
    """Queue notice ``kind`` about ``order`` for the merchant at ``[company] order_mail`` (once per
    kind and order, outbox key ``email:merchant:<kind>:<order>``); False when no address is set or
    it was queued before."""
    to = cfg.company.order_mail.strip()
    if not to:
        return False
    body = render(kind, lang, order=order, company=cfg.company, **context)
    subject = SUBJECTS[lang][kind].format(order=order.external_id)
    return enqueue(session, f"{EMAIL}:merchant:{kind}:{order.external_id}", EMAIL, "merchant",
                   {"to": [to], "subject": subject, "body": body, "order_id": order.id})


def money(value: Decimal | None, currency: str, lang: str) -> str:
    """``value`` as the buyer's language writes an amount ("67,80 €", "€67.80"); "" for None."""
    return "" if value is None else format_currency(value, currency, locale=_LOCALES.get(lang, "en_GB"))


def order_placed(session: Session, cfg: Config, order: Order, *, payment=None, now: datetime | None = None) -> int:
    """Tell the buyer of a newly imported ``order`` what they ordered and how they pay (for a
    prepayment: to which account, how much, quoting what, by when: ``payment``, the order's
    expected ``caturactl.payments.models.Payment``), and the merchant that it came in; the
    number of mails queued. An order placed before ``CONFIRM_WITHIN`` gets neither (it is no
    news), one cancelled or shipped already no confirmation, nor one whose channel confirms its
    orders itself (Amazon)."""
    if order.created_at < (now or clock.now()) - CONFIRM_WITHIN:
        return 0
    queued = 0
    lines = [(ln.title or ln.sku, ln.sku, ln.quantity, ln.total_amount) for ln in order.lines]
    # Asked before the context is built: a bulk import of a channel we do not mail stays cheap.
    channel = channels.get(order.channel)
    if order.state not in (OrderState.CANCELLED.value, OrderState.SHIPPED.value) and order.buyer_email and \
            not channel.confirms_orders_itself and channel.tells_buyers(cfg):
        lang = language_for(cfg, order.ship_country)
        queued += notify(session, cfg, order, "order_confirmation", **_order_context(cfg, order, lines, payment, lang))
    if cfg.company.order_mail.strip():
        queued += notify_merchant(session, cfg, order, "new_order", **_order_context(cfg, order, lines, payment, "de"))
    return queued


def _order_context(cfg: Config, order: Order, lines, payment, lang: str) -> dict:
    """What the order mails say: the items and total as the buyer's language writes them, the
    payment method in words, and for an open prepayment the transfer to make."""
    c = cfg.company
    transfer = None
    if payment is not None and payment.method == "prepayment" and payment.amount_open > 0 and c.iban.strip():
        due = payment.due_at.astimezone(cfg.tz).date() if payment.due_at else None
        iban = c.iban.replace(" ", "")
        transfer = {"payee": c.name, "iban": " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)),
                    "bic": c.bic, "bank": c.bank, "amount": money(payment.amount_open, payment.currency, lang),
                    "reference": payment.reference, "due": terms.day(due, lang) if due else ""}
    return {"items": [{"title": title, "sku": sku, "quantity": qty, "amount": money(amount, order.currency, lang)}
                      for title, sku, qty, amount in lines],
            "total": money(order.total_amount, order.currency, lang),
            "method": terms.method_name(order.payment_method, lang) if order.payment_method else "",
            "transfer": transfer}
