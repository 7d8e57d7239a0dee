"""Settlement reports (Reports 2021-06-30, GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2): our adapter
with the real sp_api client against the SP-API stand-in, and the stand-in's flat file as
reference/amazon/README.md §8 describes it."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from connectors.amazon.reports import AmazonSettlements, SettlementReportRef
from standins.amazon import AmazonStandin
from tests.integration.test_amazon_shipments import make_api, make_standin, open_orders

HEADER = ("settlement-id\tsettlement-start-date\tsettlement-end-date\tdeposit-date\ttotal-amount\tcurrency\t"
          "transaction-type\torder-id\tmerchant-order-id\tadjustment-id\tshipment-id\tmarketplace-name\t"
          "amount-type\tamount-description\tamount\tfulfillment-id\tposted-date\tposted-date-time\t"
          "order-item-code\tmerchant-order-item-id\tmerchant-adjustment-item-id\tsku\tquantity-purchased\t"
          "promotion-id")
LONG_AGO = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def standin():
    s = make_standin()
    yield s
    s.stop()


@pytest.fixture
def settlements(standin):
    adapter = AmazonSettlements(make_api(standin))
    yield adapter
    adapter.close()


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


def amount(text: str) -> Decimal:
    # Both separators occur in DE files (README §8); no file of ours has thousands separators.
    return Decimal(text.replace(",", "."))


def ship_some(s: AmazonStandin, n: int) -> list[str]:
    """Ship ``n`` open merchant orders now; returns their ids."""
    ids = [o["orderId"] for o in open_orders(s)[:n]]
    for oid in ids:
        s.change_order(oid, status="SHIPPED")
    return ids


def two_settlements(s: AmazonStandin, **second) -> tuple[dict, dict]:
    ship_some(s, 5)
    s.advance(dt.timedelta(days=1))
    first = s.close_settlement()
    ship_some(s, 3)
    s.advance(dt.timedelta(days=14))
    return first, s.close_settlement(**second)


def test_two_closed_settlements_are_listed_page_by_page_and_downloaded(standin, settlements):
    first, second = two_settlements(standin, gzip=True)
    one_a_page = AmazonSettlements(settlements.api, page_size=1)
    refs = one_a_page.list_reports(LONG_AGO)
    assert [r.report_id for r in refs] == second["reportIds"] + first["reportIds"]  # newest first
    assert standin.stats()["calls"]["getReports"] == 2  # one report a page, the second page has no token
    assert refs[0].data_start == refs[1].data_end and refs[0].created > refs[1].created
    plain, gzipped = settlements.download(refs[1]), settlements.download(refs[0])
    assert plain.decode() == standin.settlement_text(first["reportIds"][0])
    assert gzipped.decode() == standin.settlement_text(second["reportIds"][0])
    for raw, closed in ((plain, first), (gzipped, second)):
        text = raw.decode("utf-8")
        assert text.splitlines()[0] == HEADER and len(HEADER.split("\t")) == 24
        summary, *lines = rows(text)
        assert summary["settlement-id"] == closed["settlementId"] and summary["currency"] == "EUR"
        assert not summary["transaction-type"] and lines
        assert amount(summary["total-amount"]) == sum(amount(r["amount"]) for r in lines)
        assert amount(summary["total-amount"]) == Decimal(closed["totalAmount"])


def test_since_leaves_out_older_reports(standin, settlements):
    first, second = two_settlements(standin)
    refs = settlements.list_reports(standin.now() - dt.timedelta(days=2))
    assert [r.report_id for r in refs] == second["reportIds"]


def test_each_shipped_item_is_charged_with_its_fees_and_the_reserve_carries_over(standin):
    first, second = two_settlements(standin)
    one, two = (rows(standin.settlement_text(c["reportIds"][0]))[1:] for c in (first, second))
    orders = [r for r in one if r["transaction-type"] == "Order"]
    kinds = {(r["amount-type"], r["amount-description"]) for r in orders}
    assert {("ItemPrice", "Principal"), ("ItemPrice", "Tax"), ("ItemFees", "Commission")} <= kinds
    for r in orders:
        assert r["fulfillment-id"] in ("MFN", "AFN") and r["order-item-code"]
        if r["amount-description"] == "FBAPerUnitFulfillmentFee":
            assert r["fulfillment-id"] == "AFN" and amount(r["amount"]) < 0
        if r["amount-description"] == "Commission":
            assert amount(r["amount"]) < 0
    reserve = {r["amount-description"]: amount(r["amount"]) for r in one if "Reserve" in r["amount-description"]}
    released = next(amount(r["amount"]) for r in two if r["amount-description"] == "Previous Reserve Amount Balance")
    assert released == -reserve["Current Reserve Amount"] == Decimal(first["reserve"])
    assert any(r["amount-description"] == "Subscription Fee" for r in one)


def test_a_cancellation_after_shipping_is_refunded_in_the_next_settlement(standin):
    [oid] = ship_some(standin, 1)
    standin.advance(dt.timedelta(hours=1))
    standin.close_settlement()
    standin.change_order(oid, status="CANCELLED")
    standin.advance(dt.timedelta(hours=1))
    closed = standin.close_settlement()
    refunds = [r for r in rows(standin.settlement_text(closed["reportIds"][0]))[1:]
               if r["transaction-type"] == "Refund" and r["order-id"] == oid]
    kinds = {r["amount-description"]: amount(r["amount"]) for r in refunds}
    assert kinds["Principal"] < 0 and kinds["Commission"] > 0 and kinds["RefundCommission"] < 0
    assert all(r["adjustment-id"].startswith("amzn1.adj.") for r in refunds)


def test_de_and_en_files_differ_only_in_dates_and_decimal_separators(standin):
    ship_some(standin, 4)
    standin.advance(dt.timedelta(days=1))
    de = standin.close_settlement(locale="DE")
    # A second stand-in with the same seed closes the same settlement in the EN form.
    twin = make_standin()
    try:
        ship_some(twin, 4)
        twin.advance(dt.timedelta(days=1))
        en = twin.close_settlement(locale="EN")
        de_rows = rows(standin.settlement_text(de["reportIds"][0]))
        en_rows = rows(twin.settlement_text(en["reportIds"][0]))
    finally:
        twin.stop()
    assert de["settlementId"] == en["settlementId"] and len(de_rows) == len(en_rows)
    assert de_rows[0]["settlement-start-date"].endswith(" UTC") and de_rows[0]["settlement-start-date"][2] == "."
    assert en_rows[0]["settlement-start-date"][4] == "-"
    assert "," in de_rows[0]["total-amount"] and "." in en_rows[0]["total-amount"]
    assert de_rows[1]["posted-date"][2] == "." and en_rows[1]["posted-date"][4] == "-"
    assert dt.datetime.strptime(de_rows[1]["posted-date-time"], "%d.%m.%Y %H:%M:%S UTC") == \
        dt.datetime.strptime(en_rows[1]["posted-date-time"], "%Y-%m-%d %H:%M:%S UTC")
    same = ("transaction-type", "order-id", "amount-type", "amount-description", "marketplace-name", "sku")
    for d, e in zip(de_rows, en_rows):
        assert amount(d["amount"] or "0") == Decimal(e["amount"] or "0")
        assert all(d[k] == e[k] for k in same)


def test_a_de_file_may_hold_both_decimal_separators(standin):
    ship_some(standin, 2)
    standin.advance(dt.timedelta(hours=1))
    closed = standin.close_settlement(mixed_decimals=True)
    summary, *lines = rows(standin.settlement_text(closed["reportIds"][0]))
    seps = {("," if "," in r["amount"] else ".") for r in lines}
    assert seps == {",", "."}
    assert amount(summary["total-amount"]) == sum(amount(r["amount"]) for r in lines)


def test_a_duplicated_settlement_comes_in_two_reports_with_the_same_settlement_id(standin, settlements):
    ship_some(standin, 2)
    closed = standin.close_settlement(duplicate=True)
    refs = settlements.list_reports(LONG_AGO)
    assert sorted(r.report_id for r in refs) == sorted(closed["reportIds"]) and len(refs) == 2
    ids = {rows(settlements.download(r).decode())[0]["settlement-id"] for r in refs}
    assert ids == {closed["settlementId"]}


def test_a_burst_of_calls_keeps_to_the_rate_and_amazon_never_says_429():
    # rate_scale 50: getReportDocument refills at 0.835/s after its burst of 15.
    s = make_standin(rate_scale=50.0)
    adapter = AmazonSettlements(make_api(s))
    try:
        ship_some(s, 1)
        closed = s.close_settlement()
        [ref] = adapter.list_reports(LONG_AGO)
        for _ in range(18):
            adapter.download(ref)
        assert s.stats()["throttled"] == 0 and adapter.api.stats.throttled == 0
        assert s.stats()["calls"]["getReportDocument"] == 18
        assert adapter.api.rate_waited() > 0  # our bucket, not Amazon's 429, made the last ones wait
        assert ref.report_id == closed["reportIds"][0]
    finally:
        adapter.close()
        s.stop()


def test_an_unknown_document_is_refused_by_name(settlements, standin):
    from caturactl.core.errors import RejectedError
    ref = SettlementReportRef("1", "amzn1.spdoc.1.4.eu.nope", standin.now(), None, None)
    with pytest.raises(RejectedError, match="nope"):
        settlements.download(ref)


def test_the_stand_in_refuses_a_next_token_sent_with_other_parameters(standin, settlements):
    from sp_api.base.exceptions import SellingApiBadRequestException
    ship_some(standin, 1)
    standin.close_settlement(duplicate=True)
    client = settlements._client()
    first = client.get_reports(reportTypes=["GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"], pageSize=1)
    assert first.next_token
    with pytest.raises(SellingApiBadRequestException):
        client.get_reports(nextToken=first.next_token, pageSize=1)  # "nextToken ... as the only parameter"
    assert len(client.get_reports(nextToken=first.next_token).payload["reports"]) == 1
