"""Shipment confirmations from a fulfiller as ``;``-separated CSV (SHP_*.csv), one row per parcel.

The 3PL tells us which delivery left, with which carrier and tracking numbers, and when; this is
what we pass on to Amazon and the buyer, so a file is read all or nothing: the first bad value
rejects the whole file with file:line:column, and a person fixes it at the source. The layout is
the composed one of reference/carriers/sample-shipment-confirmation.csv (formats.md §6): header
row, columns found by name, German decimal comma in weights, several rows for a multi-parcel
delivery. Tracking numbers are only normalised here; the service checks them against the
carrier recorded on the delivery (reference/carriers/tracking.md "Ambiguity warning").

``parse_time``, ``weight_in_g`` and ``parse_count`` are shared with the XML reader so both formats
read times, weights and counts the same way. Every number and date is range-checked here, before
anyone converts or stores it: a partner's file may hold a weight of 10^23 kg, the year 1 or
superscript digits (which ``str.isdigit`` accepts and ``int`` refuses), and such a value must
reject its file like any other bad value, not end the run. The file is decoded while it is read,
never held as one string beside its bytes.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from decimal import ROUND_HALF_UP, Decimal

from caturactl.core.errors import InputError
from caturactl.ports import Confirmation, ConfirmedLine
from carriers.tracking import normalise

REQUIRED = ("delivery_id", "carrier", "tracking_number", "shipped_at")
OPTIONAL = ("order_id", "service", "parcel_no", "parcel_count", "weight_kg", "sku", "quantity")

# Sane bounds, far inside what the database columns (32-bit integers) and datetime can hold.
FIRST_YEAR, LAST_YEAR = 2000, 2100  # outside: a typo or a hostile file, never a shipment
MAX_WEIGHT_KG = 1000  # a pallet at most; carriers' parcels end at 31.5-70 kg
MAX_QUANTITY = 100_000  # pieces of one SKU in one delivery
MAX_PARCELS = 999  # parcels of one delivery (parcel_no, parcel_count)

# ISO 8601 with "T" or a space, seconds optional, offset optional; a date alone is refused because
# "shipped on Monday" cannot be turned into one instant. ASCII digits only: re's \d also matches
# Arabic-Indic and other digits.
_TIME = re.compile(r"(?P<year>[0-9]{4})-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
                   r"(Z|[+-][0-9]{2}:?[0-9]{2})?")
_KG = re.compile(r"[0-9]+([.,][0-9]+)?")
_COUNT = re.compile(r"[0-9]+")
# What the XML schema allows in a tracking number, after normalise() removed spaces.
_TRACKING = re.compile(r"[A-Z0-9]{1,64}")
_CHUNK = 1 << 20  # bytes decoded at a time when checking the encoding


def quoted(value: str, most: int = 40) -> str:
    """``value`` in quotes for a message, cut after ``most`` characters (a field may be 100 kB)."""
    return repr(value if len(value) <= most else value[:most] + "…")


def parse_time(value: str, tz: tzinfo) -> datetime:
    """``value`` (ISO 8601 with or without offset, or "YYYY-MM-DD HH:MM[:SS]") in the years
    2000..2100 as a UTC datetime; a time without offset is local time in ``tz``. Raises
    ValueError saying why."""
    match = _TIME.fullmatch(value)
    if not match:
        raise ValueError(f"not a date and time: {quoted(value)} (expected e.g. 2025-11-03T14:05:00+01:00)")
    # Checked before any conversion: 0001-01-01T00:30+14:00 is a valid ISO time whose UTC
    # does not exist in Python (OverflowError).
    if not FIRST_YEAR <= int(match["year"]) <= LAST_YEAR:
        raise ValueError(f"{value!r} is not a date between {FIRST_YEAR} and {LAST_YEAR}")
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"no such date or time: {value!r}") from None
    if stamp.tzinfo is None:
        # formats.md §6: confirmations are often local time without offset. In the autumn hour
        # that occurs twice, fold=0 picks the first (summer-time) one. A time that the spring
        # change skips cannot have been written by a clock in ``tz``, so it is refused.
        local = stamp.replace(tzinfo=tz)
        if local.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) != stamp:
            raise ValueError(f"{value} does not exist in {tz} (the clocks jumped over it)")
        stamp = local
    return stamp.astimezone(timezone.utc)


def weight_in_g(kg: Decimal) -> int:
    """``kg`` as whole grams (half up); raises ValueError unless it is more than 0 and at most
    1000 kg."""
    if not kg.is_finite() or kg > MAX_WEIGHT_KG:
        raise ValueError(f"weight {quoted(str(kg))} kg: at most {MAX_WEIGHT_KG} kg")
    grams = int((kg * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if grams <= 0:
        raise ValueError(f"weight must be more than 0 kg: {quoted(str(kg))}")
    return grams


def parse_weight_g(value: str) -> int:
    """Kilograms with a decimal comma or dot ("2,40", "2.40") as whole grams (half up);
    raises ValueError unless it is a number more than 0 and at most 1000 kg."""
    if not _KG.fullmatch(value):
        raise ValueError(f"not a weight in kg: {quoted(value)} (expected e.g. 2,40)")
    return weight_in_g(Decimal(value.replace(",", ".")))


def parse_count(value: str, most: int) -> int:
    """A whole number from 1 to ``most`` written in ASCII digits; raises ValueError saying why."""
    digits = value.lstrip("0")
    if not _COUNT.fullmatch(value) or not digits:
        raise ValueError(f"not a positive whole number: {quoted(value)}")
    # The length first: int() of a 5000-digit string is refused by Python itself.
    if len(digits) > len(str(most)) or int(digits) > most:
        raise ValueError(f"{quoted(value)}: at most {most}")
    return int(digits)


@dataclass(slots=True)
class _Parcel:
    tracking_number: str
    parcel_no: int | None
    weight_g: int | None
    line: int  # first line naming this parcel


@dataclass(slots=True)
class _Delivery:
    """The rows of one delivery collected so far."""

    delivery_id: str
    line: int
    carrier: str
    order_id: str
    service: str
    shipped_at: datetime
    with_lines: bool  # whether its rows name a sku; must be the same on every row
    parcel_count: int | None = None
    parcels: dict[str, _Parcel] = field(default_factory=dict)  # by tracking number, in file order
    by_parcel_no: dict[int, _Parcel] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # sku -> summed quantity, in file order


class ConfirmationCsv:
    """Reads SHP_*.csv confirmation files (see module docstring for the layout)."""

    name = "confirmation_csv"

    def read(self, file_name: str, content: bytes, tz: tzinfo) -> list[Confirmation]:
        """One Confirmation per delivery id in the file, in order of first appearance; raises
        InputError(where="FILE:LINE:COLUMN") on the first bad value, so nothing is half-read."""
        rows = _rows(file_name, _text(file_name, content))
        header_line, header = next(rows, (1, []))
        columns = _columns(file_name, header_line, header)
        deliveries: dict[str, _Delivery] = {}
        for line, row in rows:
            if len(row) > len(header) and any(v.strip() for v in row[len(header):]):
                raise InputError(f"{len(row)} fields, but the header names {len(header)} columns",
                                 where=f"{file_name}:{line}")
            values = {name: (row[i].strip() if i < len(row) else "") for name, i in columns.items()}
            _read_row(file_name, line, values, tz, deliveries)
        # Each delivery is let go as it becomes a Confirmation, so the two never exist side by side.
        return [_confirmation(file_name, deliveries.pop(key)) for key in list(deliveries)]


# The five bytes CP1252 leaves undefined; a file with one is binary or in another encoding.
_NOT_CP1252 = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")


def _text(file_name: str, content: bytes) -> io.TextIOWrapper:
    """The file as text, decoded as it is read: UTF-8 (BOM or not), else CP1252 as many German
    3PLs still write (formats.md §6); InputError when it is neither. The encoding is settled
    first, chunk by chunk, so the text never exists whole (a str and a StringIO of a 20 MB file
    take five times its size)."""
    start = len(codecs.BOM_UTF8) if content.startswith(codecs.BOM_UTF8) else 0
    encoding = "utf-8" if _is_utf8(memoryview(content)[start:]) else "cp1252"
    if encoding == "cp1252":
        bad = _NOT_CP1252.search(content, start)
        if bad:
            line = content.count(b"\n", start, bad.start()) + 1
            raise InputError(f"neither UTF-8 nor CP1252 text (byte 0x{content[bad.start()]:02x})",
                             where=f"{file_name}:{line}")
    raw = io.BytesIO(content)  # shares the bytes, no copy
    raw.seek(start)
    return io.TextIOWrapper(raw, encoding=encoding, newline="")


def _is_utf8(content: memoryview) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for at in range(0, len(content), _CHUNK):
            decoder.decode(content[at:at + _CHUNK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _rows(file_name: str, text: io.TextIOWrapper):
    """(first line number, fields) of every non-blank row; line numbers count physical lines,
    so a quoted field spanning lines does not shift the numbers of later rows."""
    reader = csv.reader(text, delimiter=";", quotechar='"')
    last = 0
    try:
        for row in reader:
            start, last = last + 1, reader.line_num
            # Spreadsheets export empty rows as ";;;;"; they carry nothing.
            if any(v.strip() for v in row):
                yield start, row
    except csv.Error as e:
        raise InputError(f"not readable as CSV: {e}", where=f"{file_name}:{last + 1}") from None


def _columns(file_name: str, line: int, header: list[str]) -> dict[str, int]:
    """Index of each known column by name (case and surrounding spaces ignored)."""
    names = [h.strip().lower() for h in header]
    columns: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in columns and name in REQUIRED + OPTIONAL:
            raise InputError(f"column {name} appears twice in the header", where=f"{file_name}:{line}:{name}")
        columns.setdefault(name, i)
    for name in REQUIRED:
        if name not in columns:
            hint = ""
            if len(header) <= 1 and any(sep in "".join(header) for sep in ",\t|"):
                hint = "; the separator must be ';'"
            elif not header:
                hint = "; the file is empty, a header row is expected"
            raise InputError(f"missing column {name}{hint}", where=f"{file_name}:{line}:{name}")
    return {name: i for name, i in columns.items() if name in REQUIRED + OPTIONAL}


def _read_row(file_name: str, line: int, v: dict[str, str], tz: tzinfo,
              deliveries: dict[str, _Delivery]) -> None:
    """Adds one parcel row to its delivery; raises InputError naming line and column."""

    def bad(column: str, message: str) -> InputError:
        return InputError(message, where=f"{file_name}:{line}:{column}")

    for column in REQUIRED:
        if not v[column]:
            raise bad(column, f"{column} is empty")
    delivery_id, carrier = v["delivery_id"], v["carrier"]
    tracking = normalise(v["tracking_number"])
    if not _TRACKING.fullmatch(tracking):
        raise bad("tracking_number", f"tracking_number {quoted(tracking)}: only letters A-Z and digits 0-9, "
                                     f"at most 64")
    try:
        shipped_at = parse_time(v["shipped_at"], tz)
    except ValueError as e:
        raise bad("shipped_at", str(e)) from None
    numbers: dict[str, int | None] = {}
    for column, most in (("parcel_no", MAX_PARCELS), ("parcel_count", MAX_PARCELS), ("quantity", MAX_QUANTITY)):
        try:
            numbers[column] = parse_count(v[column], most) if v.get(column) else None
        except ValueError as e:
            raise bad(column, str(e)) from None
    try:
        weight_g = parse_weight_g(v["weight_kg"]) if v.get("weight_kg") else None
    except ValueError as e:
        raise bad("weight_kg", str(e)) from None
    sku = v.get("sku", "")
    if sku and numbers["quantity"] is None:
        raise bad("quantity", f"quantity is empty but sku {sku} is given")
    if not sku and numbers["quantity"] is not None:
        raise bad("sku", "sku is empty but a quantity is given")

    d = deliveries.get(delivery_id)
    if d is None:
        d = deliveries[delivery_id] = _Delivery(delivery_id, line, carrier, v.get("order_id", ""),
                                                v.get("service", ""), shipped_at, bool(sku))
    else:
        # One confirmation carries one carrier, order and service; rows that disagree are
        # a mistake at the source we must not paper over.
        if carrier.lower() != d.carrier.lower():
            raise bad("carrier", f"carrier {carrier} differs from {d.carrier} on line {d.line} "
                                 f"for delivery {delivery_id}")
        for column in ("order_id", "service"):
            mine, theirs = v.get(column, ""), getattr(d, column)
            if mine and theirs and mine != theirs:
                raise bad(column, f"{column} {mine} differs from {theirs} for delivery {delivery_id}")
            if mine and not theirs:
                setattr(d, column, mine)
        if bool(sku) != d.with_lines:
            raise bad("sku", f"sku {'filled' if sku else 'empty'} here but "
                             f"{'filled' if d.with_lines else 'empty'} on line {d.line} for delivery "
                             f"{delivery_id}: either every row names what it holds or none does")
        # Parcels of one delivery may be scanned minutes apart; the delivery has left once the
        # last one has.
        d.shipped_at = max(d.shipped_at, shipped_at)

    count = numbers["parcel_count"]
    if count is not None:
        if d.parcel_count is not None and count != d.parcel_count:
            raise bad("parcel_count", f"parcel_count {count} differs from {d.parcel_count} "
                                      f"for delivery {delivery_id}")
        d.parcel_count = count
    _add_parcel(d, tracking, numbers["parcel_no"], weight_g, line, bad)
    if sku:
        total = d.lines.get(sku, 0) + (numbers["quantity"] or 0)
        if total > MAX_QUANTITY:
            raise bad("quantity", f"{total} × {sku} in delivery {delivery_id}: at most {MAX_QUANTITY}")
        d.lines[sku] = total


def _add_parcel(d: _Delivery, tracking: str, parcel_no: int | None, weight_g: int | None, line: int,
                bad) -> None:
    """Records the parcel of a row; a parcel may be named on several rows (one per sku, or a
    repeated row), but only with the same number, parcel_no and weight."""
    if not tracking:
        raise bad("tracking_number", "tracking_number is empty")
    parcel = d.parcels.get(tracking)
    if parcel_no is not None:
        if d.parcel_count is not None and parcel_no > d.parcel_count:
            raise bad("parcel_no", f"parcel_no {parcel_no} is more than parcel_count {d.parcel_count}")
        other = d.by_parcel_no.get(parcel_no)
        if other is not None and other.tracking_number != tracking:
            raise bad("tracking_number", f"parcel {parcel_no} of delivery {d.delivery_id} already has "
                                         f"tracking number {other.tracking_number} (line {other.line})")
    if parcel is None:
        parcel = d.parcels[tracking] = _Parcel(tracking, parcel_no, weight_g, line)
        if d.parcel_count is not None and len(d.parcels) > d.parcel_count:
            raise bad("tracking_number", f"delivery {d.delivery_id} has more parcels than "
                                         f"parcel_count {d.parcel_count}")
    else:
        if parcel_no is not None and parcel.parcel_no is not None and parcel_no != parcel.parcel_no:
            raise bad("parcel_no", f"tracking number {tracking} is parcel {parcel.parcel_no} "
                                   f"on line {parcel.line}, not {parcel_no}")
        if weight_g is not None and parcel.weight_g is not None and weight_g != parcel.weight_g:
            raise bad("weight_kg", f"parcel {tracking} weighs {parcel.weight_g} g on line {parcel.line}, "
                                   f"not {weight_g} g")
        parcel.parcel_no = parcel.parcel_no if parcel.parcel_no is not None else parcel_no
        parcel.weight_g = parcel.weight_g if parcel.weight_g is not None else weight_g
    if parcel_no is not None:
        d.by_parcel_no[parcel_no] = parcel


def _confirmation(file_name: str, d: _Delivery) -> Confirmation:
    parcels = list(d.parcels.values())
    weights = tuple(p.weight_g for p in parcels)
    return Confirmation(
        delivery_id=d.delivery_id,
        carrier=d.carrier,
        service=d.service,
        tracking_numbers=tuple(p.tracking_number for p in parcels),
        shipped_at=d.shipped_at,
        # "per parcel when reported": nothing reported at all reads as no weights.
        weights_g=weights if any(w is not None for w in weights) else (),
        lines=tuple(ConfirmedLine(sku, q) for sku, q in d.lines.items()),
        where=f"{file_name}:{d.line}",
        order_id=d.order_id,
    )
