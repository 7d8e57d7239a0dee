"""standins/fulfiller.py: the seeded 3PL, checked by reading its answers with our own readers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from caturactl.core.errors import InputError
from carriers.confirmation_csv import ConfirmationCsv
from carriers.confirmation_xml import ConfirmationXml
from carriers.tracking import validate
from standins.fulfiller import STATE_FILE, FulfillerStandin

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2025, 11, 3, 13, 0, tzinfo=timezone.utc)
READERS = {"xml": ConfirmationXml(), "csv": ConfirmationCsv()}


def order_xml(delivery_id: str, lines: dict[str, int], carrier: str = "DHL", service: str = "V01PAK",
              parcels_kg: tuple[str, ...] = ()) -> bytes:
    """An order file the way our fulfiller_xml format writes one (sample-fulfiller-order.xml)."""
    parcels = "".join(f'<parcel no="{i}"><weightKg>{kg}</weightKg><lengthCm>30</lengthCm></parcel>'
                      for i, kg in enumerate(parcels_kg, start=1))
    items = "".join(
        f'<line no="{i}"><sku>{sku}</sku><ean>4006381333931</ean><description>Ware</description>'
        f"<quantity>{qty}</quantity></line>"
        for i, (sku, qty) in enumerate(lines.items(), start=1))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<order xmlns="urn:caturactl:fulfilment:order:1" version="1.0">\n'
            f"<header><orderId>AMZ-{delivery_id}</orderId><deliveryId>{delivery_id}</deliveryId>"
            f"<orderDate>2025-11-02T18:42:10+01:00</orderDate></header>\n"
            f"<shipping><carrier>{carrier}</carrier><service>{service}</service><express>false</express>"
            f"<shipTo><name1>Jürgen Groß</name1><city>Köln</city></shipTo></shipping>\n"
            f"<lines>{items}</lines>\n<parcels>{parcels}</parcels>\n</order>\n").encode("utf-8")


def dhl_csv(rows: list[tuple[str, str, str]]) -> bytes:
    """A DHL GKP import file (sample-dhl-gkp-import.csv, abridged): CP1252, ';', quoted."""
    header = "Sendungsreferenz;Sendungsdatum;Name_1_Empfaenger;Ort_Empfaenger;Gewicht;Produkt_und_Servicekennzeichnung"
    lines = [header] + [f'"{ref}";"2025-11-03";"Jürgen Groß";"München";"{kg}";"{product}"' for ref, kg, product in rows]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


ORDERS = {
    "L000101": ({"TEE-BLK-M": 2, "CAP-RED": 1}, "DHL"),
    "L000102": ({"MUG": 4}, "DPD"),
    "L000103": ({"BAG": 1, "TEE-WHT-S": 3}, "GLS"),
    "L000104": ({"SOCKS": 5}, "UPS"),
    "L000105": ({"POSTER": 2, "FRAME": 2}, "Hermes"),
    "L000106": ({"CARD": 1}, "Deutsche Post"),
    "L000107": ({"TEE-BLK-L": 3}, "DHL"),
    "L000108": ({"CAP-BLU": 2, "MUG": 1}, "DHL"),
    "L000109": ({"BOOK": 6}, "GLS"),
    "L000110": ({"PEN": 2}, "Spedition Müller"),  # a carrier the stand-in cannot number: its own
}
DHL_CSV_DELIVERIES = {"L000201": [2400, 1100], "L000202": [800]}


def upload_orders(root: Path) -> None:
    inbox = root / "in"
    inbox.mkdir(parents=True, exist_ok=True)
    for delivery_id, (lines, carrier) in ORDERS.items():
        (inbox / f"ORD_{delivery_id}_20251103091500.xml").write_bytes(order_xml(delivery_id, lines, carrier))
    (inbox / "DHL_20251103091500.csv").write_bytes(dhl_csv([
        ("L000201-01", "2.40", "V01PAK"), ("L000201-02", "1,10", "V01PAK"), ("L000202", "0.80", "V62KP")]))


@dataclass
class Run:
    """Everything a stand-in wrote over several calls, read back with our readers."""

    good: list[tuple[str, datetime, list]] = field(default_factory=list)  # (file, now, confirmations)
    broken: list[tuple[str, InputError, bytes]] = field(default_factory=list)
    reports: list = field(default_factory=list)


def run(standin: FulfillerStandin, calls: int, start: datetime = START, result: Run | None = None) -> Run:
    result = result or Run()
    reader = READERS[standin.reply]
    for i in range(calls):
        now = start + timedelta(hours=i)
        report = standin.work(now)
        result.reports.append(report)
        for name in report.files_written:
            content = (standin.outbox / name).read_bytes()
            try:
                result.good.append((name, now, reader.read(name, content, BERLIN)))
            except InputError as e:
                result.broken.append((name, e, content))
    return result


def ordered_quantities() -> dict[str, dict[str, int] | None]:
    wanted: dict[str, dict[str, int] | None] = {d: dict(lines) for d, (lines, _) in ORDERS.items()}
    wanted.update({d: None for d in DHL_CSV_DELIVERIES})  # a DHL CSV lists no goods
    return wanted


def settle(result: Run) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """What stays open per delivery after applying every good confirmation in file order, and
    how many confirmations each delivery got. Fails on over-shipment."""
    open_ = {d: dict(q) if q else {"?": 1} for d, q in ordered_quantities().items()}
    seen: dict[str, int] = {}
    for _, _, confirmations in result.good:
        for c in confirmations:
            seen[c.delivery_id] = seen.get(c.delivery_id, 0) + 1
            assert open_[c.delivery_id], f"{c.delivery_id} confirmed after it was complete"
            if not c.lines:
                open_[c.delivery_id] = {}  # everything still open shipped
                continue
            for line in c.lines:
                assert open_[c.delivery_id].get(line.sku, 0) >= line.quantity, f"{c.delivery_id} over-shipped"
                open_[c.delivery_id][line.sku] -= line.quantity
            open_[c.delivery_id] = {s: q for s, q in open_[c.delivery_id].items() if q}
    return open_, seen


@pytest.mark.parametrize("reply", ["xml", "csv"])
def test_every_delivery_is_eventually_confirmed_whole_through_all_the_detours(tmp_path, reply):
    upload_orders(tmp_path)
    standin = FulfillerStandin(tmp_path, seed=7, reply=reply, partial_rate=0.4, multi_parcel_rate=0.4,
                               late_rate=0.3, broken_rate=0.3)
    result = run(standin, 6)

    total = lambda attr: sum(getattr(r, attr) for r in result.reports)  # noqa: E731
    # The seed was picked so that every detour happens at least once.
    assert total("orders_read") == len(ORDERS) + len(DHL_CSV_DELIVERIES)
    assert total("shipped_partial") >= 1 and total("multi_parcel") >= 1
    assert total("deferred") >= 1 and total("broken_files") >= 1
    assert total("shipped_whole") + total("shipped_partial") == len(ORDERS) + len(DHL_CSV_DELIVERIES)
    assert total("remainders_shipped") == total("shipped_partial")

    left, confirmations = settle(result)
    assert all(not q for q in left.values()), left
    assert set(confirmations) == set(ORDERS) | set(DHL_CSV_DELIVERIES)
    assert sum(1 for n in confirmations.values() if n == 2) == total("shipped_partial")
    assert not (tmp_path / "in" / "error").exists() or not any((tmp_path / "in" / "error").iterdir())


@pytest.mark.parametrize("reply", ["xml", "csv"])
def test_tracking_numbers_are_valid_for_the_carrier_and_never_repeat(tmp_path, reply):
    upload_orders(tmp_path)
    result = run(FulfillerStandin(tmp_path, seed=7, reply=reply, multi_parcel_rate=0.5, partial_rate=0.3), 4)
    numbers = []
    multi = 0
    for _, _, confirmations in result.good:
        for c in confirmations:
            expected = ORDERS[c.delivery_id][1] if c.delivery_id in ORDERS else "DHL"
            assert c.carrier == (expected if expected != "Spedition Müller" else "DHL")  # the default
            for n in c.tracking_numbers:
                assert validate(c.carrier, n) == n
            multi += len(c.tracking_numbers) > 1
            assert len(c.weights_g) == len(c.tracking_numbers) and all(w and w > 0 for w in c.weights_g)
            numbers += c.tracking_numbers
    assert multi >= 2
    assert len(numbers) == len(set(numbers))


def test_partial_shipments_add_up_to_the_ordered_quantities(tmp_path):
    upload_orders(tmp_path)
    result = run(FulfillerStandin(tmp_path, seed=3, partial_rate=1.0, late_rate=0.0), 2)
    per_delivery: dict[str, list] = {}
    for _, _, confirmations in result.good:
        for c in confirmations:
            per_delivery.setdefault(c.delivery_id, []).append(c)
    for delivery_id, (ordered, _) in ORDERS.items():
        if sum(ordered.values()) < 2:
            assert len(per_delivery[delivery_id]) == 1  # one unit cannot be split
            continue
        first, rest = per_delivery[delivery_id]
        assert first.lines, "a part must say what it holds"
        assert 0 < sum(line.quantity for line in first.lines) < sum(ordered.values())
        if rest.lines:  # a remainder may also just say "everything open"
            total: dict[str, int] = {}
            for line in first.lines + rest.lines:
                total[line.sku] = total.get(line.sku, 0) + line.quantity
            assert total == ordered
    left, _ = settle(result)
    assert all(not q for q in left.values())


@pytest.mark.parametrize("reply", ["xml", "csv"])
def test_a_broken_file_fails_our_reader_and_a_correct_one_follows(tmp_path, reply):
    upload_orders(tmp_path)
    result = run(FulfillerStandin(tmp_path, seed=5, reply=reply, broken_rate=1.0, late_rate=0.0,
                                  partial_rate=0.0), 2)
    assert len(result.broken) == len(ORDERS) + len(DHL_CSV_DELIVERIES)  # one per delivery
    good = {c.delivery_id: (name, c) for name, _, cs in result.good for c in cs}
    for name, error, content in result.broken:
        assert error.where.startswith(name + ":")
        assert re.search(r":\d+:\w+$", error.where), error.where  # file:line:field
        if reply == "xml":
            [delivery_id] = re.findall(rb"<deliveryId>(.*?)</deliveryId>", content)
        else:
            delivery_id = content.decode("cp1252").splitlines()[1].split(";")[1].encode()
        later_name, confirmation = good[delivery_id.decode()]
        assert later_name > name  # written on a later call
        # The same parcels, now with correct data (the spoilt file may have blanked one number).
        missing = [n for n in confirmation.tracking_numbers if n.encode() not in content]
        assert len(missing) <= 1
    left, _ = settle(result)
    assert all(not q for q in left.values())


def test_temp_and_dot_files_are_left_alone_until_renamed(tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    for delivery_id, name in (("L9", "ORD_L9_1.xml.part"), ("L8", ".ORD_L8_1.xml"), ("L7", "ORD_L7_1.xml.tmp"),
                              ("L6", "DHL_2.csv.filepart")):
        (inbox / name).write_bytes(order_xml(delivery_id, {"X": 1}))
    standin = FulfillerStandin(tmp_path, seed=1, late_rate=0.0)
    report = standin.work(START)
    assert report.files_read == 0 and report.files_written == []
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == sorted(
        ["ORD_L9_1.xml.part", ".ORD_L8_1.xml", "ORD_L7_1.xml.tmp", "DHL_2.csv.filepart"])
    # Our side finishes the upload by renaming; the next call picks it up.
    (inbox / "ORD_L9_1.xml.part").rename(inbox / "ORD_L9_1.xml")
    report = standin.work(START + timedelta(hours=1))
    assert report.files_read == 1 and (inbox / "done" / "ORD_L9_1.xml").is_file()
    [name] = report.files_written
    [confirmation] = READERS["xml"].read(name, (standin.outbox / name).read_bytes(), BERLIN)
    assert confirmation.delivery_id == "L9"


def test_a_dhl_csv_confirms_each_delivery_whole_with_one_parcel_per_row(tmp_path):
    upload_orders(tmp_path)
    result = run(FulfillerStandin(tmp_path, seed=2, multi_parcel_rate=0.0, late_rate=0.0), 1)
    confirmations = {c.delivery_id: c for _, _, cs in result.good for c in cs}
    for delivery_id, weights in DHL_CSV_DELIVERIES.items():
        c = confirmations[delivery_id]
        assert c.lines == () and c.carrier == "DHL"
        assert c.weights_g == tuple(weights) and len(c.tracking_numbers) == len(weights)
    assert confirmations["L000201"].service == "V01PAK" and confirmations["L000202"].service == "V62KP"


def test_an_order_shipped_whole_keeps_the_parcels_it_planned(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "ORD_L1_1.xml").write_bytes(
        order_xml("L1", {"A": 2, "B": 1}, parcels_kg=("2.400", "1.100")))
    (tmp_path / "in" / "ORD_L2_1.xml").write_bytes(order_xml("L2", {"A": 1}, parcels_kg=("0.500",)))
    result = run(FulfillerStandin(tmp_path, late_rate=0.0, partial_rate=0.0, multi_parcel_rate=0.0), 1)
    [(_, _, [first, second])] = result.good
    assert first.weights_g == (2400, 1100) and len(first.tracking_numbers) == 2
    assert second.weights_g == (500,)


def test_times_are_the_work_time_whether_written_with_offset_or_as_local_time(tmp_path):
    upload_orders(tmp_path)
    result = run(FulfillerStandin(tmp_path, seed=4, reply="csv", partial_rate=0.5, late_rate=0.5), 4,
                 start=datetime(2025, 7, 1, 10, 0, tzinfo=timezone.utc))
    raw = [(tmp_path / "out" / name).read_bytes() for name, _, _ in result.good]
    assert any(b"+02:00" in r for r in raw) and any(b"+02:00" not in r for r in raw)
    for _, now, confirmations in result.good:
        assert all(c.shipped_at == now for c in confirmations)


def test_the_same_seed_gives_the_same_files(tmp_path):
    outputs = []
    for root in (tmp_path / "a", tmp_path / "b"):
        upload_orders(root)
        run(FulfillerStandin(root, seed=9, partial_rate=0.5, multi_parcel_rate=0.5, late_rate=0.3, broken_rate=0.3), 5)
        outputs.append({p.name: p.read_bytes() for p in sorted((root / "out").iterdir())})
    assert outputs[0] == outputs[1] and outputs[0]


def test_a_second_instance_on_the_same_root_continues_the_first(tmp_path):
    upload_orders(tmp_path)
    first = FulfillerStandin(tmp_path, seed=6, partial_rate=1.0, late_rate=0.0)
    result = run(first, 1)
    assert sum(r.shipped_partial for r in result.reports) >= 1
    assert (tmp_path / STATE_FILE).is_file()

    second = FulfillerStandin(tmp_path, seed=6, partial_rate=1.0, late_rate=0.0)
    result = run(second, 2, start=START + timedelta(hours=1), result=result)
    assert second.work(START + timedelta(hours=5)).files_written == []  # nothing left to do
    left, _ = settle(result)
    assert all(not q for q in left.values())
    numbers = [n for _, _, cs in result.good for c in cs for n in c.tracking_numbers]
    assert len(numbers) == len(set(numbers))
    # The files of both instances are numbered in one sequence.
    seqs = [int(name.rsplit("_", 1)[1].split(".")[0]) for name, _, _ in result.good]
    assert seqs == sorted(set(seqs))


def test_a_resent_order_ships_nothing_twice(tmp_path):
    upload_orders(tmp_path)
    standin = FulfillerStandin(tmp_path, seed=1, late_rate=0.0, partial_rate=0.0)
    standin.work(START)
    (tmp_path / "in" / "ORD_L000101_20251103091500.xml").write_bytes(order_xml("L000101", {"TEE-BLK-M": 2}))
    report = standin.work(START + timedelta(hours=1))
    assert report.duplicates == 1 and report.files_written == []
    # The read file is kept beside the first one of that name, not overwritten.
    assert (tmp_path / "in" / "done" / "ORD_L000101_20251103091500.xml.1").is_file()


def test_an_unreadable_order_goes_to_the_error_folder(tmp_path):
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "ORD_bad_1.xml").write_bytes(b"<order><unclosed></order>")
    (inbox / "ORD_evil_1.xml").write_bytes(
        b'<!DOCTYPE order [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<order xmlns="urn:caturactl:fulfilment:order:1"><header><deliveryId>&x;</deliveryId></header></order>')
    (inbox / "ORD_other_1.xml").write_bytes(b'<invoice xmlns="urn:x"/>')
    (inbox / "ORD_nolines_1.xml").write_bytes(order_xml("L5", {}))
    (inbox / "delivery-note.pdf").write_bytes(b"%PDF-1.4")
    report = FulfillerStandin(tmp_path).work(START)
    assert len(report.rejected) == 4 and report.files_written == []
    assert sorted(p.name for p in (inbox / "error").iterdir()) == [
        "ORD_bad_1.xml", "ORD_evil_1.xml", "ORD_nolines_1.xml", "ORD_other_1.xml"]
    assert (inbox / "delivery-note.pdf").is_file()  # not an order: left for whoever wants it


def test_the_reference_sample_order_namespace_is_read_too(tmp_path):
    sample = Path(__file__).resolve().parents[1] / "data" / "sample-fulfiller-order.xml"  # from reference/carriers/
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / sample.name).write_bytes(sample.read_bytes())
    result = run(FulfillerStandin(tmp_path, late_rate=0.0, partial_rate=0.0), 1)
    [(_, _, [c])] = result.good
    assert c.delivery_id == "L-2025-000101" and c.carrier == "DHL" and c.service == "V01PAK"


def test_wrong_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="reply"):
        FulfillerStandin(tmp_path, reply="json")
    with pytest.raises(ValueError, match="late_rate"):
        FulfillerStandin(tmp_path, late_rate=1.5)
    with pytest.raises(ValueError, match="no number maker"):
        FulfillerStandin(tmp_path, carrier="Spedition Müller")
    with pytest.raises(ValueError, match="timezone-aware"):
        FulfillerStandin(tmp_path).work(datetime(2025, 11, 3, 14, 0))
