"""Customer matching: the pure rule, and merging customers through the CLI."""

from __future__ import annotations

import json

from caturactl.config import MatchingConfig
from caturactl.customers.matching import Candidate, decide
from caturactl.core.address import Address

CFG = MatchingConfig()
HOME = Address(name="Hans Müller", line1="Hauptstraße 12", postal_code="10115", city="Berlin", country="DE")


def test_email_wins_over_everything():
    m = decide("a@marketplace.amazon.de", 7, "Hans Müller", HOME, [Candidate(9, "Hans Müller", HOME)], CFG)
    assert (m.customer_id, m.reason) == (7, "e-mail a@marketplace.amazon.de")


def test_the_same_house_written_differently_matches_by_address():
    variant = Address(name="hans mueller", line1="Hauptstr. 12", postal_code="10115", city="BERLIN", country="DE")
    m = decide("new@marketplace.amazon.de", None, "hans mueller", variant, [Candidate(9, "Hans Müller", HOME)], CFG)
    assert m.customer_id == 9 and m.reason.startswith("address")


def test_another_house_number_or_another_person_is_a_new_customer():
    other_house = Address(name="Hans Müller", line1="Hauptstraße 21", postal_code="10115", city="Berlin", country="DE")
    assert decide("", None, "Hans Müller", other_house, [Candidate(9, "Hans Müller", HOME)], CFG).customer_id is None
    neighbour = Address(name="Petra Schulz", line1="Hauptstraße 12", postal_code="10115", city="Berlin", country="DE")
    assert decide("", None, "Petra Schulz", neighbour, [Candidate(9, "Hans Müller", HOME)], CFG).customer_id is None


def test_the_best_candidate_wins():
    close = Address(name="Hans Müller", line1="Hauptstrasse 12", postal_code="10115", city="Berlin", country="DE")
    m = decide("", None, "Hans Müller", HOME, [Candidate(3, "Hans Muller", close), Candidate(4, "Hans Müller", HOME)], CFG)
    assert m.customer_id == 4


def test_merge_moves_orders_and_keeps_history(workspace, standin):
    workspace.load_catalogue()
    assert workspace.run("import", "amazon").code == 0
    rows = json.loads(workspace.ok("customers", "list", "--json"))
    assert set(rows[0]) == {"number", "name", "company", "email", "orders", "last_order", "city"}
    a, b = rows[0], rows[1]
    r = workspace.run("customers", "merge", a["number"], a["number"])
    assert r.code == 65 and "with itself" in r.err
    workspace.ok("customers", "merge", "--dry-run", a["number"], b["number"])
    assert len(json.loads(workspace.ok("customers", "list", "--json"))) == len(rows)
    workspace.ok("customers", "merge", a["number"], b["number"])
    after = {r["number"]: r for r in json.loads(workspace.ok("customers", "list", "--json"))}
    assert b["number"] not in after and after[a["number"]]["orders"] == a["orders"] + b["orders"]
    shown = json.loads(workspace.ok("customers", "show", b["number"], "--json"))
    assert shown["merged_into"] == a["number"]
    assert shown["history"][-1]["why"].startswith(f"{b['number']} merged into {a['number']}")
    kept = json.loads(workspace.ok("customers", "show", a["number"], "--json"))
    assert len(kept["orders"]) == a["orders"] + b["orders"]
    assert b["email"] in kept["emails"]
    r = workspace.run("customers", "merge", a["number"], b["number"])
    assert r.code == 70 and "already merged" in r.err
