"""Hostile partners and careless operators: a bad file on a return channel stops only itself.

Each broken file (a value that overflows or does not parse, a confirmation that does not fit its
delivery, a file too large or with a name that cannot be read) is moved to error/ with a ticket
naming file:line:field, ``ship collect`` exits 65, and the good files beside it, on the same
channel and on the other one, are applied. State comes from ``fulfilment.route_everything`` and
one ``ship export``; the files are written by hand.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from carriers.tracking import make_number
from caturactl.config import TransportConfig
from caturactl.core.errors import InputError, NotFoundError
from caturactl.outbox.models import OutboxMessage
from caturactl.fulfilment.models import DeliveryNote, ShippedParcel, Stock
from caturactl.orders.tickets import Ticket
from connectors.ftp.folder import FolderTransport
from connectors.ftp.ftp import FtpTransport
from connectors.ftp.sftp import SftpTransport
from tests import fulfilment

CSV_HEADER = "order_id;delivery_id;carrier;service;tracking_number;weight_kg;shipped_at"
XML_NS = "urn:caturactl:fulfilment:confirmation:1"
NOT_UTF8 = b"SHP_\xe4nderung.csv"  # Latin-1 "Änderung": a name written by a non-UTF-8 system
NOT_UTF8_SHOWN = "SHP_\\xe4nderung.csv"


def _exported(ws) -> dict[str, list[dict]]:
    """Exported notes per location, as plain values."""
    with ws.app().session() as s:
        notes = s.scalars(select(DeliveryNote).where(DeliveryNote._state == "exported")
                          .order_by(DeliveryNote.id)).all()
        out: dict[str, list[dict]] = {}
        for n in notes:
            out.setdefault(n.location, []).append({"number": n.number, "order": n.order.external_id,
                                                   "carrier": n.carrier, "service": n.service})
        return out


def _shipped_at(ws) -> str:
    # Amazon refuses a ship date after its own clock.
    return (ws.standin.now() - timedelta(minutes=5)).isoformat(timespec="seconds")


def _csv(note: dict, serial: int, when: str, **change: str) -> bytes:
    """A confirmation CSV with one row for ``note``; ``change`` replaces or adds columns."""
    row = {"order_id": note["order"], "delivery_id": note["number"], "carrier": note["carrier"],
           "service": note["service"], "tracking_number": make_number(note["carrier"], serial),
           "weight_kg": "1,25", "shipped_at": when} | change
    return (";".join(row) + "\n" + ";".join(row.values()) + "\n").encode("utf-8")


def _xml(note: dict, serial: int, when: str, *, weight: str = "1.250", line: str = "", **change: str) -> bytes:
    """A confirmation XML with one shipment for ``note``, starting on line 3; ``change`` replaces
    the text of deliveryId, orderId, carrier, service or shippedAt."""
    v = {"deliveryId": note["number"], "orderId": note["order"], "carrier": note["carrier"],
         "service": note["service"], "shippedAt": when} | change
    fields = "".join(f"<{k}>{t}</{k}>" for k, t in v.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<confirmation xmlns="{XML_NS}" version="1.0">\n'
            f"<shipment>{fields}<parcel><trackingNumber>{make_number(note['carrier'], serial)}</trackingNumber>"
            f"<weightKg>{weight}</weightKg>{line}</parcel></shipment>\n</confirmation>\n").encode()


def _collect(ws) -> tuple[int, dict]:
    r = ws.run("ship", "collect", "--json")
    assert r.out.strip(), f"ship collect exited {r.code} with no result: {r.err[-2000:]}"
    return r.code, json.loads(r.out)


def _rejected(result: dict) -> dict[str, str]:
    """File name -> its rejection line."""
    return {line.split(": ", 1)[0]: line for line in result["rejected"]}


def _assert_rejected(ws, result: dict, expected: dict[str, tuple[Path, str, str]]) -> None:
    """The files of ``expected`` (name -> its return folder, where, part of the message) and no
    others were rejected naming their where, moved to error/, with a ticket saying the same."""
    rejected = _rejected(result)
    assert set(rejected) == set(expected), result["rejected"]
    with ws.app().session() as s:
        tickets = {t.external_ref: t.text for t in s.scalars(select(Ticket).where(Ticket.kind == "confirmation_rejected"))}
    for name, (folder, where, message) in expected.items():
        assert f"{where}: " in rejected[name] and message in rejected[name], rejected[name]
        assert f"{where}: " in tickets[name] and message in tickets[name], tickets[name]
        assert (folder / "error" / name).is_file() and not (folder / name).exists(), name


def _states(ws, numbers: list[str]) -> set[str]:
    with ws.app().session() as s:
        return {n.state for n in s.scalars(select(DeliveryNote)) if n.number in numbers}


@pytest.fixture
def exported(workspace, tmp_path):
    fulfilment.route_everything(workspace, tmp_path)
    workspace.ok("ship", "export")
    for folder in ("wh", "ful"):
        (tmp_path / folder / "out").mkdir(exist_ok=True)
    return _exported(workspace)


def test_overflowing_or_unparsable_csv_values_reject_only_their_file(workspace, tmp_path, exported):
    ws, wh_out, ful_out = workspace, tmp_path / "wh" / "out", tmp_path / "ful" / "out"
    note, when = exported["WH"][0], _shipped_at(ws)
    probes = {
        "SHP_weight.csv": ({"weight_kg": "99999999999999999999999"}, "weight_kg", "at most 1000 kg"),
        "SHP_year1.csv": ({"shipped_at": "0001-01-01T00:30:00+14:00"}, "shipped_at", "between 2000 and 2100"),
        "SHP_year9999.csv": ({"shipped_at": "9999-12-31T23:59:59-14:00"}, "shipped_at", "between 2000 and 2100"),
        "SHP_id_huge.csv": ({"delivery_id": "L99999999999999999999999"}, "delivery_id", "unknown delivery"),
        "SHP_id_superscript.csv": ({"delivery_id": "L²³⁷"}, "delivery_id", "not a delivery number"),
        "SHP_quantity.csv": ({"sku": "X-1", "quantity": "99999999999999999999999"}, "quantity", "at most"),
        "SHP_parcel_no.csv": ({"parcel_no": "²"}, "parcel_no", "not a positive whole number"),
        "SHP_tracking_digits.csv": ({"tracking_number": "٠٠٣٤٠٤٣٤١٢٣٤٥٦٧٨٩٠١٢"}, "tracking_number", "letters"),
    }
    for serial, (name, (change, _, _)) in enumerate(probes.items(), start=1):
        (wh_out / name).write_bytes(_csv(note, serial, when, **change))
    good_wh, good_ful = exported["WH"][1], exported["FUL"][0]
    (wh_out / "SHP_zz_good.csv").write_bytes(_csv(good_wh, 100, when))
    (ful_out / "SHP_good.xml").write_bytes(_xml(good_ful, 100, when))

    code, result = _collect(ws)
    assert code == 65
    _assert_rejected(ws, result, {name: (wh_out, f"{name}:2:{field}", message)
                                  for name, (_, field, message) in probes.items()})
    assert (wh_out / "archive" / "SHP_zz_good.csv").is_file() and (ful_out / "archive" / "SHP_good.xml").is_file()
    assert _states(ws, [good_wh["number"], good_ful["number"]]) == {"shipped"}
    assert _states(ws, [note["number"]]) == {"exported"}


def test_overflowing_xml_values_and_stock_figures_reject_only_their_file(workspace, tmp_path, exported):
    ws, wh_out, ful_out = workspace, tmp_path / "wh" / "out", tmp_path / "ful" / "out"
    note, when = exported["FUL"][0], _shipped_at(ws)
    probes = {
        "SHP_weight.xml": ({"weight": "99999999999999999999999"}, "weightKg", "at most 1000 kg"),
        "SHP_year1.xml": ({"shippedAt": "0001-01-01T00:30:00+14:00"}, "shippedAt", "between 2000 and 2100"),
        "SHP_year9999.xml": ({"shippedAt": "9999-12-31T23:59:59-14:00"}, "shippedAt", "between 2000 and 2100"),
        "SHP_id_huge.xml": ({"deliveryId": "L99999999999999999999999"}, "delivery_id", "unknown delivery"),
        "SHP_id_superscript.xml": ({"deliveryId": "L²³⁷"}, "delivery_id", "not a delivery number"),
        "SHP_quantity.xml": ({"line": '<line sku="X-1" quantity="99999999999999999999999"/>'}, "quantity", "at most"),
    }
    for serial, (name, (change, _, _)) in enumerate(probes.items(), start=1):
        (ful_out / name).write_bytes(_xml(note, serial, when, **change))
    stock_probes = {"STOCK_1e23.csv": "100000000000000000000000", "STOCK_int64.csv": "9223372036854775807"}
    for name, figure in stock_probes.items():
        (ful_out / name).write_text(f"sku;on_hand\nHG-1001;7\nHH-2001;{figure}\n", encoding="utf-8")
    good_ful, good_wh = exported["FUL"][1], exported["WH"][0]
    (ful_out / "SHP_zz_good.xml").write_bytes(_xml(good_ful, 100, when))
    (wh_out / "SHP_good.csv").write_bytes(_csv(good_wh, 100, when))

    code, result = _collect(ws)
    assert code == 65
    expected = {name: (ful_out, f"{name}:3:{field}", message) for name, (_, field, message) in probes.items()}
    expected |= {name: (ful_out, f"{name}:3:on_hand", "not a whole number from 0 to") for name in stock_probes}
    _assert_rejected(ws, result, expected)
    assert (ful_out / "archive" / "SHP_zz_good.xml").is_file() and (wh_out / "archive" / "SHP_good.csv").is_file()
    assert _states(ws, [good_wh["number"], good_ful["number"]]) == {"shipped"}
    with ws.app().session() as s:
        on_hand = dict(s.execute(select(Stock.sku, Stock.on_hand).where(Stock.location == "FUL")).all())
    assert on_hand["HG-1001"] != 7 and max(on_hand.values()) == 30  # not even the good first lines


def test_a_confirmation_that_does_not_fit_its_delivery_never_reaches_amazon(workspace, tmp_path, exported):
    ws, wh_out, ful_out = workspace, tmp_path / "wh" / "out", tmp_path / "ful" / "out"
    note, other, when = exported["WH"][0], exported["WH"][1], _shipped_at(ws)
    hostile = "@SUM(1+1)*cmd|' /C calc'!A0"
    probes = {
        "SHP_order.csv": ({"order_id": other["order"]}, "order_id", f"not {note['order']}"),
        "SHP_formula.csv": ({"carrier": hostile}, "carrier", "not a carrier WH ships with"),
        "SHP_ups.csv": ({"carrier": "UPS", "tracking_number": make_number("UPS", 7)}, "carrier",
                        "not a carrier WH ships with"),
        "SHP_service.csv": ({"service": "CLASSIC"}, "service", "not a DHL service WH ships with"),
        "SHP_2020.csv": ({"shipped_at": "2020-12-01T10:00:00+01:00"}, "shipped_at", "before"),
        "SHP_future.csv": ({"shipped_at": (ws.standin.now() + timedelta(days=3)).isoformat()}, "shipped_at",
                           "in the future"),
    }
    for serial, (name, (change, _, _)) in enumerate(probes.items(), start=1):
        (wh_out / name).write_bytes(_csv(note, serial, when, **change))
    ful = exported["FUL"][0]
    assert len({note["order"], other["order"], ful["order"]}) == 3  # an order is never split here
    (ful_out / "SHP_order.xml").write_bytes(_xml(ful, 50, when, orderId=other["order"]))
    # Lower case and the location's other DHL product: still this delivery, stored as configured.
    (wh_out / "SHP_zz_good.csv").write_bytes(_csv(other, 100, when, carrier="dhl", service="v62kp"))
    (ful_out / "SHP_zz_good.xml").write_bytes(_xml(exported["FUL"][1], 100, when))

    code, result = _collect(ws)
    assert code == 65
    expected = {name: (wh_out, f"{name}:2:{field}", message) for name, (_, field, message) in probes.items()}
    expected["SHP_order.xml"] = (ful_out, "SHP_order.xml:3:order_id", f"not {ful['order']}")
    _assert_rejected(ws, result, expected)
    assert _states(ws, [note["number"], ful["number"]]) == {"exported"}
    assert _states(ws, [other["number"], exported["FUL"][1]["number"]]) == {"shipped"}
    with ws.app().session() as s:
        parcels = s.scalars(select(ShippedParcel)).all()
        assert {(p.carrier, p.service) for p in parcels if p.delivery.number == other["number"]} == {("DHL", "V62KP")}
        assert all(p.shipped_at.year == ws.standin.now().year for p in parcels)
        payloads = [m.payload for m in s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "amazon_confirm_shipment"))]
        assert payloads and {p["carrier_code"] for p in payloads} <= {"DHL", "DPD", "GLS", "UPS"}


def test_a_file_too_large_or_with_an_unreadable_name_is_set_aside_unread(workspace, tmp_path, exported):
    ws, wh_out, ful_out = workspace, tmp_path / "wh" / "out", tmp_path / "ful" / "out"
    config = ws.config.read_text(encoding="utf-8")
    ws.config.write_text(config.replace('holidays = "DE-NW"\n', 'holidays = "DE-NW"\nmax_file_mb = 1\n'),
                         encoding="utf-8")
    when = _shipped_at(ws)
    with open(wh_out / "SHP_huge.csv", "wb") as f:  # 3 MB that take no disk: never read, only measured
        f.write(CSV_HEADER.encode() + b"\n")
        f.truncate(3 * 1024 * 1024)
    (wh_out / os.fsdecode(NOT_UTF8)).write_bytes(_csv(exported["WH"][0], 1, when))
    good_wh, good_ful = exported["WH"][1], exported["FUL"][0]
    (wh_out / "SHP_zz_good.csv").write_bytes(_csv(good_wh, 100, when))
    (ful_out / "SHP_good.xml").write_bytes(_xml(good_ful, 100, when))

    code, result = _collect(ws)
    assert code == 65
    rejected = _rejected(result)
    assert set(rejected) == {"SHP_huge.csv", NOT_UTF8_SHOWN}, result["rejected"]
    assert "is 3145728 bytes, more than the 1048576 bytes allowed" in rejected["SHP_huge.csv"]
    assert "not UTF-8" in rejected[NOT_UTF8_SHOWN]
    assert (wh_out / "error" / "SHP_huge.csv").is_file()
    assert os.path.isfile(os.fsencode(wh_out / "error") + b"/" + NOT_UTF8)
    with ws.app().session() as s:
        refs = set(s.scalars(select(Ticket.external_ref).where(Ticket.kind == "confirmation_rejected")))
    assert refs == {"SHP_huge.csv", NOT_UTF8_SHOWN}
    assert _states(ws, [good_wh["number"], good_ful["number"]]) == {"shipped"}
    # Nothing is left behind to be rejected again on the next run.
    code, again = _collect(ws)
    assert code == 0 and again["rejected"] == [] and again["files"] == 0


def test_over_sftp_a_name_that_cannot_be_fetched_stops_only_itself(workspace, tmp_path, sshd):
    ws = workspace
    prefix = f"partner{os.getpid()}-{tmp_path.name}"
    root = sshd.root / prefix
    (root / "out").mkdir(parents=True)
    wh = fulfilment.sftp_transport("wh", sshd, timeout=3).replace('"in"', f'"{prefix}/in"').replace(
        '"out"', f'"{prefix}/out"')
    fulfilment.route_everything(ws, tmp_path, wh=wh)
    ws.ok("ship", "export")
    exported = _exported(ws)
    when = _shipped_at(ws)
    (tmp_path / "ful" / "out").mkdir(exist_ok=True)
    with open(os.fsencode(root / "out") + b"/" + NOT_UTF8, "wb") as f:
        f.write(_csv(exported["WH"][0], 1, when))
    good_wh, good_ful = exported["WH"][1], exported["FUL"][0]
    (root / "out" / "SHP_zz_good.csv").write_bytes(_csv(good_wh, 100, when))
    (tmp_path / "ful" / "out" / "SHP_good.xml").write_bytes(_xml(good_ful, 100, when))

    code, result = _collect(ws)
    assert code == 65, result
    assert list(_rejected(result)) == [NOT_UTF8_SHOWN] and "not UTF-8" in result["rejected"][0]
    assert os.path.isfile(os.fsencode(root / "out" / "error") + b"/" + NOT_UTF8)
    assert (root / "out" / "archive" / "SHP_zz_good.csv").is_file()
    assert _states(ws, [good_wh["number"], good_ful["number"]]) == {"shipped"}


# --- the transports' side: fetch with a size limit ------------------------------------------------


def _limit_cases(t, put) -> None:
    put("SHP_big.csv", b"x" * 5000)
    put("SHP_ok.csv", b"y" * 4096)
    with pytest.raises(InputError, match="is 5000 bytes, more than the 4096 bytes allowed"):
        t.fetch("SHP_big.csv", max_bytes=4096)
    assert t.fetch("SHP_ok.csv", max_bytes=4096) == b"y" * 4096  # exactly the limit is fine
    assert t.fetch("SHP_big.csv") == b"x" * 5000  # no limit given: the whole file
    with pytest.raises(NotFoundError):
        t.fetch("SHP_gone.csv", max_bytes=4096)


def test_a_folder_refuses_to_fetch_a_file_over_the_limit(tmp_path):
    (tmp_path / "share" / "out").mkdir(parents=True)
    t = FolderTransport("f", TransportConfig(kind="folder", path="share"), base_dir=tmp_path)
    _limit_cases(t, lambda name, data: (tmp_path / "share" / "out" / name).write_bytes(data))


def test_sftp_refuses_to_fetch_a_file_over_the_limit(tmp_path, sshd):
    prefix = f"limit{os.getpid()}-{tmp_path.name}"
    (sshd.root / prefix / "out").mkdir(parents=True)
    cfg = TransportConfig(kind="sftp", host="127.0.0.1", port=sshd.port, user="root",
                          key_file=str(sshd.client_key_file), host_key=sshd.host_key_line,
                          inbound_dir=f"{prefix}/out", outbound_dir=f"{prefix}/in", timeout_seconds=3)
    with SftpTransport("s", cfg, base_dir=tmp_path) as t:
        _limit_cases(t, lambda name, data: (sshd.root / prefix / "out" / name).write_bytes(data))


def test_ftp_refuses_to_fetch_a_file_over_the_limit_and_keeps_talking(tmp_path, ftp_server):
    (ftp_server.root / "out").mkdir(parents=True, exist_ok=True)
    cfg = TransportConfig(kind="ftp", host="127.0.0.1", port=ftp_server.port, user="demo", timeout_seconds=3)
    with FtpTransport("f", cfg, password="demo", base_dir=tmp_path) as t:
        _limit_cases(t, lambda name, data: (ftp_server.root / "out" / name).write_bytes(data))
        assert set(t.incoming()) == {"SHP_big.csv", "SHP_ok.csv"}  # the connection survived the refusal


def test_ftp_a_listed_file_the_server_will_not_send_or_move_is_that_files_problem(tmp_path, ftp_server):
    # pyftpdlib lists a name that is not UTF-8 with "?" for the byte, and then finds no such file.
    (ftp_server.root / "out").mkdir(parents=True, exist_ok=True)
    with open(os.fsencode(ftp_server.root / "out") + b"/" + NOT_UTF8, "wb") as f:
        f.write(b"order_id;delivery_id\n")
    (ftp_server.root / "out" / "SHP_ok.csv").write_bytes(b"ok")
    cfg = TransportConfig(kind="ftp", host="127.0.0.1", port=ftp_server.port, user="demo", timeout_seconds=3)
    with FtpTransport("f", cfg, password="demo", base_dir=tmp_path) as t:
        [listed] = [n for n in t.incoming() if n != "SHP_ok.csv"]
        with pytest.raises(InputError, match="refuses to send") as refused:
            t.fetch(listed, max_bytes=4096)
        assert not isinstance(refused.value, NotFoundError)
        with pytest.raises(InputError, match="refuses to move"):
            t.move_aside(listed, "error")
        assert t.fetch("SHP_ok.csv", max_bytes=4096) == b"ok"  # the channel goes on
