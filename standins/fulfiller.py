"""A stand-in for an external fulfiller (3PL) that works on a local directory.

Tests, the demo and benchmarks need a warehouse on the other end of a transport that behaves like
a real one: it picks up order files, ships some deliveries whole, some in several parcels, some
in parts over two runs, answers some late, and now and then sends a broken file before the correct
one. The directory is the root of an SFTP/FTP server or a folder transport, laid out as in
reference/carriers/formats.md §6: orders arrive in ``in/``, read ones go to ``in/done/`` (or
``in/error/`` when unreadable), confirmations appear in ``out/``.

It reads
  * our fulfiller order XML (namespace ``urn:caturactl:fulfilment:order:1``, root ``<order>``;
    carriers/fulfiller_xml.py writes it): delivery id, carrier, service, lines, and the planned
    parcels' weights, which it keeps when it ships the delivery whole;
  * DHL GKP CSV files ``DHL_*.csv`` (CP1252, ``;``, quoted; ``Sendungsreferenz`` is the delivery
    id, with ``-01``, ``-02`` appended for the parcels of one delivery); they list no goods, so
    such a delivery is always confirmed whole (no lines).
and writes confirmations as ``SHP_<yyyymmddHHMMSS>_<seq>.xml`` (carriers/schemas/confirmation.xsd)
or ``.csv`` (the layout of reference/carriers/sample-shipment-confirmation.csv, in CP1252).

Every decision is drawn from a ``random.Random`` seeded with the stand-in's seed and the delivery
id, so a run is reproducible whatever order the files arrive in. State (deliveries seen, waiting,
half shipped, the next tracking serial) lives in ``root/.fulfiller-state.json``, reloaded on each
``work()``, so a second instance on the same root continues where the first stopped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from caturactl.core.errors import InputError
from carriers.confirmation_xml import NAMESPACE as CONFIRMATION_NS
from carriers.confirmation_xml import parse_untrusted
from carriers.tracking import known_carriers, make_number

ORDER_NS = "urn:caturactl:fulfilment:order:1"
# The composed reference sample (reference/carriers/sample-fulfiller-order.xml) uses this one.
_ORDER_NAMESPACES = (ORDER_NS, "urn:example:fulfilment:order:1")
STATE_FILE = ".fulfiller-state.json"
# Names an uploader writes to before renaming (formats.md §6); never read, never moved.
_TEMP_SUFFIXES = (".part", ".tmp", ".filepart")
_PARCEL_SUFFIX = re.compile(r"^(?P<base>.+)-(?P<no>\d{2})$")  # "L000123-02": parcel 2 of L000123
_CSV_COLUMNS = ("order_id", "delivery_id", "carrier", "service", "tracking_number", "parcel_no",
                "parcel_count", "weight_kg", "shipped_at")


@dataclass(slots=True)
class WorkReport:
    """What one ``work()`` call did."""

    files_read: int = 0  # order files picked up (moved to in/done)
    orders_read: int = 0  # new deliveries in them
    shipped_whole: int = 0  # deliveries confirmed complete in one shipment
    shipped_partial: int = 0  # first parts of deliveries shipped in two goes
    remainders_shipped: int = 0  # second parts that completed such a delivery
    multi_parcel: int = 0  # confirmations (correct ones) with two or more parcels
    deferred: int = 0  # deliveries held back this call (answered late)
    broken_files: int = 0  # confirmation files written with a deliberate error
    duplicates: int = 0  # orders for a delivery already known, ignored
    rejected: list[str] = field(default_factory=list)  # "file: why" for unreadable orders (in/error)
    files_written: list[str] = field(default_factory=list)  # confirmation files, in writing order


@dataclass(slots=True)
class _Order:
    delivery_id: str
    order_id: str
    carrier: str
    service: str
    lines: list[list[Any]] | None  # [[sku, qty], ...]; None when the file does not list goods
    parcel_weights_g: list[int | None] = field(default_factory=list)  # one per planned parcel


class FulfillerStandin:
    """A seeded 3PL on ``root``; see the module docstring.

    ``reply`` picks the confirmation format ("xml" or "csv"). ``carrier`` is used when an order
    names a carrier without tracking-number rules (the warehouse then ships with its default
    carrier and says so in the confirmation). The rates are per delivery: ``late_rate`` holds it
    back one or two calls, ``broken_rate`` sends a spoilt file first and the correct one on the
    next call, ``partial_rate`` ships part of the goods now and the rest on the next call,
    ``multi_parcel_rate`` packs its first shipment into 2-3 parcels. Raises ValueError for
    an unknown reply, a rate outside 0..1 or a default carrier it cannot number.
    """

    def __init__(self, root: Path, *, seed: int = 1, inbox: str = "in", outbox: str = "out",
                 reply: str = "xml", carrier: str = "DHL", partial_rate: float = 0.1,
                 multi_parcel_rate: float = 0.15, late_rate: float = 0.1, broken_rate: float = 0.0,
                 tz: str = "Europe/Berlin") -> None:
        if reply not in ("xml", "csv"):
            raise ValueError(f"reply must be 'xml' or 'csv', not {reply!r}")
        for name, rate in (("partial_rate", partial_rate), ("multi_parcel_rate", multi_parcel_rate),
                           ("late_rate", late_rate), ("broken_rate", broken_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")
        make_number(carrier, 0)  # ValueError now rather than at the first shipment
        self.root = Path(root)
        self.inbox = self.root / inbox
        self.outbox = self.root / outbox
        self.seed, self.reply, self.carrier, self.tz = seed, reply, carrier, ZoneInfo(tz)
        self.partial_rate, self.multi_parcel_rate = partial_rate, multi_parcel_rate
        self.late_rate, self.broken_rate = late_rate, broken_rate
        self.state: dict[str, Any] = self._load_state()

    # --- the one public operation -------------------------------------------------------------

    def work(self, now: datetime) -> WorkReport:
        """Read new order files, then ship, defer or half-ship what is open, writing at most one
        correct confirmation file plus one broken file per delivery chosen to fail; ``now`` must
        be timezone-aware. Returns what it did; raises ValueError for a naive ``now``."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.state = self._load_state()  # another instance may have worked since
        for folder in (self.inbox, self.inbox / "done", self.inbox / "error", self.outbox):
            folder.mkdir(parents=True, exist_ok=True)
        report = WorkReport()
        self._read_inbox(report)

        local = now.astimezone(self.tz)
        shipments: list[dict[str, Any]] = []
        for delivery_id, d in self.state["deliveries"].items():
            if d["done"]:
                continue
            if d["wait"] > 0:
                d["wait"] -= 1
                report.deferred += 1
                continue
            plan = d.pop("planned", None) or self._plan(delivery_id, d)
            if d["broken"]:
                # The correct file for the same parcels follows on the next call, as a 3PL
                # resends after being told its file was rejected.
                d["broken"] = False
                d["planned"] = plan
                report.files_written.append(self._write([plan], local, broken=self._rng(delivery_id, "broken")))
                report.broken_files += 1
                continue
            self._record(d, plan, report)
            shipments.append(plan)
        if shipments:
            report.files_written.append(self._write(shipments, local))
        self._save_state()
        return report

    # --- reading orders -------------------------------------------------------------------------

    def _read_inbox(self, report: WorkReport) -> None:
        for path in sorted(self.inbox.iterdir()):
            name = path.name
            if not path.is_file() or name.startswith(".") or name.lower().endswith(_TEMP_SUFFIXES):
                continue
            is_xml = name.lower().endswith(".xml")
            is_dhl = name.startswith("DHL_") and name.lower().endswith(".csv")
            if not (is_xml or is_dhl):
                continue  # documents sent along (PDFs) are not ours to move
            try:
                content = path.read_bytes()
            except FileNotFoundError:
                continue  # renamed away between listing and reading
            try:
                orders = _dhl_csv_orders(name, content) if is_dhl else [_xml_order(name, content)]
            except InputError as e:
                report.rejected.append(f"{name}: {e}")
                _move(path, self.inbox / "error")
                continue
            _move(path, self.inbox / "done")
            report.files_read += 1
            for order in orders:
                if order.delivery_id in self.state["deliveries"]:
                    # A resend (formats.md §6: re-sending must be safe) ships nothing twice.
                    report.duplicates += 1
                    continue
                self.state["deliveries"][order.delivery_id] = self._decide(order)
                report.orders_read += 1

    def _decide(self, order: _Order) -> dict[str, Any]:
        """The fate of a new delivery, drawn once from its own seeded generator."""
        rng = self._rng(order.delivery_id, "decide")
        late, partial, multi, broken, report_lines = (rng.random() for _ in range(5))
        carrier = order.carrier if order.carrier.lower() in {c.lower() for c in known_carriers()} else self.carrier
        return {
            "order_id": order.order_id, "carrier": carrier, "service": order.service,
            "open": order.lines, "weights_g": order.parcel_weights_g,
            "wait": 1 + rng.randrange(2) if late < self.late_rate else 0,
            "partial": partial < self.partial_rate, "multi": multi < self.multi_parcel_rate,
            "broken": broken < self.broken_rate, "report_lines": report_lines < 0.5,
            "shipments": 0, "done": False,
        }

    # --- shipping -------------------------------------------------------------------------------

    def _plan(self, delivery_id: str, d: dict[str, Any]) -> dict[str, Any]:
        """The next shipment of a delivery: parcels with fresh tracking numbers, weights and,
        when the goods are known, what each parcel holds."""
        rng = self._rng(delivery_id, f"shipment-{d['shipments']}")
        first = d["shipments"] == 0
        wanted = rng.randint(2, 3) if first and d["multi"] else 1
        if d["open"] is None:  # a DHL CSV: one parcel per row as labelled, no goods listed
            count = max(wanted, len(d["weights_g"]) if first else 1)
            contents: list[list[list[Any]]] = [[] for _ in range(count)]
            final, with_lines = True, False
        else:
            units = [sku for sku, qty in d["open"] for _ in range(qty)]
            final = not (first and d["partial"] and len(units) >= 2)
            now_units = units if final else units[: rng.randint(1, len(units) - 1)]
            # Shipped whole, the parcels packed as the order planned them; every parcel holds something.
            planned = len(d["weights_g"]) if first and final else 1
            count = min(max(wanted, planned), len(now_units))
            contents = [_count(chunk) for chunk in _split(now_units, count)]
            # A part must say what it holds; a whole delivery sometimes just says "all".
            with_lines = not final or d["report_lines"] or not first
        hinted = d["weights_g"] if first and final and len(d["weights_g"]) == count else []
        parcels = []
        for i, held in enumerate(contents):
            weight = hinted[i] if hinted and hinted[i] else rng.randrange(30, 800) * 10
            parcels.append({"tracking": self._next_number(d["carrier"]), "weight_g": weight,
                            "lines": held if with_lines else []})
        return {"delivery_id": delivery_id, "order_id": d["order_id"], "carrier": d["carrier"],
                "service": d["service"], "parcels": parcels, "final": final,
                "shipped": [[sku, qty] for held in contents for sku, qty in held]}

    def _record(self, d: dict[str, Any], plan: dict[str, Any], report: WorkReport) -> None:
        """Marks a shipment as sent and counts it."""
        if len(plan["parcels"]) > 1:
            report.multi_parcel += 1
        if not plan["final"]:
            report.shipped_partial += 1
            left = dict((sku, qty) for sku, qty in d["open"])
            for sku, qty in plan["shipped"]:
                left[sku] -= qty
            d["open"] = [[sku, qty] for sku, qty in left.items() if qty > 0]
        else:
            if d["shipments"]:
                report.remainders_shipped += 1
            else:
                report.shipped_whole += 1
            d["done"] = True
            d["open"] = [] if d["open"] is not None else None
        d["shipments"] += 1

    def _next_number(self, carrier: str) -> str:
        serial = self.state["next_serial"]
        self.state["next_serial"] = serial + 1
        return make_number(carrier, serial)

    def _rng(self, delivery_id: str, purpose: str) -> random.Random:
        # A string seed is hashed with SHA-512, so this is stable across processes and Pythons.
        return random.Random(f"{self.seed}:{delivery_id}:{purpose}")

    # --- writing confirmations ------------------------------------------------------------------

    def _write(self, shipments: list[dict[str, Any]], local: datetime,
               broken: random.Random | None = None) -> str:
        """Writes one confirmation file under a temp name, renames it, returns the final name."""
        seq = self.state["next_seq"]
        self.state["next_seq"] = seq + 1
        name = f"SHP_{local:%Y%m%d%H%M%S}_{seq:03d}.{self.reply}"
        fault = broken.choice(("time", "tracking")) if broken else None
        if self.reply == "xml":
            content = _confirmation_xml(shipments, local, fault)
        else:
            # formats.md §6: confirmations often carry local time without offset; every other
            # file does so, the rest carry the offset.
            content = _confirmation_csv(shipments, local, fault, with_offset=seq % 2 == 0)
        temp = self.outbox / (name + ".part")
        temp.write_bytes(content)
        os.replace(temp, self.outbox / name)
        return name

    # --- state ----------------------------------------------------------------------------------

    def _load_state(self) -> dict[str, Any]:
        path = self.root / STATE_FILE
        if path.is_file():
            return json.loads(path.read_text("utf-8"))
        # Different seeds start far apart so two stand-ins in one test hand out distinct numbers.
        return {"version": 1, "next_serial": (self.seed % 64) * 100_000 + 1, "next_seq": 1, "deliveries": {}}

    def _save_state(self) -> None:
        path = self.root / STATE_FILE
        temp = path.with_name(path.name + ".tmp")
        temp.write_text(json.dumps(self.state, indent=1, sort_keys=True), "utf-8")
        os.replace(temp, path)


# --- pure helpers of the stand-in -------------------------------------------------------------


def _split(units: list[str], count: int) -> list[list[str]]:
    """``units`` cut into ``count`` consecutive, non-empty pieces (count <= len(units))."""
    size, extra = divmod(len(units), count)
    pieces, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        pieces.append(units[start:end])
        start = end
    return pieces


def _count(units: list[str]) -> list[list[Any]]:
    totals: dict[str, int] = {}
    for sku in units:
        totals[sku] = totals.get(sku, 0) + 1
    return [[sku, qty] for sku, qty in totals.items()]


def _move(path: Path, folder: Path) -> None:
    """Moves a read file aside without ever overwriting an earlier one of the same name."""
    target, n = folder / path.name, 1
    while target.exists():
        target, n = folder / f"{path.name}.{n}", n + 1
    os.replace(path, target)


def _xml_order(name: str, content: bytes) -> _Order:
    """A fulfiller order file, read tolerantly: unknown elements are ignored, only the delivery
    id, carrier, service and the lines matter. InputError when those are unusable."""
    root = parse_untrusted(name, content).getroot()
    qname = etree.QName(root)
    if qname.localname != "order" or qname.namespace not in _ORDER_NAMESPACES:
        raise InputError(f"not a fulfiller order (root {root.tag})", where=f"{name}:{root.sourceline}")
    ns = {"o": qname.namespace}

    def text(path: str, node: etree._Element = root) -> str:
        return " ".join(node.xpath(f"string({path})", namespaces=ns).split())

    delivery_id = text("o:header/o:deliveryId")
    if not delivery_id:
        raise InputError("no deliveryId", where=f"{name}:{root.sourceline}:deliveryId")
    lines: dict[str, int] = {}
    for line in root.xpath("o:lines/o:line", namespaces=ns):
        sku, quantity = text("o:sku", line), text("o:quantity", line)
        if not sku or not quantity.isdigit() or int(quantity) == 0:
            raise InputError(f"line needs a sku and a positive quantity (got {sku!r}, {quantity!r})",
                             where=f"{name}:{line.sourceline}:line")
        lines[sku] = lines.get(sku, 0) + int(quantity)
    if not lines:
        raise InputError("order has no lines", where=f"{name}:{root.sourceline}:lines")
    weights: list[int | None] = []
    for weight in root.xpath("o:parcels/o:parcel", namespaces=ns):
        # Only a hint for the confirmation; an odd value is not worth refusing the order over.
        kg = text("o:weightKg", weight)
        try:
            weights.append(int(Decimal(kg) * 1000) if kg else None)
        except ArithmeticError:
            weights.append(None)
    return _Order(delivery_id, text("o:header/o:orderId"), text("o:shipping/o:carrier"),
                  text("o:shipping/o:service"), [[sku, qty] for sku, qty in lines.items()], weights)


def _dhl_csv_orders(name: str, content: bytes) -> list[_Order]:
    """The deliveries of a DHL GKP CSV, one row per parcel; InputError when it is not one."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("cp1252", errors="replace")  # only ASCII columns are read
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=";", quotechar='"')
    if not reader.fieldnames or "Sendungsreferenz" not in reader.fieldnames:
        raise InputError("no Sendungsreferenz column", where=f"{name}:1:Sendungsreferenz")
    orders: dict[str, _Order] = {}
    for row in reader:
        reference = (row.get("Sendungsreferenz") or "").strip()
        if not reference:
            continue
        match = _PARCEL_SUFFIX.match(reference)
        delivery_id = match["base"] if match else reference
        weight = (row.get("Gewicht") or "").strip().replace(",", ".")
        try:
            weight_g = int(Decimal(weight) * 1000) if weight else None
        except ArithmeticError:
            raise InputError(f"Gewicht {weight!r} is not a number",
                             where=f"{name}:{reader.line_num}:Gewicht") from None
        order = orders.setdefault(delivery_id, _Order(
            delivery_id, "", "DHL", (row.get("Produkt_und_Servicekennzeichnung") or "").strip(), None))
        order.parcel_weights_g.append(weight_g)
    return list(orders.values())


def _confirmation_xml(shipments: list[dict[str, Any]], local: datetime, fault: str | None) -> bytes:
    """Our confirmation XML for ``shipments``; ``fault`` spoils the first one on purpose."""

    def el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
        node = etree.SubElement(parent, f"{{{CONFIRMATION_NS}}}{tag}", attrs)
        node.text = text
        return node

    root = etree.Element(f"{{{CONFIRMATION_NS}}}confirmation", {"version": "1.0"}, nsmap={None: CONFIRMATION_NS})
    for i, s in enumerate(shipments):
        shipment = el(root, "shipment")
        el(shipment, "deliveryId", s["delivery_id"])
        if s["order_id"]:
            el(shipment, "orderId", s["order_id"])
        el(shipment, "carrier", s["carrier"])
        if s["service"]:
            el(shipment, "service", s["service"])
        el(shipment, "shippedAt", "2025-13-45T25:61:00" if fault == "time" and i == 0
           else local.isoformat(timespec="seconds"))
        for j, p in enumerate(s["parcels"]):
            parcel = el(shipment, "parcel")
            el(parcel, "trackingNumber", "" if fault == "tracking" and i == 0 and j == 0 else p["tracking"])
            el(parcel, "weightKg", f"{Decimal(p['weight_g']) / 1000:.3f}")
            for sku, qty in p["lines"]:
                el(parcel, "line", sku=sku, quantity=str(qty))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _confirmation_csv(shipments: list[dict[str, Any]], local: datetime, fault: str | None,
                      *, with_offset: bool) -> bytes:
    """The sample CSV layout for ``shipments`` in CP1252; sku/quantity columns only when some
    shipment lists its goods. ``fault`` spoils the first row on purpose."""
    with_lines = any(p["lines"] for s in shipments for p in s["parcels"])
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(_CSV_COLUMNS + (("sku", "quantity") if with_lines else ()))
    shipped_at = local.isoformat(timespec="seconds") if with_offset else f"{local:%Y-%m-%d %H:%M:%S}"
    first = True
    for s in shipments:
        count = len(s["parcels"])
        for no, p in enumerate(s["parcels"], start=1):
            kg = Decimal(p["weight_g"]) / 1000
            weight = (f"{kg:.2f}" if p["weight_g"] % 10 == 0 else f"{kg:.3f}").replace(".", ",")  # German comma
            row = [s["order_id"], s["delivery_id"], s["carrier"], s["service"], p["tracking"], str(no),
                   str(count), weight, shipped_at]
            if first and fault:
                row[4 if fault == "tracking" else 8] = "" if fault == "tracking" else "31.02.2025 25:61"
            first = False
            if not with_lines:
                writer.writerow(row)
                continue
            # One row per sku the parcel holds; a shipment that says "all" leaves both empty.
            for sku, qty in p["lines"] or [["", ""]]:
                writer.writerow(row + [sku, str(qty)])
    return out.getvalue().encode("cp1252")
