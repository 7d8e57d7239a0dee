"""The merchant's dropship commands end to end: a purchase order goes out over SFTP to a real
OpenSSH sshd as openTRANS, the partner's answer comes back over the same server, and a broken
availability file changes nothing."""

from __future__ import annotations

import itertools
import json
import os
from datetime import datetime, timezone

from lxml import etree

from caturactl.fulfilment.dropship import service
from tests import factories as f
from tests.dropship import order_response, sections
from tests.fulfilment import COMPANY

T = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
_no = itertools.count()


def _sftp(sshd, prefix: str) -> str:
    return f"""
[transports.ds1]
kind = "sftp"
host = "127.0.0.1"
port = {sshd.port}
user = "root"
key_file = "{sshd.client_key_file}"
host_key = "{sshd.host_key_line}"
outbound_dir = "{prefix}/in"
inbound_dir = "{prefix}/out"
timeout_seconds = 5
"""


def test_a_purchase_order_goes_out_over_sftp_and_its_answer_comes_back(bare_workspace, sshd, tmp_path):
    ws = bare_workspace
    f.fixed_clock(T)
    prefix = f"ds{os.getpid()}-{next(_no)}"
    root = sshd.root / prefix
    (root / "in").mkdir(parents=True)
    (root / "out").mkdir()
    ws.write_config(extra=sections(tmp_path, ds1_transport=_sftp(sshd, prefix)), company=COMPANY)
    app = ws.app()
    with app.session() as s:
        f.product(s, "B-1")
        service.set_availability(s, "DS1", {"B-1": 3}, actor="test")
        f.released(s, [f.Line(sku="B-1", quantity=2)])
        s.commit()
    app.dispose()
    ws.ok("route")
    sent = json.loads(ws.ok("dropship", "send", "--json"))
    assert sent["sent"] == 1 and sent["upload"]["sent"] == 3  # the ORDER, its delivery note and label
    [name] = sent["files"]
    po_number = name.removesuffix(".xml")
    uploaded = (root / "in" / name).read_bytes()
    doc = etree.fromstring(uploaded)
    ns = {"o": "http://www.opentrans.org/XMLSchema/2.1", "b": "http://www.bmecat.org/bmecat/2005"}
    assert doc.findtext("o:ORDER_HEADER/o:ORDER_INFO/o:ORDER_ID", namespaces=ns) == po_number
    named = [e.text for e in doc.iterfind("o:ORDER_HEADER/o:ORDER_INFO/o:MIME_INFO/o:MIME/b:MIME_SOURCE", ns)]
    assert named == sent["papers"] == [f"{po_number}-delivery_note.pdf", f"{po_number}-label.pdf"]
    assert all((root / "in" / paper).read_bytes().startswith(b"%PDF") for paper in named)
    assert doc.findtext("o:ORDER_ITEM_LIST/o:ORDER_ITEM/o:QUANTITY", namespaces=ns) == "2"

    (root / "out" / "answer.xml").write_bytes(order_response(po_number, {1: (2, "")}))
    read = json.loads(ws.ok("dropship", "read", "--json"))
    assert (read["files"], read["answers"], read["rejected"]) == (1, 1, [])
    assert (root / "out" / "archive" / "answer.xml").exists()
    [row] = json.loads(ws.ok("dropship", "list", "--json"))
    assert (row["number"], row["partner"], row["state"], row["to_ship"]) == (po_number, "DS1", "accepted", 2)
    shown = json.loads(ws.ok("dropship", "show", po_number, "--json"))
    assert shown["lines"][0]["state"] == "accepted" and shown["ship_to"].endswith("DE")


def test_a_broken_availability_file_exits_65_and_changes_nothing(bare_workspace, tmp_path):
    ws = bare_workspace
    ws.write_config(extra=sections(tmp_path), company=COMPANY)
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("sku;quantity\nB-1;4\n", encoding="utf-8")
    bad.write_text("sku;quantity\nB-1;9\nC-1;-2\n", encoding="utf-8")
    ws.ok("dropship", "availability", "import", str(good), "--partner", "DS1")
    r = ws.run("dropship", "availability", "import", str(bad), "--partner", "DS1")
    assert r.code == 65 and "bad.csv:3:quantity" in r.err
    [row] = json.loads(ws.ok("dropship", "availability", "list", "--json"))
    assert (row["sku"], row["quantity"], row["fresh"]) == ("B-1", 4, True)
    r = ws.run("dropship", "availability", "import", str(good), "--partner", "WH")
    assert r.code == 66  # WH is no dropshipper
