"""The sales-channel port: services ask the order's channel; only the registry names channels."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from caturactl import channels
from caturactl.config import Config
from caturactl.core.errors import StateError

ROOT = Path(__file__).resolve().parents[1]
# Where a channel may still be named: the registry, the composition root (it builds the adapters
# and, for now, the outbox handlers of Amazon's calls), the configuration's [amazon] section and
# the command line (``import amazon``, ``standins amazon``).
MAY_NAME = {"caturactl/channels.py", "caturactl/app.py", "caturactl/config.py"}


def test_no_service_or_model_names_a_channel():
    named = []
    for path in sorted((ROOT / "caturactl").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in MAY_NAME or rel.startswith(("caturactl/cli/", "caturactl/migrations/")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in channels.REGISTERED:
                named.append(f"{rel}:{node.lineno}")
    assert named == []


def test_the_probe_shows_the_check_finds_a_channel_name(tmp_path):
    probe = ast.parse('if order.channel == "amazon":\n    pass\n')
    assert [n.value for n in ast.walk(probe) if isinstance(n, ast.Constant) and n.value in channels.REGISTERED] \
        == ["amazon"]


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
