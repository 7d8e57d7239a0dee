"""Reading Amazon's settlement flat file V2 strictly (connectors/amazon/settlement.py).

The sample is reference/amazon/settlement_v2_flatfile_DE_composed.tsv (composed, DE formatting),
copied to tests/data so that a fresh clone runs these tests.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caturactl.errors import InputError
from connectors.amazon.settlement import (
    CAPTIONS, parse_amount, parse_date, parse_datetime, read_settlement, validate_settlement,
)

SAMPLE = Path(__file__).parent / "data" / "settlement_v2_flatfile_DE_composed.tsv"
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


line_strategy = st.tuples(
    st.sampled_from([("Order", "ItemPrice", "Principal"), ("Order", "ItemFees", "Commission"),
                     ("Refund", "ItemPrice", "Tax"), ("other-transaction", "other-transaction", "Storage Fee"),
                     ("ServiceFee", "Cost of Advertising", "TransactionTotalAmount")]),
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
