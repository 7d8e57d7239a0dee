"""Reading Amazon's settlement report, ``GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2``, strictly.

Why strict: the settlement (Abrechnung) is what the bookkeeping is reconciled against; a value we
guess at is a wrong booking nobody notices. So every value is checked, the first bad one raises
``InputError`` naming ``file:line:column``, and nothing is silently skipped or rounded.

Why streaming: a busy seller's settlement has hundreds of thousands of lines; the file is read in
chunks of ``CHUNK_BYTES`` and handed on line by line, so memory does not grow with the file.
``summarise_settlement`` reads a file once: it checks every line, checks that the lines add up
to the header's total, sums the amounts per type (and, for the types a caller asks, per order)
and can hash the bytes as they are read, so a caller that must store nothing from a bad file
needs no second pass. ``read_settlement`` hands on the lines themselves; it can only find a bad
value when its iterator reaches it.

The layout and its quirks are in reference/amazon/README.md §8 "Flat file V2 layout":
- one caption line with exactly the 24 ``CAPTIONS`` in that order, tab-separated;
- the first data line is the summary: settlement-id, the three dates, total-amount and currency,
  nothing else; every other line has settlement-id and the transaction columns, the summary
  columns empty; total-amount equals the sum of all ``amount`` values;
- DE files write ``14.03.2023 07:49:55 UTC`` and decimal commas (``1141,18``), US/EN files
  ``2023-03-14 07:49:55 UTC`` and decimal points, and one report was seen with both ``5,05`` and
  ``5.05`` (abuzuhri/Amazon-SP-API-CSharp #571, #706). So the separator is decided per value, and
  a value that could be read both ways (``1,234``) is refused rather than guessed.
- The character set is not declared with the file: UTF-8 (with or without BOM) is tried, and a
  file that is not UTF-8 is read as Windows-1252, the superset of the ISO-8859-1 that
  python-amazon-sp-api falls back to (README §9 "Reports").
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache
from itertools import chain
from typing import BinaryIO, Callable, Iterator

from caturactl.core.errors import InputError
from caturactl.core.money import from_cents

REPORT_TYPE = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"

# reference/amazon/README.md §8, in file order.
CAPTIONS: tuple[str, ...] = (
    "settlement-id", "settlement-start-date", "settlement-end-date", "deposit-date",
    "total-amount", "currency", "transaction-type", "order-id", "merchant-order-id",
    "adjustment-id", "shipment-id", "marketplace-name", "amount-type", "amount-description",
    "amount", "fulfillment-id", "posted-date", "posted-date-time", "order-item-code",
    "merchant-order-item-id", "merchant-adjustment-item-id", "sku", "quantity-purchased",
    "promotion-id",
)
COLUMNS = len(CAPTIONS)
(_SETTLEMENT_ID, _START, _END, _DEPOSIT, _TOTAL, _CURRENCY, _TRANSACTION_TYPE, _ORDER_ID,
 _MERCHANT_ORDER_ID, _ADJUSTMENT_ID, _SHIPMENT_ID, _MARKETPLACE, _AMOUNT_TYPE, _AMOUNT_DESCRIPTION,
 _AMOUNT, _FULFILLMENT_ID, _POSTED_DATE, _POSTED_DATE_TIME, _ORDER_ITEM_CODE,
 _MERCHANT_ORDER_ITEM_ID, _MERCHANT_ADJUSTMENT_ITEM_ID, _SKU, _QUANTITY, _PROMOTION_ID) = range(COLUMNS)
_SUMMARY_ONLY = range(_START, _CURRENCY + 1)

CHUNK_BYTES = 1 << 20  # big enough that the per-chunk Python work vanishes, small enough to not matter


@dataclass(frozen=True, slots=True)
class SettlementHeader:
    """The summary line: which settlement, its period, when it is paid out and how much."""

    settlement_id: str
    start: datetime  # aware, UTC
    end: datetime  # aware, UTC
    deposit_date: datetime  # aware, UTC; Auszahlungsdatum
    total_amount: Decimal  # the payout; negative when the seller owes Amazon
    currency: str


# Not frozen, unlike the header: a frozen dataclass of 19 fields took 2.4 us to build against
# 0.26 us (Python 3.11, measured), as much as csv.reader needs for the whole line. Read-only by
# convention.
@dataclass(slots=True)
class SettlementLine:
    """One transaction line, as in the file; text columns the file leaves empty are ``""``.

    ``posted_date_time`` and ``merchant_adjustment_item_id`` are columns of the file too, kept so
    that no column is dropped.
    """

    line_no: int  # physical line in the file, 1 = the caption line
    transaction_type: str
    order_id: str
    merchant_order_id: str
    adjustment_id: str
    shipment_id: str
    marketplace_name: str
    amount_type: str
    amount_description: str
    amount: Decimal
    fulfillment_id: str
    posted_date: date
    posted_date_time: datetime | None  # aware, UTC
    order_item_code: str
    merchant_order_item_id: str
    merchant_adjustment_item_id: str
    sku: str
    quantity_purchased: int | None
    promotion_id: str


@dataclass(slots=True)
class TypeTotal:
    """How many lines of one transaction-type/amount-type pair, and what they add up to."""

    lines: int = 0
    amount: Decimal = field(default_factory=Decimal)


@dataclass(frozen=True, slots=True)
class SettlementSummary:
    """What ``validate_settlement`` found in a file whose lines add up to its total."""

    header: SettlementHeader
    lines: int  # transaction lines, without the caption and summary lines
    amount: Decimal  # sum of all lines' amounts, equal to ``header.total_amount``
    by_type: dict[tuple[str, str], TypeTotal]  # (transaction-type, amount-type) -> totals

    def by_transaction_type(self) -> dict[str, TypeTotal]:
        """The totals rolled up per transaction-type alone."""
        out: dict[str, TypeTotal] = {}
        for (transaction_type, _), t in self.by_type.items():
            total = out.setdefault(transaction_type, TypeTotal())
            total.lines += t.lines
            total.amount += t.amount
        return out


@dataclass(frozen=True, slots=True)
class SettlementTotals:
    """What ``summarise_settlement`` found in a file whose lines add up to its total."""

    header: SettlementHeader
    lines: int  # transaction lines, without the caption and summary lines
    amount: Decimal  # sum of all lines' amounts, equal to ``header.total_amount``
    # (transaction-type, amount-type, amount-description) -> totals
    by_type: dict[tuple[str, str, str], TypeTotal]
    # group named by the caller's ``per_order`` -> order-id -> sum of its lines of that group, in
    # cents: an int (a Decimal only if a line had fractions of a cent); ``from_cents`` reads it.
    # Cents because a settlement has a sum for every order, and an int is a quarter of a Decimal.
    per_order_cents: dict[str, dict[str, int | Decimal]]


# --- values ---------------------------------------------------------------------------------
# The parsers raise ValueError with a message; the loop adds file:line:column. They are cached
# because settlement values repeat a lot (the same fee amounts, the same posting days, one
# posted-date-time for all lines of an order); the caches are bounded, so memory stays flat.

_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:[.,][0-9]+)?")  # 1234,56 / 1234.56 / -12,5 / 12
_GROUPED_DE = re.compile(r"-?[1-9][0-9]{0,2}(?:\.[0-9]{3})+(?:,[0-9]+)?")  # 1.234,56
_GROUPED_EN = re.compile(r"-?[1-9][0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]+)?")  # 1,234.56


@lru_cache(maxsize=8192)
def parse_amount(text: str) -> Decimal:
    """The Decimal written as ``text`` with a decimal comma or point, grouped or not.

    Raises ValueError for anything else, and for ``1,234``/``1.234``, which DE and EN read
    differently (1.234 or 1234). No sign but a leading ``-``, no blanks, no exponent.
    """
    # The regex, not Decimal(), decides what is a number: Decimal() also takes " 1", "1_000",
    # "1e3", "NaN" and non-ASCII digits.
    if _PLAIN_NUMBER.fullmatch(text) is not None:
        point = text.find(",")
        if point < 0:
            point = text.find(".")
        # one separator and three digits after it: a grouped 1-3 digit number reads as well
        # (1,234 = 1234 in EN), unless the digits before it could not be a first group (0,123)
        if point >= 0 and len(text) - point == 4 and point - (text[0] == "-") <= 3 \
                and text[text[0] == "-"] != "0":
            raise ValueError(f"ambiguous amount {text!r}: thousands separator or decimal separator?")
        return Decimal(text.replace(",", "."))
    if _GROUPED_DE.fullmatch(text):
        return Decimal(text.replace(".", "").replace(",", "."))
    if _GROUPED_EN.fullmatch(text):
        return Decimal(text.replace(",", ""))
    raise ValueError(f"not an amount: {text!r}")


# Both locales' day forms (README §8): DE dd.mm.yyyy, EN yyyy-mm-dd; the time is the same in both,
# the zone is written "UTC" (Amazon's form) or as an offset (ISO 8601).
_DAY = r"(?:([0-9]{2})\.([0-9]{2})\.([0-9]{4})|([0-9]{4}-[0-9]{2}-[0-9]{2}))"
_DATE = re.compile(_DAY)
_DATETIME = re.compile(_DAY + r"[ T]([0-9]{2}:[0-9]{2}:[0-9]{2})(?: ?(?:UTC|GMT|Z)| ?([+-][0-9]{2}):?([0-9]{2}))")


@lru_cache(maxsize=1024)
def parse_date(text: str) -> date:
    """A day written ``14.03.2023`` (DE) or ``2023-03-14`` (EN); raises ValueError otherwise."""
    m = _DATE.fullmatch(text)
    if m is None:
        raise ValueError(f"not a date (dd.mm.yyyy or yyyy-mm-dd): {text!r}")
    day, month, year, iso = m.groups()
    try:
        return date.fromisoformat(iso or f"{year}-{month}-{day}")
    except ValueError:
        raise ValueError(f"no such day: {text!r}") from None


@lru_cache(maxsize=8192)
def parse_datetime(text: str) -> datetime:
    """An aware UTC datetime from the DE or EN form, e.g. ``14.03.2023 07:49:55 UTC``,
    ``2023-03-14 07:49:55 UTC``, ``2023-03-14T07:49:55+02:00``.

    Raises ValueError for other forms and for a time without a zone (UTC or an offset).
    """
    m = _DATETIME.fullmatch(text)
    if m is None:
        raise ValueError(f"not a date and time with zone (e.g. '14.03.2023 07:49:55 UTC'): {text!r}")
    day, month, year, iso, clock, offset_hours, offset_minutes = m.groups()
    # The regex has settled the form; fromisoformat (C) is 4x faster than building it ourselves.
    zone = "+00:00" if offset_hours is None else f"{offset_hours}:{offset_minutes}"
    try:
        moment = datetime.fromisoformat(f"{iso or f'{year}-{month}-{day}'}T{clock}{zone}")
    except ValueError:
        raise ValueError(f"no such date, time or zone: {text!r}") from None
    return moment if offset_hours is None else moment.astimezone(timezone.utc)


@lru_cache(maxsize=256)
def parse_quantity(text: str) -> int:
    """A count written in ASCII digits; raises ValueError for signs, blanks and other digits."""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"not a quantity: {text!r}")
    return int(text)


def _currency(text: str) -> str:
    if not (len(text) == 3 and text.isascii() and text.isalpha() and text.isupper()):
        raise ValueError(f"not an ISO 4217 currency code: {text!r}")
    return text


# --- text -----------------------------------------------------------------------------------

def _text_lines(stream: BinaryIO, name: str, chunk_bytes: int = CHUNK_BYTES,
                digest=None) -> Iterator[list[str]]:
    """Lists of decoded lines without their line end, one list per chunk read from ``stream``;
    ``digest`` (a hashlib object), if given, is fed every byte read.

    UTF-8 (BOM dropped) until a byte is not UTF-8; then, if everything before was ASCII (which
    reads the same in both), Windows-1252 from the start of that chunk on. A file that was UTF-8
    with non-ASCII text before the bad byte is broken, not Windows-1252, and raises InputError.
    Lines end at ``\\n``; ``\\r`` before it (CRLF files) is dropped, a ``\\r`` anywhere else in
    a line raises InputError once the lines before it are handed on (csv.reader's rule).
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
    cp1252 = False
    ascii_so_far = True
    carry = ""
    lines_before = 0  # complete lines handed on so far, for the line number of a bad byte
    first = True
    while True:
        chunk = stream.read(chunk_bytes)
        if digest is not None:
            digest.update(chunk)
        if first and chunk[:2] in (b"\xff\xfe", b"\xfe\xff"):
            raise InputError("the file is UTF-16; Amazon's settlement flat file is UTF-8 or "
                             "Windows-1252", where=f"{name}:1")
        opening, first = first, False
        final = not chunk
        pending = b"" if cp1252 else decoder.getstate()[0]  # an unfinished UTF-8 sequence
        try:
            if cp1252:
                text = chunk.decode("cp1252")
            else:
                text = decoder.decode(chunk, final)
                if ascii_so_far and not text.isascii():
                    ascii_so_far = False
        except UnicodeDecodeError as e:
            bad = e.object[:e.start]  # what the decoder saw: ``pending`` and this chunk
            if cp1252 or not ascii_so_far or pending or not bad.isascii():
                line = lines_before + bad.count(b"\n") + 1
                what = "Windows-1252" if cp1252 else "UTF-8, and the text before it was not ASCII"
                raise InputError(f"byte {e.object[e.start]:#04x} is not {what}",
                                 where=f"{name}:{line}") from None
            cp1252 = True
            if opening and chunk.startswith(codecs.BOM_UTF8):
                chunk = chunk[len(codecs.BOM_UTF8):]  # a BOM on a Windows-1252 file: still no text
            try:
                text = chunk.decode("cp1252")
            except UnicodeDecodeError as e2:
                line = lines_before + chunk[:e2.start].count(b"\n") + 1
                raise InputError(f"byte {e2.object[e2.start]:#04x} is neither UTF-8 nor Windows-1252",
                                 where=f"{name}:{line}") from None
        if final:
            text, carry = carry, ""
            pieces = [text] if text else []
        else:
            text = carry + text
            pieces = text.split("\n")
            carry = pieces.pop()  # the unfinished last line waits for the next chunk
        if "\r" in text:
            pieces, bad_line = _without_carriage_returns(pieces)
            if bad_line is not None:
                yield pieces[:bad_line]  # the lines before it may hold an earlier error
                raise InputError("not a tab-separated line: a carriage return (\\r) inside the line",
                                 where=f"{name}:{lines_before + bad_line + 1}")
        lines_before += len(pieces)
        if pieces:
            yield pieces
        if final:
            return


def _without_carriage_returns(lines: list[str]) -> tuple[list[str], int | None]:
    """``lines`` without the ``\\r`` (any number) a CRLF file leaves at their ends, and the index
    of the first line with a ``\\r`` left inside, or None."""
    lines = [line.rstrip("\r") for line in lines]
    if "\r" not in "".join(lines):
        return lines, None
    return lines, next(i for i, line in enumerate(lines) if "\r" in line)


def _lines(stream: BinaryIO, name: str, chunk_bytes: int, digest=None) -> Iterator[str]:
    # chain.from_iterable hands the lines on in C; a generator in between costs 0.1 us a line
    return chain.from_iterable(_text_lines(stream, name, chunk_bytes, digest))


def _fields(line: str | None) -> list[str] | None:
    """The tab-separated fields of ``line``; a blank line has none (as csv.reader says)."""
    # Amazon does not quote, so a tab always separates: str.split is the whole of csv.reader's
    # work here (QUOTE_NONE), at half its cost.
    if line is None:
        return None
    return line.split("\t") if line else []


# --- file -----------------------------------------------------------------------------------

def _check_captions(row: list[str] | None, name: str) -> None:
    if row is None:
        raise InputError("the file is empty", where=f"{name}:1")
    for i, caption in enumerate(row):
        if i >= COLUMNS:
            raise InputError(f"unknown caption {caption!r}: the V2 flat file has {COLUMNS} columns",
                             where=f"{name}:1:{i + 1}")
        if caption != CAPTIONS[i]:
            if caption in CAPTIONS:
                why = f"caption {caption!r} out of order, {CAPTIONS[i]!r} expected here"
            else:
                why = f"unknown caption {caption!r}, {CAPTIONS[i]!r} expected"
            raise InputError(why, where=f"{name}:1:{CAPTIONS[i]}")
    if len(row) < COLUMNS:
        raise InputError(f"missing caption {CAPTIONS[len(row)]!r} (and any after it)",
                         where=f"{name}:1:{CAPTIONS[len(row)]}")


def _column_count(row: list[str], where: str) -> InputError:
    if len(row) < COLUMNS:
        return InputError(f"{len(row)} columns, not {COLUMNS}: {CAPTIONS[len(row)]!r} and after missing",
                          where=f"{where}:{CAPTIONS[len(row)]}")
    return InputError(f"{len(row)} columns, not {COLUMNS}", where=f"{where}:{COLUMNS + 1}")


def _read_header(row: list[str] | None, name: str) -> SettlementHeader:
    where = f"{name}:2"
    if row is None:
        raise InputError("no summary line after the captions", where=where)
    if len(row) != COLUMNS:
        raise _column_count(row, where)
    if not row[_SETTLEMENT_ID]:
        raise InputError("settlement-id is empty", where=f"{where}:settlement-id")
    for i in range(_TRANSACTION_TYPE, COLUMNS):
        if row[i]:
            raise InputError(f"the summary line has {row[i]!r} in a transaction column",
                             where=f"{where}:{CAPTIONS[i]}")
    values: list[object] = []
    for i, parse in ((_START, parse_datetime), (_END, parse_datetime), (_DEPOSIT, parse_datetime),
                     (_TOTAL, parse_amount), (_CURRENCY, _currency)):
        try:
            values.append(parse(row[i]))
        except ValueError as e:
            raise InputError(str(e), where=f"{where}:{CAPTIONS[i]}") from None
    start, end, deposit, total, currency = values
    if end < start:  # type: ignore[operator]
        raise InputError(f"settlement ends ({end}) before it starts ({start})",
                         where=f"{where}:settlement-end-date")
    return SettlementHeader(row[_SETTLEMENT_ID], start, end, deposit, total, currency)  # type: ignore[arg-type]


def _line_values(row: list[str], line_no: int, name: str,
                 settlement_id: str) -> tuple[Decimal, date, datetime | None, int | None]:
    """The amount, posted-date, posted-date-time and quantity of one transaction line; raises
    InputError naming ``name:line:column`` at its first bad value.

    The one definition of a good line. ``read_settlement`` calls it for every line;
    ``summarise_settlement`` checks the common forms itself and calls it whenever something is
    not plainly right, so that both accept the same lines and name the same first error.
    """
    where = f"{name}:{line_no}"
    if len(row) != COLUMNS:
        raise _column_count(row, where)
    if row[_SETTLEMENT_ID] != settlement_id:
        raise InputError(f"settlement-id {row[_SETTLEMENT_ID]!r}, the summary line says {settlement_id!r}",
                         where=f"{where}:settlement-id")
    for i in _SUMMARY_ONLY:
        if row[i]:
            raise InputError(f"a second summary value {row[i]!r}; only the first data line is the summary",
                             where=f"{where}:{CAPTIONS[i]}")
    if not row[_TRANSACTION_TYPE]:
        raise InputError("transaction-type is empty", where=f"{where}:transaction-type")
    column = "amount"
    try:
        value = parse_amount(row[_AMOUNT])
        column = "posted-date"
        day = parse_date(row[_POSTED_DATE])
        column = "posted-date-time"
        moment = parse_datetime(row[_POSTED_DATE_TIME]) if row[_POSTED_DATE_TIME] else None
        column = "quantity-purchased"
        count = parse_quantity(row[_QUANTITY]) if row[_QUANTITY] else None
    except ValueError as e:
        raise InputError(str(e), where=f"{where}:{column}") from None
    return value, day, moment, count


def _open(stream: BinaryIO, name: str, chunk_bytes: int,
          digest=None) -> tuple[SettlementHeader, Iterator[str]]:
    """The header, and the lines after it (still to be read and checked)."""
    lines = _lines(stream, name, chunk_bytes, digest)
    _check_captions(_fields(next(lines, None)), name)
    header = _read_header(_fields(next(lines, None)), name)
    return header, lines


def read_settlement(stream: BinaryIO, name: str, *,
                    chunk_bytes: int = CHUNK_BYTES) -> tuple[SettlementHeader, Iterator[SettlementLine]]:
    """The summary line now, and an iterator over the transaction lines read as it is consumed.

    ``name`` is used in error locations only. Raises InputError (``name:line:column``) for bad
    captions or a bad summary line here, and from the iterator at the first bad line; the
    iterator does not compare the lines' sum with the total (``summarise_settlement`` does).
    """
    header, lines = _open(stream, name, chunk_bytes)
    return header, _settlement_lines(lines, name, header.settlement_id)


def _settlement_lines(lines: Iterator[str], name: str, settlement_id: str) -> Iterator[SettlementLine]:
    blank: int | None = None  # a blank line is only allowed at the very end of the file
    for line_no, line in enumerate(lines, start=3):
        if not line:
            blank = blank or line_no
            continue
        if blank is not None:
            raise InputError("blank line inside the file", where=f"{name}:{blank}")
        row = line.split("\t")
        value, day, moment, count = _line_values(row, line_no, name, settlement_id)
        yield SettlementLine(line_no, row[_TRANSACTION_TYPE], row[_ORDER_ID], row[_MERCHANT_ORDER_ID],
                             row[_ADJUSTMENT_ID], row[_SHIPMENT_ID], row[_MARKETPLACE], row[_AMOUNT_TYPE],
                             row[_AMOUNT_DESCRIPTION], value, row[_FULFILLMENT_ID], day, moment,
                             row[_ORDER_ITEM_CODE], row[_MERCHANT_ORDER_ITEM_ID],
                             row[_MERCHANT_ADJUSTMENT_ITEM_ID], row[_SKU], count, row[_PROMOTION_ID])


# Amazon's own form of posted-date-time, in either locale; anything else (an offset, "Z", a
# "T") goes to parse_datetime. Only the day itself is left to check (31.02. has the right form).
_UTC_MOMENT = re.compile(r"(?:[0-9]{2}\.[0-9]{2}\.[0-9]{4}|[0-9]{4}-[0-9]{2}-[0-9]{2}) "
                         r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9] UTC")
_CACHE_LIMIT = 1 << 15  # distinct amount texts remembered; emptied when full, so memory stays flat


def _cents(amount: Decimal) -> int | Decimal:
    cents = amount.scaleb(2)
    return int(cents) if cents == cents.to_integral_value() else cents


def summarise_settlement(stream: BinaryIO, name: str, *,
                         per_order: Callable[[str, str, str], str | None] | None = None,
                         digest=None, chunk_bytes: int = CHUNK_BYTES) -> SettlementTotals:
    """Read the whole file once; return the header, the sums per type and the sums per order.

    Promises that every line reads (the same checks as ``read_settlement``: ``_line_values``)
    and that the amounts add up exactly to the summary line's total-amount. Raises InputError at
    the first bad value, or naming the difference and ``name:2:total-amount`` when the sum is off.
    ``per_order(transaction_type, amount_type, amount_description)`` names the per-order sum a
    line goes to, or None; it is asked once per distinct triple. ``digest`` (a hashlib object) is
    fed the file's bytes as they are read. Memory: the per-order sums and a bounded cache.
    """
    header, lines = _open(stream, name, chunk_bytes, digest)
    settlement_id = header.settlement_id
    # settlement-id and five empty summary columns: one comparison checks all six
    line_start = settlement_id + "\t" * (_TRANSACTION_TYPE - _SETTLEMENT_ID)
    types: dict[tuple[str, str, str], list] = {}  # triple -> [lines, amount, its per-order sums or None]
    orders_by_group: dict[str, dict[str, int | Decimal]] = {}
    cents_of: dict[str, int | Decimal] = {}  # amount text -> cents, every one read by _line_values
    days: set[str] = set()  # posted-date texts (and days of posted-date-times) known to be days
    utc_moment = _UTC_MOMENT.fullmatch
    last_day = last_moment = None
    blank: int | None = None
    # The hot loop: one unpacking checks the column count and names the values; anything not
    # plainly right goes to _line_values, which names the error (or accepts a rarer form).
    for line_no, line in enumerate(lines, start=3):
        row = line.split("\t")
        try:
            (_, _, _, _, _, _, transaction_type, order_id, _, _, _, _,
             amount_type, description, amount, _, posted_date, posted_date_time, _, _, _, _,
             quantity, _) = row
        except ValueError:
            if not line:
                blank = line_no
                break
            raise _column_count(row, f"{name}:{line_no}") from None
        if not (line.startswith(line_start) and transaction_type):
            _line_values(row, line_no, name, settlement_id)  # raises, naming the column
        cents = cents_of.get(amount)
        if cents is None:
            cents = _cents(_line_values(row, line_no, name, settlement_id)[0])
            if len(cents_of) >= _CACHE_LIMIT:
                cents_of.clear()
            cents_of[amount] = cents
        # All lines of one order are posted together: comparing with the line before is
        # cheaper than even a cache hit.
        if posted_date_time != last_moment or posted_date != last_day:
            if posted_date not in days or (posted_date_time and not (
                    utc_moment(posted_date_time) and posted_date_time[:10] in days)):
                _line_values(row, line_no, name, settlement_id)  # raises, or the form is a rarer one
                if len(days) >= _CACHE_LIMIT:
                    days.clear()
                days.add(posted_date)
                if utc_moment(posted_date_time):
                    days.add(posted_date_time[:10])
            last_day, last_moment = posted_date, posted_date_time
        if quantity and not (quantity.isascii() and quantity.isdigit()):
            _line_values(row, line_no, name, settlement_id)  # raises
        kind = types.get((transaction_type, amount_type, description))
        if kind is None:
            group = per_order(transaction_type, amount_type, description) if per_order else None
            kind = types[(transaction_type, amount_type, description)] = [
                0, 0, None if group is None else orders_by_group.setdefault(group, {})]
        kind[0] += 1
        kind[1] += cents
        orders = kind[2]
        if orders is not None:
            orders[order_id] = orders.get(order_id, 0) + cents
    if blank is not None:
        for line in lines:
            if line:
                raise InputError("blank line inside the file", where=f"{name}:{blank}")
    by_type = {key: TypeTotal(count, from_cents(cents)) for key, (count, cents, _) in types.items()}
    count = sum(t.lines for t in by_type.values())
    amount = from_cents(sum(cents for _, cents, _ in types.values()))
    if amount != header.total_amount:
        raise InputError(
            f"the {count} lines add up to {amount} {header.currency}, the summary line says "
            f"{header.total_amount}: a difference of {header.total_amount - amount} {header.currency}",
            where=f"{name}:2:total-amount")
    return SettlementTotals(header, count, amount, by_type, orders_by_group)


def validate_settlement(stream: BinaryIO, name: str, *, chunk_bytes: int = CHUNK_BYTES) -> SettlementSummary:
    """Read the whole file once, in constant memory; return counts and sums per type.

    ``summarise_settlement`` without per-order sums, its totals rolled up per transaction-type
    and amount-type. Raises InputError as it does.
    """
    totals = summarise_settlement(stream, name, chunk_bytes=chunk_bytes)
    by_type: dict[tuple[str, str], TypeTotal] = {}
    for (transaction_type, amount_type, _), t in totals.by_type.items():
        total = by_type.setdefault((transaction_type, amount_type), TypeTotal())
        total.lines += t.lines
        total.amount += t.amount
    return SettlementSummary(totals.header, totals.lines, totals.amount, by_type)
