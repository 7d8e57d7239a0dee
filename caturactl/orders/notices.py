"""What the buyer is told, in one place: a notice is an e-mail from ``templates/mail/<kind>_<lang>.txt.j2``
(German or English, by the buyer's country unless ``[invoices] language`` fixes one), queued in
the outbox in the transaction that decided it, once per key.

Only a channel that lets us mail its buyers gets notices (``tells_buyers``): Amazon's buyers are
told by Amazon.
"""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy.orm import Session

from caturactl import channels
from caturactl.config import Config
from caturactl.orders.models import Order
from caturactl.outbox.service import enqueue

EMAIL = "email"
GERMAN_SPEAKING = {"DE", "AT", "CH", "LI", "LU"}
SUBJECTS = {
    "de": {"order_confirmation": "Ihre Bestellung {order}", "payment_received": "Zahlung zu Ihrer Bestellung {order} "
           "erhalten", "payment_reminder": "Zahlungserinnerung zu Ihrer Bestellung {order}",
           "order_cancelled": "Ihre Bestellung {order} wurde storniert", "shipped": "Ihre Bestellung {order} ist unterwegs",
           "new_order": "Neue Bestellung {order}"},
    "en": {"order_confirmation": "Your order {order}", "payment_received": "Payment received for your order {order}",
           "payment_reminder": "Payment reminder for your order {order}",
           "order_cancelled": "Your order {order} has been cancelled", "shipped": "Your order {order} is on its way",
           "new_order": "New order {order}"},
}


def language(cfg: Config, country: str) -> str:
    """The buyer's language: German for German-speaking countries, English elsewhere, unless fixed."""
    if cfg.invoices.language != "auto":
        return cfg.invoices.language
    return "de" if country in GERMAN_SPEAKING else "en"


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=PackageLoader("templates", "mail"), undefined=StrictUndefined,
                       keep_trailing_newline=True, autoescape=False)


def render(kind: str, lang: str, **context) -> str:
    """The text of notice ``kind`` in ``lang`` with ``context``; StrictUndefined: a template that
    names a value nobody gave fails loudly instead of mailing a blank."""
    return _env().get_template(f"{kind}_{lang}.txt.j2").render(**context)


def notify(session: Session, cfg: Config, order: Order, kind: str, *, key: str | None = None, **context) -> bool:
    """Queue notice ``kind`` for the buyer of ``order`` (once per ``key``, default kind:order);
    False when the channel does not let us mail its buyers, the buyer has no address, or the
    notice was queued before."""
    if not (order.buyer_email and channels.get(order.channel).tells_buyers(cfg)):
        return False
    lang = language(cfg, order.ship_country)
    body = render(kind, lang, order=order, company=cfg.company, **context)
    subject = SUBJECTS[lang][kind].format(order=order.external_id)
    return enqueue(session, f"{EMAIL}:{key or kind}:{order.external_id}", EMAIL, "customer",
                   {"to": [order.buyer_email], "subject": subject, "body": body, "order_id": order.id})
