"""Test data for the partner portal: a configuration with two dropshippers on the portal, their
users, and purchase orders put straight into the state a test needs (through tests/factories.py
and the dropship services that make and send them, never by replaying the pipeline)."""

from __future__ import annotations

import threading
import time
import tomllib
from contextlib import contextmanager
from typing import Iterator

import uvicorn
from sqlalchemy.orm import Session

from caturactl.app import App
from caturactl.config import Config
from caturactl.core import clock
from carriers.tracking import make_number
from caturactl.fulfilment.dropship import outgoing, purchasing, returns, service
from caturactl.fulfilment.dropship.models import PurchaseOrder
from caturactl.fulfilment.dropship.returns import DropshipReturn
from caturactl.portal import auth
from caturactl.portal.app import build
from standins.servers import free_port
from tests import factories
from tests.fulfilment import COMPANY, carrier_section

PASSWORD = "correct horse battery"
DHL = ("dhl_paket", "DHL", "V01PAK")


def dropshippers() -> str:
    """Two dropshippers that work on the portal alone (no transport)."""
    return "".join(f"""
[locations.{code}]
name = "{name}"
kind = "dropshipper"
priority = {prio}
carriers = ["dhl_paket"]
answer_within_hours = 8
availability_max_age_hours = 24
street = "{street}"
postal_code = "{postal}"
city = "{city}"
""" for code, name, prio, street, postal, city in (("DS1", "Streckenhandel Eins", 30, "Hafenstr. 3", "20457", "Hamburg"),
                                                  ("DS2", "Direktversand Zwei", 40, "Ringstr. 9", "04109", "Leipzig")))


def config(database_url: str, *, portal: str = "") -> Config:
    """The company, the template's carriers, DS1 and DS2, and ``[portal]`` settings."""
    text = (COMPANY + carrier_section() + dropshippers() +
            f'\n[database]\nurl = "{database_url}"\n\n[portal]\npublic_url = "http://portal.test"\n{portal}\n')
    return Config.model_validate(tomllib.loads(text))


def app(database_url: str, **kw) -> App:
    """The composition root over the test database with ``config(...)``."""
    return App(config(database_url, **kw))


def user(s: Session, cfg: Config, partner: str, email: str, password: str = PASSWORD):
    """A partner user who has set its password through its invitation."""
    token = auth.invite(s, cfg, partner, email)
    return auth.accept_invitation(s, token, password)


def purchase_order(s: Session, cfg: Config, partner: str = "DS1", lines=("TOOL-1",), **order_kw) -> PurchaseOrder:
    """A purchase order to ``partner`` for a new released order of ``lines`` (tests/factories.py's
    forms), sent (on the portal: its lines open, its answer due in the partner's business hours)."""
    note = factories.routed(s, factories.released(s, lines, **order_kw), location=partner, carrier=DHL,
                            exported=False)
    [po] = purchasing.create_for_notes(s, cfg, [note.id], clock.now())
    outgoing.send(s, cfg, None, now=clock.now())  # a portal partner's order is not written to a file
    s.flush()
    return po



def returned(s: Session, cfg: Config, partner: str = "DS1", lines=("TOOL-1",), *, serial: int = 900,
             reason: str = "zu klein", **order_kw) -> DropshipReturn:
    """A purchase order to ``partner``, shipped in one DHL parcel (through the dropship service,
    as the partner would), and the buyer's return of all of it announced back to the partner."""
    po = purchase_order(s, cfg, partner, lines, **order_kw)
    service.add_parcel(s, partner, po.number, carrier="DHL", tracking=make_number("DHL", serial), lines=None,
                       actor="test", cfg=cfg)
    [rt] = returns.announce(s, cfg, po.order, None, reason, source="test", now=clock.now())
    return rt

@contextmanager
def served(app: App) -> Iterator[str]:
    """The portal of ``app`` under a real uvicorn on a free loopback port (in a thread of this
    process, so it reads the app clock the test set); yields its base URL, stops it afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build(app), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, proxy_headers=True, forwarded_allow_ips="127.0.0.1"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
