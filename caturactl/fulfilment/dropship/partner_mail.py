"""Telling a partner on the portal that new purchase orders wait for it: one e-mail per
``dropship send`` run and partner, to its ``notify_email``, listing the numbers sent in that run
and the portal's address (``[portal] public_url``). Queued in the outbox in the caller's
transaction like every other mail (kind "email", target "partner"); German, the language of the
partners' portal by default, English for a partner outside the German-speaking countries.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from caturactl.billing.invoicing import GERMAN_SPEAKING
from caturactl.config import Config
from caturactl.fulfilment.shipping import EMAIL
from caturactl.orders import notices
from caturactl.outbox.service import enqueue

KIND = "new_purchase_orders"


def portal_url(cfg: Config) -> str:
    """The address partners open: ``[portal] public_url``, else the portal's own host and port."""
    return cfg.portal.public_url.rstrip("/") or f"http://{cfg.portal.host}:{cfg.portal.port}"


def tell_partner(session: Session, cfg: Config, partner: str, numbers: list[str]) -> bool:
    """Queue the mail telling ``partner`` of the purchase orders ``numbers`` (sent to it on the
    portal in this run); False when it has no ``notify_email``, nothing is new, or it was queued
    before (the outbox key names the first number, which is sent once)."""
    loc = cfg.locations[partner]
    if not (loc.notify_email and numbers):
        return False
    lang = "de" if loc.country in GERMAN_SPEAKING else "en"
    body = notices.render(KIND, lang, partner=loc.name, numbers=numbers, url=portal_url(cfg), company=cfg.company)
    subject = notices.SUBJECTS[lang][KIND].format(order=loc.name)
    return enqueue(session, f"{EMAIL}:partner:{partner}:{numbers[0]}", EMAIL, "partner",
                   {"to": [loc.notify_email], "subject": subject, "body": body})
