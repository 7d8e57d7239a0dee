"""Triage rules over plain values, and resolving tickets through the CLI."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from caturactl.config import TriageConfig
from caturactl.core.address import Address
from caturactl.core.money import Money
from caturactl.ports import MarketplaceLine, MarketplaceOrder, TaxRegistration
from caturactl.orders.triage import holds

T0 = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)
GOOD = Address(name="Hans Müller", line1="Hauptstraße 12", postal_code="10115", city="Berlin", country="DE")


def order(**kw) -> MarketplaceOrder:
    line = MarketplaceLine(line_id="1", sku=kw.pop("sku", "SKU-1"), listing_id="B0", title="Gartenschere", quantity=1,
                           quantity_shipped=0, unit_price=Money(Decimal("9.99"), "EUR"), total=None, tax=None,
                           shipping=None, gift_message=kw.pop("gift", ""), cancel_requested=kw.pop("cancel", ""))
    base = dict(channel="amazon", external_id="302-0000000-0000001", marketplace_id="A1PA6795UKMFR9",
                marketplace_name="Amazon.de", created_at=T0, updated_at=T0, status="UNSHIPPED",
                fulfilled_by="MERCHANT", service_level="STANDARD", programs=(), buyer_email="x@marketplace.amazon.de",
                buyer_name="Hans Müller", buyer_company="", purchase_order="", address=GOOD,
                delivery_instructions="", total=None, lines=(line,))
    base.update(kw)
    return MarketplaceOrder(**base)


CFG = TriageConfig()
SKUS = frozenset({"SKU-1"})


def codes(o, cfg=CFG):
    return [h.code for h in holds(o, SKUS, cfg)]


def test_a_plain_order_passes():
    assert holds(order(), SKUS, CFG) == []


@pytest.mark.parametrize("kw, code", [
    ({"delivery_instructions": "Bitte beim Nachbarn abgeben"}, "delivery_instructions"),
    ({"gift": "Alles Gute zum Geburtstag!"}, "gift_message"),
    ({"sku": "OLD-SKU-9"}, "unknown_sku"),
    ({"cancel": "Order created by mistake"}, "cancel_request"),
    ({"address": Address(name="Eva Roth", line1="Packstation 123", postal_code="10115", city="Berlin",
                         country="DE")}, "pickup_incomplete"),
    ({"address": Address(name="Eva Roth", line1="Postfach 12 34", postal_code="10115", city="Berlin",
                         country="DE")}, "pickup_incomplete"),
    ({"address": Address(name="Eva Roth", line1="Hauptstraße", postal_code="10115", city="Berlin",
                         country="DE")}, "broken_address"),
    ({"address": Address(name="Eva Roth", line1="Hauptstraße 1", postal_code="", city="Berlin",
                         country="DE")}, "broken_address"),
    ({"address": Address(name="Eva Roth", line1="Main Street 1", postal_code="10001", city="New York",
                         country="US")}, "broken_address"),
    ({"address": None}, "broken_address"),
])
def test_each_rule_holds_the_order_and_says_why(kw, code):
    found = holds(order(**kw), SKUS, CFG)
    assert code in [h.code for h in found]
    assert all(h.text for h in found)


def test_business_order_with_buyer_tax_id_is_held_but_without_is_not():
    reg = (TaxRegistration(entity_type="BUYER", number="DE123456789", kind="VAT"),)
    assert codes(order(programs=("AMAZON_BUSINESS",), business=True, tax_registrations=reg)) == ["business_tax_id"]
    assert codes(order(programs=("AMAZON_BUSINESS",), business=True)) == []


def test_packstation_with_postnummer_passes():
    a = Address(name="Eva Roth", line1="Packstation 123", line2="12345678", postal_code="10115", city="Berlin",
                country="DE")
    assert codes(order(address=a)) == []


def test_rules_can_be_switched_off():
    cfg = TriageConfig(gift_message=False, unknown_sku=False)
    assert codes(order(gift="Hallo", sku="NOPE"), cfg) == []


def test_resolving_a_ticket_releases_or_cancels_the_order(workspace, standin):
    workspace.load_catalogue()
    assert workspace.run("import", "amazon").code == 0
    tickets = json.loads(workspace.ok("tickets", "list", "--json"))
    triage = [t for t in tickets if t["kind"] == "triage"]
    assert len(triage) >= 2 and set(tickets[0]) == {"ticket", "created", "order", "kind", "reasons", "status", "summary"}
    first, second = triage[0], triage[1]

    r = workspace.run("tickets", "resolve", first["ticket"], "--release")
    assert r.code == 2  # --note is required
    workspace.ok("tickets", "resolve", first["ticket"], "--release", "--note", "checked with the buyer")
    shown = json.loads(workspace.ok("orders", "show", first["order"], "--json"))
    assert shown["state"] == "released" and shown["hold_reason"] == ""
    last = [e for e in shown["events"] if e["kind"] == "state_changed"][-1]
    assert shown["events"][-1]["kind"] == "ticket_resolved"
    assert (last["from"], last["to"], last["actor"]) == ("on_hold", "released", "cli:tickets resolve")
    assert "checked with the buyer" in last["why"]

    r = workspace.run("tickets", "resolve", first["ticket"], "--cancel", "--note", "again")
    assert r.code == 70 and "already resolved" in r.err  # StateError

    workspace.ok("tickets", "resolve", second["ticket"], "--cancel", "--note", "buyer asked by mail")
    assert json.loads(workspace.ok("orders", "show", second["order"], "--json"))["state"] == "cancelled"
    r = workspace.run("tickets", "resolve", "T999999", "--release", "--note", "x")
    assert r.code == 66 and "no ticket" in r.err
