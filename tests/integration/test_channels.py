"""The sales-channel port: services ask the order's channel; only the registry names channels."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from caturactl import channels
from caturactl.config import Config
from caturactl.core.errors import StateError

ROOT = Path(__file__).resolve().parents[2]
# Where a channel may still be named: the registry, the configuration's [amazon] section and the
# command line (``import amazon``, ``standins amazon``). The composition root (app.py) asks the
# channels for their adapters and names none.
MAY_NAME = {"caturactl/channels.py", "caturactl/config.py"}
# Amazon's vocabulary: its name, its API's operations and ids, its programmes.
AMAZON_WORDS = {"amazon", "asin", "searchorders", "confirmshipment", "orderitemid", "feed", "feeds", "solicitation",
                "solicitations", "spapi", "vcs", "fba"}
STILL_NAMED: set[str] = set()  # words allowed for now, each with its reason


def _words(name: str) -> set[str]:
    parts = re.split(r"_|(?<=[a-z])(?=[A-Z])", name)
    return {p.lower() for p in parts if p} | {name.lower()}


def amazon_words(source: str) -> list[tuple[int, str]]:
    """(line, word) for every identifier, import, keyword and string (docstrings aside) of
    ``source`` that uses Amazon's vocabulary."""
    tree = ast.parse(source)
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            names = [n.id]
        elif isinstance(n, ast.Attribute):
            names = [n.attr]
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [n.name]
        elif isinstance(n, ast.arg):
            names = [n.arg]
        elif isinstance(n, ast.keyword):
            names = [n.arg or ""]
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            names = [part for m in [getattr(n, "module", None) or "", *(a.name for a in n.names)]
                     for part in m.split(".")]
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings:
            names = re.findall(r"[A-Za-z_]+", n.value)
        else:
            continue
        found += [(n.lineno, w) for name in names for w in sorted(_words(name) & AMAZON_WORDS)]
    return found


def test_no_service_model_or_core_module_names_amazon():
    named = []
    for path in sorted((ROOT / "caturactl").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in MAY_NAME or rel.startswith(("caturactl/cli/", "caturactl/migrations/")):
            continue
        named += [f"{rel}:{line}: {word}" for line, word in amazon_words(path.read_text(encoding="utf-8"))
                  if word not in STILL_NAMED]
    assert named == []


def test_the_probe_shows_the_check_finds_amazons_words():
    probe = ('from connectors.amazon.feeds import AmazonInvoices\n'
             'if order.channel == "amazon" and line.orderItemId:\n'
             '    client.confirmShipment(feed_id=1)\n')
    assert {w for _, w in amazon_words(probe)} == {"amazon", "orderitemid", "confirmshipment", "feed", "feeds"}
    assert amazon_words('"""Amazon\'s rules live in the channel."""\n') == []  # prose in a docstring is fine


def test_amazon_declares_what_it_does():
    amazon = channels.get("amazon")
    assert (amazon.collects_payment, amazon.confirms_shipments, amazon.requests_reviews,
            amazon.provides_settlements, amazon.fulfils_itself) == (True, True, True, True, "AMAZON")
    cfg = Config()
    assert amazon.invoice_mode(cfg) == "upload" and not amazon.issues_invoices(cfg) and not amazon.tells_buyers(cfg)
    cfg = Config.model_validate({"amazon": {"vcs": True}, "invoices": {"amazon_delivery": "email"}})
    assert amazon.issues_invoices(cfg) and amazon.invoice_mode(cfg) == "email"
    assert channels.names("requests_reviews") == ["amazon"] and channels.get("amazon") is amazon


def test_an_order_of_an_unknown_channel_is_a_clear_error():
    with pytest.raises(StateError, match="no sales channel 'ebay' is registered"):
        channels.get("ebay")


def test_import_orders_per_channel_and_the_amazon_alias(workspace):
    ws = workspace
    first = json.loads(ws.ok("import", "orders", "--channel", "amazon", "--json"))
    assert first["new"] > 0
    again = json.loads(ws.ok("import", "amazon", "--json"))
    assert again["new"] == 0  # the alias reads the same cursor: nothing twice
    r = ws.run("import", "orders", "--channel", "ebay")
    assert r.code == 2 and "no sales channel 'ebay'" in r.err
