"""Reading Amazon's settlement flat file V2 strictly (connectors/amazon/settlement.py).

The sample is reference/amazon/settlement_v2_flatfile_DE_composed.tsv (composed, DE formatting),
copied to tests/data so that a fresh clone runs these tests.
"""

from __future__ import annotations

import hashlib
import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caturactl.core.errors import InputError
from connectors.amazon.settlement import (
    CAPTIONS, from_cents, parse_amount, parse_date, parse_datetime, read_settlement, summarise_settlement,
    validate_settlement,
)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "settlement_v2_flatfile_DE_composed.tsv"
UTC = timezone.utc


def sample_lines() -> list[str]:
    return SAMPLE.read_text(encoding="utf-8").splitlines()


def as_file(lines: list[str]) -> io.BytesIO:
    return io.BytesIO(("\n".join(lines) + "\n").encode("utf-8"))


def replace(line: str, caption: str, value: str) -> str:
    cells = line.split("\t")
    cells[CAPTIONS.index(caption)] = value
    return "\t".join(cells)


def broken(line_no: int, caption: str, value: str) -> io.BytesIO:
    lines = sample_lines()
    lines[line_no - 1] = replace(lines[line_no - 1], caption, value)
    return as_file(lines)


def where_of(stream: io.BytesIO) -> str | None:
    with pytest.raises(InputError) as caught:
        validate_settlement(stream, "s.tsv")
    return caught.value.where


# --- the sample -------------------------------------------------------------------------------

def test_the_reference_sample_reads_with_its_header_and_all_23_lines():
    with SAMPLE.open("rb") as f:
        header, lines = read_settlement(f, SAMPLE.name)
        lines = list(lines)
    assert header.settlement_id == "11894563021"
    assert header.start == datetime(2024, 5, 1, 8, 14, 20, tzinfo=UTC)
    assert header.end == datetime(2024, 5, 15, 8, 14, 20, tzinfo=UTC)
    assert header.deposit_date == datetime(2024, 5, 17, 8, 14, 20, tzinfo=UTC)
    assert (header.total_amount, header.currency) == (D("2.05"), "EUR")
    assert len(lines) == 23
    assert sum(line.amount for line in lines) == header.total_amount
    first = lines[0]
    assert (first.line_no, first.transaction_type, first.order_id, first.amount_description) == (
        3, "Order", "302-4471029-5538121", "Principal")
    assert (first.amount, first.quantity_purchased, first.posted_date) == (D("33.61"), 2, date(2024, 5, 3))
    assert first.posted_date_time == datetime(2024, 5, 3, 14, 22, 9, tzinfo=UTC)
    assert lines[1].quantity_purchased is None
    promotion = next(line for line in lines if line.amount_type == "Promotion")
    assert promotion.promotion_id == "DE-SPRING-10 2024-04-29 10-00-00 518"
    assert lines[-1].marketplace_name == "" and lines[-1].amount == D("-5.00")


def test_validate_sums_the_sample_per_transaction_and_amount_type():
    with SAMPLE.open("rb") as f:
        summary = validate_settlement(f, SAMPLE.name)
    assert (summary.lines, summary.amount) == (23, D("2.05"))
    order_prices = summary.by_type[("Order", "ItemPrice")]
    assert (order_prices.lines, order_prices.amount) == (8, D("33.61") + D("6.39") + D("4.16") + D("0.79")
                                                        + D("10.08") + D("1.91") + D("20.83") + D("4.17"))
    assert summary.by_transaction_type()["Refund"].lines == 4
    assert summary.by_transaction_type()["Refund"].amount == D("-17.30")


def test_the_header_is_read_at_once_and_the_lines_only_when_asked():
    stream = io.BytesIO(SAMPLE.read_bytes())
    header, lines = read_settlement(stream, "s.tsv")
    assert header.total_amount == D("2.05")
    assert next(lines).line_no == 3


# --- number and date forms --------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("1.234,56", "1234.56"), ("1,234.56", "1234.56"), ("-12,5", "-12.5"), ("12.50", "12.50"),
    ("0,123", "0.123"), ("1234,567", "1234.567"), ("1.234.567", "1234567"), ("-1.234.567,89", "-1234567.89"),
    ("12", "12"), ("-0,00", "0.00"), ("5,05", "5.05"), ("5.05", "5.05"), ("1141,18", "1141.18"),
])
def test_amounts_in_de_and_en_form(text, value):
    assert parse_amount(text) == D(value)


@pytest.mark.parametrize("text", [
    "1,234", "1.234", "-1,234", "999,000",  # EN thousands or DE decimals: not guessed
    "", "+1,00", "1e3", "NaN", "Infinity", " 1,00", "1,00 ", "1_000", "1,2,3", "1.234,567.8",
    "\u0661\u0662", "--1", "1,", ",5", "1.23.456,7", "12.345,6.7", "1,234,56", "01.234,5",
])
def test_ambiguous_and_malformed_amounts_are_refused(text):
    with pytest.raises(ValueError):
        parse_amount(text)


def test_dates_in_de_and_en_form():
    assert parse_date("14.03.2023") == parse_date("2023-03-14") == date(2023, 3, 14)
    moment = datetime(2023, 3, 14, 7, 49, 55, tzinfo=UTC)
    for text in ("14.03.2023 07:49:55 UTC", "2023-03-14 07:49:55 UTC", "2023-03-14T07:49:55+00:00",
                 "2023-03-14T07:49:55Z", "2023-03-14T09:49:55+02:00", "14.03.2023 08:49:55 +0100",
                 "2023-03-14T02:49:55-05:00"):
        assert parse_datetime(text) == moment, text
        assert parse_datetime(text).tzinfo is UTC


@pytest.mark.parametrize("text", ["31.02.2023", "14/03/2023", "2023-3-14", "14.03.23", "", "2023-03-14 "])
def test_bad_dates_are_refused(text):
    with pytest.raises(ValueError):
        parse_date(text)


@pytest.mark.parametrize("text", ["14.03.2023 07:49:55", "14.03.2023 25:00:00 UTC", "14.03.2023",
                                  "2023-03-14 07:49 UTC", "14.03.2023 07:49:55 CET", "2023-03-14T07:49:55+24:00"])
def test_bad_datetimes_and_times_without_zone_are_refused(text):
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_an_en_file_with_dot_decimals_and_iso_dates_reads():
    lines = sample_lines()
    lines[1] = replace(replace(lines[1], "settlement-start-date", "2024-05-01 08:14:20 UTC"),
                       "total-amount", "2.05")
    lines[2] = replace(replace(lines[2], "amount", "33.61"), "posted-date", "2024-05-03")
    lines[2] = replace(lines[2], "posted-date-time", "2024-05-03T16:22:09+02:00")
    header, read = read_settlement(as_file(lines), "en.tsv")
    first = next(read)
    assert header.start == datetime(2024, 5, 1, 8, 14, 20, tzinfo=UTC)
    assert (first.amount, first.posted_date) == (D("33.61"), date(2024, 5, 3))
    assert first.posted_date_time == datetime(2024, 5, 3, 14, 22, 9, tzinfo=UTC)
    assert validate_settlement(as_file(lines), "en.tsv").amount == D("2.05")


# --- broken files -----------------------------------------------------------------------------

def test_a_line_with_a_column_missing_names_its_line_and_the_missing_column():
    lines = sample_lines()
    lines[4] = lines[4].rsplit("\t", 1)[0]
    assert where_of(as_file(lines)) == "s.tsv:5:promotion-id"


def test_a_line_with_a_column_too_many_names_its_line():
    lines = sample_lines()
    lines[6] += "\textra"
    assert where_of(as_file(lines)) == "s.tsv:7:25"


def test_a_bad_amount_names_its_line_and_column():
    assert where_of(broken(7, "amount", "1,234")) == "s.tsv:7:amount"
    assert where_of(broken(9, "amount", "")) == "s.tsv:9:amount"


def test_a_bad_date_names_its_line_and_column():
    assert where_of(broken(4, "posted-date", "31.04.2024")) == "s.tsv:4:posted-date"
    assert where_of(broken(4, "posted-date-time", "03.05.2024 14:22:09")) == "s.tsv:4:posted-date-time"
    assert where_of(broken(2, "deposit-date", "17.05.2024")) == "s.tsv:2:deposit-date"


def test_bad_quantity_settlement_id_and_stray_summary_values_name_their_column():
    assert where_of(broken(3, "quantity-purchased", "-2")) == "s.tsv:3:quantity-purchased"
    assert where_of(broken(12, "settlement-id", "11894563022")) == "s.tsv:12:settlement-id"
    assert where_of(broken(12, "total-amount", "1,00")) == "s.tsv:12:total-amount"
    assert where_of(broken(2, "order-id", "302-4471029-5538121")) == "s.tsv:2:order-id"
    assert where_of(broken(2, "currency", "eur")) == "s.tsv:2:currency"


def test_an_unknown_or_missing_caption_is_named():
    lines = sample_lines()
    lines[0] = lines[0].replace("posted-date-time", "posted-time")
    with pytest.raises(InputError, match="unknown caption 'posted-time'") as caught:
        validate_settlement(as_file(lines), "s.tsv")
    assert caught.value.where == "s.tsv:1:posted-date-time"
    lines = sample_lines()
    lines[0] = lines[0].rsplit("\t", 1)[0]
    with pytest.raises(InputError, match="missing caption 'promotion-id'"):
        validate_settlement(as_file(lines), "s.tsv")
    lines = sample_lines()
    lines[0] += "\tprice-type"
    with pytest.raises(InputError, match="unknown caption 'price-type'"):
        validate_settlement(as_file(lines), "s.tsv")


def test_a_total_that_the_lines_do_not_add_up_to_names_the_difference_and_the_header_line():
    with pytest.raises(InputError, match=r"difference of 0\.01 EUR") as caught:
        validate_settlement(broken(2, "total-amount", "2,06"), "s.tsv")
    assert caught.value.where == "s.tsv:2:total-amount"


def test_a_blank_line_is_allowed_at_the_end_only():
    lines = sample_lines()
    assert validate_settlement(as_file(lines + ["", ""]), "s.tsv").lines == 23
    assert where_of(as_file(lines[:10] + [""] + lines[10:])) == "s.tsv:11"


def test_empty_file_and_missing_summary_line_are_input_errors():
    assert where_of(io.BytesIO(b"")) == "s.tsv:1"
    assert where_of(as_file(sample_lines()[:1])) == "s.tsv:2"


# --- encodings --------------------------------------------------------------------------------

def test_utf8_with_bom_and_crlf_line_ends_read():
    data = b"\xef\xbb\xbf" + SAMPLE.read_bytes().replace(b"\n", b"\r\n")
    summary = validate_settlement(io.BytesIO(data), "bom.tsv")
    assert summary.lines == 23


def test_a_windows_1252_file_reads_as_windows_1252():
    lines = sample_lines()
    lines[20] = replace(lines[20], "amount-description", "Lagergebühr (Gebühr für Überlagerung) €")
    data = ("\n".join(lines) + "\n").encode("cp1252")
    for with_bom in (b"", b"\xef\xbb\xbf"):
        _, read = read_settlement(io.BytesIO(with_bom + data), "cp.tsv")
        assert [line.amount_description for line in read][18] == "Lagergebühr (Gebühr für Überlagerung) €"


def test_a_byte_windows_1252_does_not_define_names_its_line():
    lines = sample_lines()
    data = ("\n".join(lines) + "\n").encode("cp1252").replace(b"Storage Fee", b"Storage\x81Fee")
    with pytest.raises(InputError, match="neither UTF-8 nor Windows-1252") as caught:
        validate_settlement(io.BytesIO(data), "cp.tsv")
    assert caught.value.where == "cp.tsv:21"


def test_utf8_text_followed_by_a_byte_that_is_not_utf8_is_refused_with_its_line():
    lines = sample_lines()
    text = "\n".join(lines[:5]).encode("utf-8")
    data = text.replace(b"Principal", "Prinzipälle".encode("utf-8"), 1) + b"\n" + \
        "\n".join(lines[5:]).replace("Commission", "Gebühr", 1).encode("cp1252")
    with pytest.raises(InputError, match="not UTF-8") as caught:
        validate_settlement(io.BytesIO(data), "mixed.tsv")
    assert caught.value.where == "mixed.tsv:7"  # the first Commission line


# --- generated settlements ------------------------------------------------------------------

def format_cents(cents: int, german: bool, grouped: bool) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    thousands, decimal = (".", ",") if german else (",", ".")
    digits = f"{whole:,}".replace(",", thousands) if grouped else str(whole)
    return f"{sign}{digits}{decimal}{frac:02d}"


line_types = st.sampled_from([("Order", "ItemPrice", "Principal"), ("Order", "ItemFees", "Commission"),
                              ("Refund", "ItemPrice", "Tax"), ("other-transaction", "other-transaction", "Storage Fee"),
                              ("ServiceFee", "Cost of Advertising", "TransactionTotalAmount")])
line_strategy = st.tuples(
    line_types,
    st.integers(-2_000_000, 2_000_000),  # cents
    st.booleans(),  # German formatting
    st.booleans(),  # thousands grouped
    st.integers(0, 14 * 86400),  # seconds into the period
    st.booleans(),  # DE or EN dates
)

GARBAGE = ["", "abc", "1,234", "12.345", "1.2.3", "1e3", "NaN", "+1,00", " 1,00", "1_000", "--1", "1,", "€1,00"]


def build(lines: list[tuple], total_cents: int) -> list[str]:
    start = datetime(2024, 5, 1, 8, 14, 20)
    out = ["\t".join(CAPTIONS)]
    summary = dict.fromkeys(CAPTIONS, "")
    summary.update({"settlement-id": "42", "settlement-start-date": "01.05.2024 08:14:20 UTC",
                    "settlement-end-date": "2024-05-15 08:14:20 UTC", "deposit-date": "17.05.2024 08:14:20 UTC",
                    "total-amount": format_cents(total_cents, True, True), "currency": "EUR"})
    out.append("\t".join(summary.values()))
    for (kind, amount_type, description), cents, german, grouped, seconds, de_date in lines:
        at = start + timedelta(seconds=seconds)
        cells = dict.fromkeys(CAPTIONS, "")
        cells.update({"settlement-id": "42", "transaction-type": kind, "amount-type": amount_type,
                      "amount-description": description, "amount": format_cents(cents, german, grouped),
                      "posted-date": at.strftime("%d.%m.%Y" if de_date else "%Y-%m-%d"),
                      "posted-date-time": at.strftime("%d.%m.%Y %H:%M:%S UTC" if de_date else "%Y-%m-%dT%H:%M:%S+00:00")})
        out.append("\t".join(cells.values()))
    return out


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line_strategy, max_size=40))
def test_generated_settlements_add_up_to_their_total(lines):
    total = sum(cents for _, cents, *_ in lines)
    summary = validate_settlement(as_file(build(lines, total)), "gen.tsv")
    assert summary.lines == len(lines)
    assert summary.amount == summary.header.total_amount == D(total) / 100
    _, read = read_settlement(as_file(build(lines, total)), "gen.tsv")
    assert [line.amount for line in read] == [D(cents) / 100 for _, cents, *_ in lines]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line_strategy, min_size=1, max_size=40), st.data())
def test_one_garbage_amount_or_a_dropped_column_is_found_at_its_line(lines, data):
    total = sum(cents for _, cents, *_ in lines)
    text = build(lines, total)
    index = data.draw(st.integers(2, len(text) - 1), label="line index")
    if data.draw(st.booleans(), label="garbage amount (else drop a column)"):
        text[index] = replace(text[index], "amount", data.draw(st.sampled_from(GARBAGE)))
        expected = f"gen.tsv:{index + 1}:amount"
    else:
        cells = text[index].split("\t")
        del cells[data.draw(st.integers(0, len(cells) - 1))]
        text[index] = "\t".join(cells)
        expected = f"gen.tsv:{index + 1}:promotion-id"
    assert where_of_named(as_file(text), "gen.tsv") == expected


def where_of_named(stream: io.BytesIO, name: str) -> str | None:
    with pytest.raises(InputError) as caught:
        validate_settlement(stream, name)
    return caught.value.where


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 1000])
def test_lines_split_across_read_chunks_read_the_same(chunk):
    # Real files are read in 1 MiB chunks; small chunks put lines and UTF-8 sequences on the seams.
    lines = sample_lines()
    lines[20] = replace(lines[20], "amount-description", "Lagergebühr €")
    whole = as_file(lines).getvalue()
    expected = [(line.line_no, line.amount_description, line.amount) for line in read_settlement(io.BytesIO(whole), "a")[1]]
    header, read = read_settlement(io.BytesIO(whole), "a", chunk_bytes=chunk)
    assert [(line.line_no, line.amount_description, line.amount) for line in read] == expected
    assert header.total_amount == D("2.05")
    cp = ("\n".join(lines) + "\n").encode("cp1252")
    assert [line.amount_description for line in read_settlement(io.BytesIO(cp), "b", chunk_bytes=chunk)[1]][18] \
        == "Lagergebühr €"
    broken_cp = cp.replace(b"Subscription Fee", b"Subscription\x81Fee")
    with pytest.raises(InputError) as caught:
        validate_settlement(io.BytesIO(broken_cp), "b", chunk_bytes=chunk)
    assert caught.value.where == "b:20"


# --- one pass: check, sums per order, hash ----------------------------------------------------

DAMAGE = {
    "amount": ["", "1,234", "12.345", "NaN", "1e3", "٣", "-0,00", "7.50", "1.234,56"],
    # The days the generated lines are posted on, so that the damage meets days already seen.
    "posted-date": ["", "31.02.2024", "2024-02-30", "01.05.24", "2024-05-01", "02.05.2024"],
    "posted-date-time": ["", "01.05.2024 14:22:09", "01.05.2024 24:00:00 UTC", "31.04.2024 10:00:00 UTC",
                         "2024-05-01T16:22:09+02:00", "2024-05-02 14:22:09 UTC", "01.05.2024 14:22:60 UTC",
                         "01.05.2024 14:22:09 GMT", "2024-05-01T14:22:09Z", "01.05.2024  14:22:09 UTC",
                         "01.05.2024 14:60:09 UTC", "02.05.2024 14:22:09 UTC", "01.05.2024T14:22:09 UTC"],
    "quantity-purchased": ["", "1", "12", "-2", "+1", "1.0", "٣", " 1"],
    "settlement-id": ["", "42", "43", "42 "],
    "total-amount": ["", "1,00"],
    "currency": ["", "EUR"],
    "transaction-type": ["", "Order", "Refund"],
}


def outcome_of_reading(data: bytes, chunk: int) -> tuple[str | None, D | None, list[D]]:
    """(where the line reader refuses, the header's total, the lines' amounts)"""
    try:
        header, lines = read_settlement(io.BytesIO(data), "gen.tsv", chunk_bytes=chunk)
        return None, header.total_amount, [line.amount for line in lines]
    except InputError as e:
        return e.where, None, []


# Few distinct amounts and posting times, as in real files (the same fees, one time per order):
# most lines then take the one pass's inline checks, not the reader's.
repetitive_line_strategy = st.tuples(
    line_types, st.sampled_from([1999, -299, 1999, 500, -1]), st.booleans(),
    st.just(False), st.sampled_from([0, 7, 86400 + 3600]), st.booleans())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(repetitive_line_strategy, min_size=1, max_size=15), st.data())
def test_the_one_pass_and_the_line_reader_accept_the_same_lines_and_name_the_same_error(lines, data):
    # summarise_settlement checks the common forms inline and leaves the rest to the reader's
    # checks; any damage must come out the same both ways (plus the total, which only it checks).
    # Every line twice, the damage in the second half: each damaged line's amount and days
    # were seen before, so the inline checks are the ones that meet it.
    lines = lines + lines
    text = build(lines, sum(cents for _, cents, *_ in lines))
    for _ in range(data.draw(st.integers(1, 3), label="damaged cells")):
        index = data.draw(st.integers(2 + len(lines) // 2, len(text) - 1), label="line index")
        caption = data.draw(st.sampled_from(sorted(DAMAGE)), label="column")
        text[index] = replace(text[index], caption, data.draw(st.sampled_from(DAMAGE[caption]), label="value"))
    if data.draw(st.booleans(), label="CRLF"):
        text = [line + "\r" for line in text]
    raw = ("\n".join(text) + "\n").encode("utf-8")
    same_outcome_both_ways(raw, data.draw(st.sampled_from([7, 300, 1 << 20]), label="chunk bytes"))


def same_outcome_both_ways(raw: bytes, chunk: int = 1 << 20) -> None:
    where, total, amounts = outcome_of_reading(raw, chunk)
    try:
        summary = summarise_settlement(io.BytesIO(raw), "gen.tsv", chunk_bytes=chunk)
    except InputError as e:
        if where is None:  # the lines read; only the sum can be wrong
            assert e.where == "gen.tsv:2:total-amount" and sum(amounts, D(0)) != total
        else:
            assert e.where == where
        return
    assert where is None and summary.lines == len(amounts) and summary.amount == sum(amounts, D(0)) == total


@pytest.mark.parametrize(("caption", "value"), [(c, v) for c, values in DAMAGE.items() for v in values])
@pytest.mark.parametrize("german", [True, False])
def test_each_damage_after_a_good_twin_comes_out_the_same_both_ways(caption, value, german):
    line = (("Order", "ItemPrice", "Principal"), 1999, german, False, 0, german)
    text = build([line, line, line], 3 * 1999)
    text[3] = replace(text[3], caption, value)  # line 4: amount and days already seen on line 3
    same_outcome_both_ways(("\n".join(text) + "\n").encode("utf-8"))


def test_crlf_line_ends_read_and_a_carriage_return_inside_a_line_is_refused_at_its_line():
    lines = sample_lines()
    crlf = ("\r\n".join(lines) + "\r\r\n").encode("utf-8")
    for chunk in (1, 5, 1 << 20):
        assert validate_settlement(io.BytesIO(crlf), "s.tsv", chunk_bytes=chunk).lines == 23
    lines[9] = replace(lines[9], "amount-description", "Commission\rCommission")
    for chunk in (1, 5, 1 << 20):
        with pytest.raises(InputError, match="carriage return") as caught:
            validate_settlement(as_file(lines), "s.tsv", chunk_bytes=chunk)
        assert caught.value.where == "s.tsv:10"
        with pytest.raises(InputError) as caught:
            list(read_settlement(as_file(lines), "s.tsv", chunk_bytes=chunk)[1])
        assert caught.value.where == "s.tsv:10"
    # An earlier bad line in the same chunk is the one named: errors come in file order.
    lines[4] = replace(lines[4], "amount", "1,234")
    assert where_of(as_file(lines)) == "s.tsv:5:amount"


def per_order_kind(transaction_type: str, amount_type: str, description: str) -> str | None:
    if amount_type == "ItemPrice" and transaction_type in ("Order", "Refund"):
        return transaction_type.lower()
    return None


@pytest.mark.parametrize("chunk", [1, 64, 1 << 20])
def test_the_one_pass_sums_per_order_and_hashes_the_bytes_it_read(chunk):
    raw = SAMPLE.read_bytes()
    digest = hashlib.sha256()
    summary = summarise_settlement(io.BytesIO(raw), "s.tsv", per_order=per_order_kind, digest=digest,
                                   chunk_bytes=chunk)
    assert digest.hexdigest() == hashlib.sha256(raw).hexdigest()
    expected: dict[str, dict[str, D]] = {}
    for line in read_settlement(io.BytesIO(raw), "s.tsv")[1]:
        group = per_order_kind(line.transaction_type, line.amount_type, line.amount_description)
        if group:
            sums = expected.setdefault(group, {})
            sums[line.order_id] = sums.get(line.order_id, D(0)) + line.amount
    got = {group: {order: from_cents(cents) for order, cents in sums.items()}
           for group, sums in summary.per_order_cents.items()}
    assert got == expected and set(got) == {"order", "refund"}
    assert all(type(c) is int for sums in summary.per_order_cents.values() for c in sums.values())
    principal = [line.amount for line in read_settlement(io.BytesIO(raw), "s.tsv")[1]
                 if (line.transaction_type, line.amount_type, line.amount_description) == ("Order", "ItemPrice", "Principal")]
    assert (summary.by_type[("Order", "ItemPrice", "Principal")].lines,
            summary.by_type[("Order", "ItemPrice", "Principal")].amount) == (len(principal), sum(principal))
    assert sum(t.amount for t in summary.by_type.values()) == summary.amount == D("2.05")


def test_sums_of_fractions_of_a_cent_stay_exact():
    lines = sample_lines()
    lines[2] = replace(lines[2], "amount", "33,6051")
    lines[3] = replace(lines[3], "amount", "6,3949")
    summary = summarise_settlement(as_file(lines), "s.tsv", per_order=per_order_kind)
    assert from_cents(summary.per_order_cents["order"]["302-4471029-5538121"]) == D("33.6051") + D("6.3949") \
        + D("4.16") + D("0.79")
    assert summary.amount == D("2.05")


def test_a_blank_line_inside_is_named_by_the_one_pass_too():
    lines = sample_lines()
    assert summarise_settlement(as_file(lines + [""]), "s.tsv").lines == 23
    with pytest.raises(InputError) as caught:
        summarise_settlement(as_file(lines[:7] + ["", ""] + lines[7:]), "s.tsv")
    assert caught.value.where == "s.tsv:8"
