"""Payments and bank statements: the CAMT.053 and MT940 readers on the composed files
(tests/data/bank/README.md says where each field comes from), the matching rule over plain
values, and ``payments import`` through the command line on factory-built orders."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from caturactl.core.errors import InputError
from caturactl.orders.tickets import Ticket
from caturactl.payments.matching import Matcher, OpenPayment, normalise
from caturactl.payments.models import BankCredit, BankStatement, Payment
from caturactl.ports import BankEntry
from connectors.bank import camt053, mt940, read_statement
from tests import factories

DATA = Path(__file__).resolve().parents[1] / "data" / "bank"
CAMT08, CAMT02, MT940 = DATA / "camt053_v08.xml", DATA / "camt053_v02.xml", DATA / "mt940_sparkasse.sta"
D = Decimal


def _read(path: Path):
    return read_statement(path.name, path.read_bytes())


def _entry(amount, text="", name="", ccy="EUR", **kw) -> BankEntry:
    return BankEntry(where="t", entry_ref="r", booking_date=date(2026, 11, 25), amount=D(amount), currency=ccy,
                     debtor_name=name, remittance=text, **kw)


# --- reading CAMT.053 ---------------------------------------------------------------------------


def test_camt_v08_reads_every_booked_entry_with_its_parties_and_purpose():
    [s] = _read(CAMT08)
    assert (s.identity, s.format, s.account, s.currency) == (
        "camt:CAMT053-20261125-0001/20261125-DE44-1", "camt.053.001.08", "DE44500105175407324931", "EUR")
    assert (s.opening, s.closing) == (D("1000.00"), D("1283.08"))
    assert len(s.entries) == 12  # 11 booked entries, one a batch of two; the pending one is not read
    first = s.entries[0]
    assert (first.amount, first.debtor_name, first.debtor_iban, first.remittance, first.end_to_end_id) == (
        D("49.98"), "Anna Beispiel", "DE02120300000000202051", "Bestellung 30210000011000001", "")
    assert first.where == "camt053_v08.xml:39:Stmt[1]/Ntry[1]/NtryDtls/TxDtls[1]"
    fee = s.entries[-1]
    assert fee.amount == D("-2.50") and not fee.returned and fee.bank_code == "ACMT/MDOP/CHRG"


def test_camt_batch_entry_is_one_entry_per_transaction_with_its_structured_reference():
    [s] = _read(CAMT08)
    batch = [e for e in s.entries if e.entry_ref.startswith("2026112500005")]
    assert [(e.entry_ref, e.amount, e.debtor_name, e.remittance) for e in batch] == [
        ("2026112500005-1", D("15.50"), "Elena García", "RE2026 0006"),
        ("2026112500005-2", D("22.00"), "Frank Weber", "302 1000007 1000007")]


def test_camt_returned_direct_debit_carries_its_reason_and_the_buyer():
    [s] = _read(CAMT08)
    [ret] = [e for e in s.entries if e.returned]
    assert (ret.amount, ret.return_reason, ret.debtor_name, ret.end_to_end_id, ret.bank_code) == (
        D("-45.00"), "AM04", "Bernd Muster", "LS-302-1000011", "PMNT/RDDT/UPDD")


def test_camt_v02_reads_the_older_shapes():
    [s] = _read(CAMT02)
    assert s.format == "camt.053.001.02" and s.closing == D("1403.08")
    assert [(e.amount, e.debtor_name, e.remittance) for e in s.entries] == [
        (D("60.00"), "Bernd Muster", "Rest 302-1000002-1000002"), (D("60.00"), "Anna Beispiel", "302-1000012-1000012")]


def _broken(tmp_path, path: Path, old: str, new: str) -> tuple[str, bytes]:
    data = path.read_bytes().replace(old.encode(), new.encode(), 1)
    assert data != path.read_bytes()
    return path.name, data


def test_a_broken_camt_amount_is_refused_naming_file_line_and_path(tmp_path):
    name, data = _broken(tmp_path, CAMT08, '<Amt Ccy="EUR">40.00</Amt>\n        <CdtDbtInd>',
                         '<Amt Ccy="EUR">4O.00</Amt>\n        <CdtDbtInd>')
    with pytest.raises(InputError) as exc:
        read_statement(name, data)
    assert exc.value.where == "camt053_v08.xml:53:Stmt[1]/Ntry[2]/Amt" and "not an amount" in exc.value.message


def test_camt_balances_that_do_not_add_up_are_refused():
    name, data = _broken(None, CAMT08, "1283.08", "1283.09")
    with pytest.raises(InputError, match="do not make the closing balance 1283.09") as exc:
        read_statement(name, data)
    assert exc.value.where.endswith("Stmt[1]/Bal")


def test_a_batch_whose_transactions_do_not_add_up_is_refused():
    name, data = _broken(None, CAMT08, '<Amt Ccy="EUR">22.00</Amt>', '<Amt Ccy="EUR">21.00</Amt>')
    with pytest.raises(InputError, match="not the sum of its transactions") as exc:
        read_statement(name, data)
    assert "Ntry[5]/Amt" in exc.value.where


def test_malformed_xml_and_other_documents_are_refused():
    with pytest.raises(InputError) as exc:
        read_statement("x.xml", CAMT08.read_bytes().replace(b"</GrpHdr>", b"</GrpHdrX>"))
    assert exc.value.where == "x.xml:7" and "not well-formed" in exc.value.message
    with pytest.raises(InputError, match="not a camt.053"):
        read_statement("pain.xml", b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"/>')
    with pytest.raises(InputError, match="neither a CAMT.053"):
        read_statement("notes.txt", b"Kontoauszug vom 25.11.2026")
    with pytest.raises(InputError, match="missing") as exc:
        camt053.read("x.xml", CAMT08.read_bytes().replace(b"<MsgId>CAMT053-20261125-0001</MsgId>", b""))
    assert exc.value.where.endswith("BkToCstmrStmt/GrpHdr/MsgId")


# --- reading MT940 ------------------------------------------------------------------------------


def test_mt940_reads_the_dk_structured_field_86():
    first, second = _read(MT940)
    assert (first.identity, first.account, first.opening, first.closing) == (
        "mt940:50010517/5407324931/STARTUMSE/00212/001", "50010517/5407324931", D("1403.08"), D("1375.18"))
    credit, ret, fee = first.entries
    # SVWZ+ goes on in ?22 without its identifier (the DK's rule): the number is whole again.
    assert (credit.amount, credit.remittance, credit.debtor_name, credit.debtor_iban, credit.bank_code) == (
        D("21.00"), "Bestellung 302-1000013-1000013 Danke", "Beispiel, Anna", "DE02120300000000202051", "166")
    assert credit.booking_date == date(2026, 11, 27) and credit.where == "mt940_sparkasse.sta:5"
    assert (ret.amount, ret.returned, ret.return_reason, ret.end_to_end_id, ret.remittance, ret.debtor_name) == (
        D("-45.00"), True, "904", "LS-302-1000014", "302-1000014-1000014", "Rossi, Dario")
    assert (fee.amount, fee.returned, fee.remittance) == (D("-3.90"), False, "Entgelte 11/2026")
    assert second.statement_id == "STARTUMSE 00213/001" and [e.amount for e in second.entries] == [D("10.00")]


def test_mt940_in_latin1_with_swift_blocks_and_a_year_end_booking_date():
    text = ("{1:F01BANKDEFFAXXX0000000000}{2:O9401200261231BANKDEFFXXXX00000000002612311200N}{4:\r\n"
            ":20:940-2612\r\n:25:DE44500105175407324931\r\n:28C:1/1\r\n:60F:C261231EUR0,\r\n"
            ":61:2612310102C5,NTRFNONREF\r\n:86:166?20SVWZ+Überweisung Jürgen?32Jürgen Groß\r\n"
            ":62F:C270102EUR5,00\r\n-}")
    [s] = mt940.read("a.sta", text.encode("latin-1"))
    [e] = s.entries
    assert e.booking_date == date(2027, 1, 2) and e.amount == D("5.00") and e.debtor_name == "Jürgen Groß"


@pytest.mark.parametrize("old,new,where,message", [
    (":61:2611271127D45,00NDDT", ":61:2611271127D45.00NDDT", "mt940_sparkasse.sta:8:61", "not a statement line"),
    (":60F:C261126EUR1403,08", ":60F:C261126EUR1403,0X", "mt940_sparkasse.sta:4::60F:", "not a balance"),
    (":62F:C261127EUR1375,18", ":62F:C261127EUR1375,19", "mt940_sparkasse.sta:13:62F", "do not make"),
    (":25:50010517/5407324931\r\n:28C:00212/001", ":25:50010517/5407324931", "mt940_sparkasse.sta:3::28C:",
     "expected :28C:"),
    (":61:2611271127CR21,00", ":61:2613271127CR21,00", "mt940_sparkasse.sta:5:61 value date", "not a date"),
])
def test_a_broken_mt940_is_refused_naming_file_line_and_field(old, new, where, message):
    name, data = _broken(None, MT940, old, new)
    with pytest.raises(InputError) as exc:
        read_statement(name, data)
    assert exc.value.where == where and message in exc.value.message


# --- matching (pure) ----------------------------------------------------------------------------


def _payments(*specs) -> list[OpenPayment]:
    return [OpenPayment(i, refs if isinstance(refs, tuple) else (refs,), D(amount), "EUR", buyer)
            for i, (refs, amount, buyer) in enumerate(specs, 1)]


BOOK = _payments(("302-1234567-1234567", "49.98", "Anna Beispiel"), (("302-7654321-7654321", "RE2026-0001"), "100.00",
                 "Bernd Muster"), ("302-1111111-2222222", "20.00", "Claire Dupont"),
                 ("302-3333333-4444444", "30.00", "Dario Rossi"), ("10023", "17.50", "Elena García"))


@pytest.mark.parametrize("text,amount,name,outcome,applied,matched_by,reason", [
    ("Bestellung 302-1234567-1234567", "49.98", "", "paid", [(1, "49.98")], "reference", ""),
    ("30212345671234567", "49.98", "", "paid", [(1, "49.98")], "reference", ""),
    ("RE 2026 0001", "40.00", "", "partly_paid", [(2, "40.00")], "reference", ""),
    ("re2026/0001 danke", "100.00", "", "paid", [(2, "100.00")], "reference", ""),
    ("302-1234567-1234567", "50.00", "", "overpaid", [(1, "50.00")], "reference", "surplus"),
    ("302-1111111-2222222 + 302-3333333-4444444", "50.00", "", "split", [(3, "20.00"), (4, "30.00")], "reference", ""),
    ("302-1111111-2222222 + 302-3333333-4444444", "45.00", "", "ticket", [], "", "ambiguous"),
    ("302-123456-1234567", "49.98", "", "paid", [(1, "49.98")], "fuzzy_reference", ""),  # a digit missing
    ("302-1234567-1234557", "49.98", "", "paid", [(1, "49.98")], "fuzzy_reference", ""),  # a digit wrong
    ("302-123456-1234567", "40.00", "", "ticket", [], "", "unclear_reference"),  # a typo and not its amount
    ("Auftrag 10023", "17.50", "", "paid", [(5, "17.50")], "fuzzy_reference", ""),  # short: only with its amount
    ("10023 Berlin", "9.00", "", "ticket", [], "", "unclear_reference"),
    ("Danke!", "20.00", "DUPONT, CLAIRE", "paid", [(3, "20.00")], "amount_and_name", ""),
    ("Danke!", "20.00", "Jemand Anderes", "ticket", [], "", "unknown_reference"),
    ("Rechnung 4711", "77.77", "Unbekannt GmbH", "ticket", [], "", "unknown_reference"),
])
def test_each_credit_gets_one_defined_outcome(text, amount, name, outcome, applied, matched_by, reason):
    d = Matcher(BOOK).match(_entry(amount, text, name))
    assert (d.outcome, [(i, str(a)) for i, a in d.applied], d.matched_by, d.reason) == (
        outcome, applied, matched_by, reason)


def test_a_foreign_currency_is_never_matched():
    m = Matcher(BOOK)
    assert m.match(_entry("49.98", "302-1234567-1234567", ccy="USD")).reason == "foreign_currency"
    assert m.match(_entry("20.00", "Danke", "Claire Dupont", ccy="CHF")).reason == "foreign_currency"


def test_two_payments_of_the_same_amount_and_name_are_ambiguous():
    m = Matcher(_payments(("302-0000001-0000001", "20.00", "Claire Dupont"), ("302-0000002-0000002", "20.00",
                                                                             "Claire Dupont")))
    assert m.match(_entry("20.00", "Danke", "Claire Dupont")).reason == "ambiguous"


def test_partial_credits_accumulate_until_paid():
    m = Matcher(BOOK)
    outcomes = [m.match(_entry(a, "RE2026-0001")).outcome for a in ("30.00", "30.00", "40.00")]
    assert outcomes == ["partly_paid", "partly_paid", "paid"]
    assert m.match(_entry("10.00", "RE2026-0001")).reason == "unknown_reference"  # nothing open any more


def test_a_return_takes_back_what_was_received_with_a_ticket():
    received = Matcher(_payments(("302-1234567-1234567", "49.98", "Anna Beispiel")))
    d = received.match_return(_entry("-49.98", "302-1234567-1234567", returned=True, return_reason="AM04"))
    assert (d.outcome, d.applied, d.reason) == ("returned", ((1, D("-49.98")),), "returned_debit")
    again = received.match_return(_entry("-49.98", "302-1234567-1234567", returned=True))
    assert again.outcome == "ticket" and again.reason == "returned_debit"  # nothing left to take back


SEPARATORS = st.sampled_from(["-", " ", "/", ".", " - ", "_"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=14, max_size=14),
       st.dictionaries(st.integers(1, 16), SEPARATORS, max_size=4),  # a reference spans at most 5 groups
       st.text(alphabet="abc XYZ:,", max_size=15), st.text(alphabet="abc XYZ:,", max_size=15))
def test_an_order_number_is_found_whatever_its_separators(digits, seps, before, after):
    number = f"302-{''.join(map(str, digits[:7]))}-{''.join(map(str, digits[7:]))}"
    plain = number.replace("-", "")
    written = "".join(seps.get(i, "") + c for i, c in enumerate(plain))
    assert normalise(written) == normalise(number) == plain
    m = Matcher([OpenPayment(1, (number,), D("10.00"), "EUR", "X"),
                 OpenPayment(2, ("302-9999999-9999999",), D("10.00"), "EUR", "Y")])
    d = m.match(_entry("10.00", f"{before} {written} {after}"))
    assert d.applied == (((2 if number == "302-9999999-9999999" else 1), D("10.00")),)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 9000)), min_size=1, max_size=12))
def test_a_statement_never_applies_more_than_its_credits_nor_more_than_once(credits):
    payments = _payments(*[(f"302-000000{i}-000000{i}", "45.00", f"Buyer {i}") for i in range(4)])
    m = Matcher(payments)
    applied: dict[int, Decimal] = {}
    for i, cents in credits:
        amount = D(cents) / 100
        d = m.match(_entry(str(amount), f"302-000000{i}-000000{i}"))
        assert sum((a for _, a in d.applied), D(0)) in (D(0), amount)
        for pid, a in d.applied:
            applied[pid] = applied.get(pid, D(0)) + a
    for pid, total in applied.items():  # the credit that filled it was the last one it took
        assert total - D("45.00") < D("90.00")


# --- importing through the command line ---------------------------------------------------------


def _book_for_camt(s):
    """The orders and payments the composed CAMT files pay (tests/data/bank/README.md)."""
    p = {}
    for key, number, amount, buyer, extra in [
        ("A", "302-1000001-1000001", "49.98", "Anna Beispiel", {}),
        ("B", "302-1000002-1000002", "100.00", "Bernd Muster", {}),
        ("C", "302-1000003-1000003", "25.00", "Claire Dupont", {}),
        ("D", "302-1000004-1000004", "19.99", "Dario Rossi", {}),
        ("E", "302-1000005-1000005", "30.01", "Dario Rossi", {}),
        ("F", "302-1000006-1000006", "15.50", "Elena García", {"reference": "302-1000006-1000006 RE2026-0006",
                                                              "method": "invoice"}),
        ("G", "302-1000007-1000007", "22.00", "Frank Weber", {}),
        ("H", "302-1000008-1000008", "33.33", "Greta Schmidt", {}),
        ("I", "302-1000009-1000009", "12.00", "Hugo Martin", {}),
        ("J", "302-1000010-1000010", "12.00", "Jane Doe", {}),
        ("K", "302-1000011-1000011", "45.00", "Bernd Muster", {"method": "direct_debit", "paid": "45.00"}),
        ("L", "302-1000012-1000012", "60.00", "Anna Beispiel", {}),
        ("N", "302-1000013-1000013", "21.00", "Anna Beispiel", {}),
        ("O", "302-1000014-1000014", "45.00", "Dario Rossi", {"method": "direct_debit", "paid": "45.00"}),
    ]:
        p[key] = factories.payment(s, amount=amount, external_id=number, buyer=buyer, **extra).id
    s.commit()
    return p


def _state(ws) -> dict:
    with ws.app().session() as s:
        return {
            "payments": sorted((p.order.external_id, p.status, f"{p.amount_paid:.2f}") for p in s.scalars(select(Payment))),
            "statements": s.scalar(select(func.count()).select_from(BankStatement)),
            "credits": s.scalar(select(func.count()).select_from(BankCredit)),
            "tickets": s.scalar(select(func.count()).select_from(Ticket)),
        }


def _status(ws) -> dict[str, tuple[str, str]]:
    return {order: (status, paid) for order, status, paid in _state(ws)["payments"]}


def test_import_of_a_camt_statement_pays_orders_and_gives_the_rest_a_ticket(bare_workspace):
    ws = bare_workspace
    with ws.app().session() as s:
        _book_for_camt(s)
    out = ws.ok("payments", "import", str(CAMT08))
    assert "statement 20261125-DE44-1: 10 credits, matched 7, partly 1, tickets 4; 1 returned" in out
    st = _status(ws)
    assert st["302-1000001-1000001"] == ("paid", "49.98")  # the number without separators
    assert st["302-1000002-1000002"] == ("partly_paid", "40.00")
    assert st["302-1000003-1000003"] == ("paid", "30.00")  # over-paid: a ticket for the 5.00
    assert st["302-1000004-1000004"] == ("paid", "19.99") and st["302-1000005-1000005"] == ("paid", "30.01")
    assert st["302-1000006-1000006"] == ("paid", "15.50")  # invoice number, structured reference, in a batch
    assert st["302-1000007-1000007"] == ("paid", "22.00")
    assert st["302-1000008-1000008"] == ("paid", "33.33")  # amount and "SCHMIDT, GRETA"
    assert st["302-1000009-1000009"] == ("paid", "12.00")  # a digit missing, the exact amount
    assert st["302-1000010-1000010"] == ("expected", "0.00")  # named in USD: a ticket, no match
    assert st["302-1000011-1000011"] == ("expected", "0.00")  # its direct debit came back
    tickets = json.loads(ws.ok("tickets", "list", "--kind", "payment", "--json"))
    assert sorted(t["reasons"] for t in tickets) == ["foreign_currency", "returned_debit", "surplus",
                                                     "unknown_reference"]
    unmatched = json.loads(ws.ok("payments", "unmatched", "--json"))
    assert sorted((u["amount"], u["currency"]) for u in unmatched) == [("12.00", "USD"), ("77.77", "EUR")]
    assert all(u["ticket"].startswith("T") for u in unmatched)

    # The same file again, and the same statement in another file, change nothing.
    before = _state(ws)
    again = ws.ok("payments", "import", str(CAMT08))
    assert "statement 20261125-DE44-1 was imported before; nothing changed" in again
    copy = ws.path / "kontoauszug-kopie.xml"
    copy.write_bytes(CAMT08.read_bytes())
    ws.ok("payments", "import", str(copy))
    assert _state(ws) == before

    # The next day's statement (camt.053.001.02) pays the rest of B.
    data = json.loads(ws.ok("payments", "import", str(CAMT02), "--json"))
    assert (data["credits"], data["matched"], data["tickets"]) == (2, 2, 0)
    assert _status(ws)["302-1000002-1000002"] == ("paid", "100.00")
    shown = json.loads(ws.ok("payments", "show", "302-1000002-1000002", "--json"))
    [pay] = shown["payments"]
    assert [(r["applied"], r["statement"], r["matched_by"]) for r in pay["receipts"]] == [
        ("40.00", "20261125-DE44-1", "reference"), ("60.00", "20261126-DE44-1", "reference")]
    listed = ws.ok("payments", "list", "--status", "partly_paid", "--format", "csv")
    assert listed.splitlines()[0].startswith("order,method,status") and len(listed.splitlines()) == 1


def test_an_mt940_return_sends_a_paid_payment_back_to_expected_with_a_ticket(bare_workspace):
    ws = bare_workspace
    with ws.app().session() as s:
        _book_for_camt(s)
    r = json.loads(ws.ok("payments", "import", str(MT940), "--json"))
    assert (r["statements"], r["credits"], r["matched"], r["returned"], r["tickets"], r["debits_ignored"]) == (
        ["STARTUMSE 00212/001", "STARTUMSE 00213/001"], 2, 1, 1, 2, 1)
    st = _status(ws)
    assert st["302-1000013-1000013"] == ("paid", "21.00") and st["302-1000014-1000014"] == ("expected", "0.00")
    with ws.app().session() as s:
        ticket = s.scalar(select(Ticket).where(Ticket.reasons == "returned_debit"))
        assert ticket.order.external_id == "302-1000014-1000014" and "904" in ticket.text


def test_a_dry_run_and_a_broken_file_change_nothing(bare_workspace):
    ws = bare_workspace
    with ws.app().session() as s:
        _book_for_camt(s)
    before = _state(ws)
    out = ws.ok("payments", "import", str(CAMT08), "--dry-run")
    assert out.startswith("payments import: DRY RUN") and "matched 7" in out
    assert _state(ws) == before
    broken = ws.path / "broken.sta"
    broken.write_bytes(MT940.read_bytes().replace(b":61:2611281128CR10,00", b":61:2611281128CR1O,00"))
    r = ws.run("payments", "import", str(broken))
    assert r.code == 65 and "broken.sta:19:61" in r.err and "not a statement line" in r.err
    assert _state(ws) == before
