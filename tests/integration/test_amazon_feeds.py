"""Invoice upload to Amazon (Feeds 2021-06-30, UPLOAD_VAT_INVOICE): our adapter with the real
sp_api client against the SP-API stand-in, our createFeed bucket that says "later" instead of
sleeping, and the stand-in's own rules for invoices and presigned URLs."""

from __future__ import annotations

import datetime as dt
import io
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from sp_api.api import Feeds

from caturactl.core.errors import InputError, RefusedError, RejectedError, RemoteError, ThrottledError
from connectors.amazon.client import CUSHION_SECONDS, SpApi, TokenBucket
from connectors.amazon.feeds import AmazonInvoices
from standins.amazon import AmazonStandin, Fault
from tests.integration.test_amazon_client import Clock
from tests.integration.test_amazon_shipments import access_token, make_api, make_standin, open_orders, shipped_order

PDF_BYTES = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
TWO_MINUTES = dt.timedelta(minutes=2)  # the stand-in's queue + processing time


@pytest.fixture
def standin():
    s = make_standin()
    yield s
    s.stop()


@pytest.fixture
def api(standin):
    return make_api(standin)


@pytest.fixture
def invoices(api):
    uploader = AmazonInvoices(api)
    yield uploader
    uploader.close()


def marketplace(order: dict) -> str:
    return order["salesChannel"]["marketplaceId"]


def metadata(order: dict, number: str = "RE-2026-00042", **over: str) -> dict[str, str]:
    """Metadata that matches Amazon's own figures for the order."""
    tax = next(b["subtotal"]["amount"] for b in order["proceeds"]["breakdowns"] if b["type"] == "TAX")
    values = {"InvoiceNumber": number, "DocumentType": "Invoice",
              "TotalAmount": order["proceeds"]["grandTotal"]["amount"], "TotalVATAmount": tax}
    return {**values, **over}


def report(text: str) -> dict[str, Any]:
    """The processing report's summary counts and its results (code, description)."""
    root = ET.fromstring(text.encode())
    summary = {e.tag: int(e.text) for e in root.find(".//ProcessingSummary")}
    results = [(r.findtext("ResultMessageCode"), r.findtext("ResultDescription")) for r in root.iter("Result")]
    return {**summary, "results": results}


def calls(s: AmazonStandin) -> dict[str, int]:
    return s.stats()["calls"]


# --------------------------------------------------------------------------- through our adapter
def test_an_uploaded_invoice_is_done_once_amazon_processed_it_and_amazon_keeps_the_pdf(standin, api, invoices):
    order = shipped_order(standin)
    oid = order["orderId"]
    meta = metadata(order)
    feed_id = invoices.upload_invoice(oid, marketplace(order), PDF_BYTES, meta)
    assert feed_id.isdigit()
    assert invoices.feed_status(feed_id) == ("IN_QUEUE", "")
    standin.advance(dt.timedelta(seconds=40))
    assert invoices.feed_status(feed_id) == ("IN_PROGRESS", "")
    standin.advance(TWO_MINUTES)
    status, text = invoices.feed_status(feed_id)
    assert status == "DONE"
    assert report(text) == {"MessagesProcessed": 1, "MessagesSuccessful": 1, "MessagesWithError": 0,
                            "MessagesWithWarning": 0, "results": []}
    [kept] = standin.invoices(oid)
    assert kept["pdf"] == PDF_BYTES and kept["pdf_length"] == len(PDF_BYTES)
    assert (kept["invoice_number"], kept["document_type"], kept["total_amount"], kept["total_vat_amount"]) == (
        "RE-2026-00042", "Invoice", meta["TotalAmount"], meta["TotalVATAmount"])
    assert (kept["feed_id"], kept["status"], kept["marketplace_id"]) == (feed_id, "ACCEPTED", marketplace(order))
    # one document, one upload, one feed; three looks at the feed and one report
    c = calls(standin)
    assert (c["createFeedDocument"], c["createFeed"], c["getFeed"], c["getFeedDocument"]) == (1, 1, 3, 1)
    assert api.stats.calls == 6 and api.stats.retries == 0 and standin.stats()["throttled"] == 0
    # the admin view shows the PDF by length and hash, not by content
    shown = httpx.get(f"{standin.url}/_standin/invoices", params={"orderId": oid}).json()["invoices"]
    assert [(i["feed_id"], i["pdf_length"], "pdf" in i) for i in shown] == [(feed_id, len(PDF_BYTES), False)]


def test_a_total_that_is_not_amazons_ends_fatal_and_the_report_names_the_mismatch(standin, invoices):
    order = shipped_order(standin)
    feed_id = invoices.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES,
                                      metadata(order, TotalAmount="1.00"))
    standin.advance(TWO_MINUTES)
    status, text = invoices.feed_status(feed_id)
    assert status == "FATAL"
    got = report(text)
    assert got["MessagesWithError"] == 1 and got["MessagesSuccessful"] == 0
    [(code, description)] = got["results"]
    assert code == "TotalAmountMismatch"
    assert "1.00" in description and order["proceeds"]["grandTotal"]["amount"] in description
    assert standin.invoices(order["orderId"])[0]["status"] == "REJECTED"


def test_the_same_invoice_number_twice_is_reported_as_a_duplicate_and_the_first_stays(standin, invoices):
    order = shipped_order(standin)
    first = invoices.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES, metadata(order))
    second = invoices.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES, metadata(order))
    standin.advance(TWO_MINUTES)
    # asked in the other order: the older feed still counts as the first
    status, text = invoices.feed_status(second)
    assert status == "DONE"
    [(code, description)] = report(text)["results"]
    assert code == "DuplicateInvoiceNumber" and first in description
    assert invoices.feed_status(first)[0] == "DONE"
    assert [i["status"] for i in standin.invoices(order["orderId"])] == ["ACCEPTED", "DUPLICATE"]


def test_an_invoice_for_an_order_not_yet_shipped_is_rejected(standin, invoices):
    order = open_orders(standin)[0]
    feed_id = invoices.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES, metadata(order))
    standin.advance(TWO_MINUTES)
    status, text = invoices.feed_status(feed_id)
    assert status == "FATAL" and report(text)["results"][0][0] == "OrderNotShipped"


def test_a_credit_note_for_part_of_the_order_is_accepted(standin, invoices):
    order = shipped_order(standin)
    feed_id = invoices.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES,
                                      {"InvoiceNumber": "GS-2026-0001", "DocumentType": "CreditNote",
                                       "TotalAmount": "1.00", "TotalVATAmount": "0.16"})
    standin.advance(TWO_MINUTES)
    assert invoices.feed_status(feed_id)[0] == "DONE"


BAD_METADATA = {
    # name: (metadata change, key named in the error)
    "umlaut in the number": ({"InvoiceNumber": "RÄ-1"}, "InvoiceNumber"),
    "quotation marks": ({"InvoiceNumber": '"RE-1"'}, "InvoiceNumber"),
    "a point in the number": ({"InvoiceNumber": "RE.1"}, "InvoiceNumber"),
    "decimal comma": ({"TotalAmount": "119,00"}, "TotalAmount"),
    "three decimals": ({"TotalVATAmount": "19.001"}, "TotalVATAmount"),
    "unknown document type": ({"DocumentType": "Rechnung"}, "DocumentType"),
    "empty invoice number": ({"InvoiceNumber": ""}, "InvoiceNumber"),
    "unknown key": ({"ShippingId": "DTMBGWY2T"}, "ShippingId"),
    "another order's id": ({"OrderId": "302-0000000-0000000"}, "OrderId"),
}


@pytest.mark.parametrize("case", list(BAD_METADATA))
def test_metadata_amazon_would_refuse_is_an_input_error_before_any_call(standin, api, invoices, case):
    change, key = BAD_METADATA[case]
    order = shipped_order(standin)
    with pytest.raises(InputError) as exc:
        invoices.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES, metadata(order, **change))
    assert exc.value.where.endswith(key) and order["orderId"] in exc.value.where
    assert sum(calls(standin).values()) == 0 and api.stats.calls == 0


def test_a_file_that_is_not_a_pdf_is_refused_before_any_call(standin, invoices):
    order = shipped_order(standin)
    with pytest.raises(InputError) as exc:
        invoices.upload_invoice(order["orderId"], marketplace(order), b"<html>Rechnung</html>", metadata(order))
    assert "not a PDF" in str(exc.value)
    assert sum(calls(standin).values()) == 0 and not standin.invoices()


def test_an_empty_createfeed_bucket_says_later_at_once_without_calling(standin):
    # The last run spent createFeed's burst a moment ago; at Amazon's own rate (rate_scale 1) the
    # next call is two minutes away, and the job must not sleep through them.
    api = SpApi(make_api(standin, rate_scale=1.0).cfg, budgets={"createFeed": (0.0, datetime.now(timezone.utc))})
    uploader = AmazonInvoices(api, max_wait_seconds=10)
    order = shipped_order(standin)
    with pytest.raises(ThrottledError) as exc:
        uploader.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES, metadata(order))
    assert api.rate_waited() == 0 and api.stats.waited_seconds == 0  # said later without sleeping
    assert "createFeed allows one call every ~2 minutes" in str(exc.value) and "later" in str(exc.value)
    assert calls(standin)["createFeedDocument"] == 0 and calls(standin)["createFeed"] == 0
    assert not standin.invoices()


def test_the_sixteenth_upload_in_a_row_waits_for_a_later_run():
    """createFeed's burst is 15; at Amazon's rate on both sides the 16th goes to the outbox."""
    s = make_standin(rate_scale=1.0)
    try:
        api = make_api(s)
        uploader = AmazonInvoices(api)
        orders = [s.change_order(o["orderId"], status="SHIPPED") for o in open_orders(s)[:16]]
        for order in orders[:15]:
            uploader.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES, metadata(order))
        # The burst goes out at once: at most the 50 ms cushion for a token, when 15 calls come
        # faster than createFeedDocument's bucket (0.5/s) refills that much.
        burst = api.rate_waited()
        assert burst <= 2 * CUSHION_SECONDS
        with pytest.raises(ThrottledError):
            uploader.upload_invoice(orders[15]["orderId"], marketplace(orders[15]), PDF_BYTES, metadata(orders[15]))
        assert api.rate_waited() == burst and api.stats.waited_seconds == 0  # the 16th did not sleep
        assert calls(s)["createFeed"] == 15 and calls(s)["createFeedDocument"] == 15
        assert s.stats()["throttled"] == 0 and api.stats.throttled == 0
        uploader.close()
    finally:
        s.stop()


def test_amazons_429_on_createfeed_is_not_waited_out(standin):
    api = make_api(standin, rate_scale=1.0)  # after a 429 our bucket is empty: 2 minutes at this rate
    uploader = AmazonInvoices(api)
    order = shipped_order(standin)
    standin.add_fault(Fault(operation="createFeed", kind="throttle"))
    with pytest.raises(ThrottledError):
        uploader.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES, metadata(order))
    # one jittered retry backoff, and no sleep for our bucket's two minutes
    assert api.rate_waited() == 0 and api.stats.waited_seconds <= api.cfg.backoff_seconds
    assert api.stats.throttled == 1 and calls(standin)["createFeed"] == 1
    uploader.close()


def test_a_503_on_createfeed_is_not_repeated_because_amazon_may_have_queued_the_feed(standin, api, invoices):
    # A server error can come after the work was done: a second createFeed could queue the
    # invoice twice. The outbox keeps the upload in doubt and asks getFeeds before sending again.
    order = shipped_order(standin)
    standin.add_fault(Fault(operation="createFeed", kind="status", status=503))
    with pytest.raises(RemoteError, match="may have acted on the request") as exc:
        invoices.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES, metadata(order))
    assert not isinstance(exc.value, (RefusedError, RejectedError, ThrottledError))
    assert "503" in str(exc.value)
    assert api.stats.retries == 0 and standin.stats()["faults"] == 1
    assert calls(standin)["createFeed"] == 1 and calls(standin)["createFeedDocument"] == 1
    assert not standin.invoices()


def test_the_status_of_a_feed_amazon_does_not_know_is_rejected(invoices):
    with pytest.raises(RejectedError) as exc:
        invoices.feed_status("50099999999")
    assert "50099999999" in str(exc.value)


def _shipped_elsewhere(s: AmazonStandin, order: dict) -> dict:
    """Another order, of another marketplace than ``order``'s, shipped just now."""
    other = next(o for o in open_orders(s) if marketplace(o) != marketplace(order))
    return s.change_order(other["orderId"], status="SHIPPED")


def test_uploads_since_lists_the_invoice_feeds_created_at_or_after_the_time_and_none_before(standin, invoices):
    order = shipped_order(standin)
    other = _shipped_elsewhere(standin, order)
    before = invoices.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES, metadata(order, "RE-1"))
    standin.advance(dt.timedelta(minutes=10))
    t = standin.now()
    at_t = invoices.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES, metadata(order, "RE-2"))
    standin.advance(dt.timedelta(minutes=1))
    after = invoices.upload_invoice(other["orderId"], marketplace(other), PDF_BYTES, metadata(other, "RE-3"))
    standin.advance(TWO_MINUTES)  # processed feeds are listed as well as queued ones
    assert sorted(invoices.uploads_since(t)) == [(at_t, t), (after, t + dt.timedelta(minutes=1))]
    assert {f for f, _ in invoices.uploads_since(t - dt.timedelta(hours=1))} == {before, at_t, after}
    assert invoices.uploads_since(t + dt.timedelta(minutes=2)) == []
    assert calls(standin)["getFeeds"] == 3 and standin.stats()["throttled"] == 0


def test_uploads_since_follows_next_token_across_pages(standin, api):
    uploader = AmazonInvoices(api, feeds_page_size=2)
    orders = [standin.change_order(o["orderId"], status="SHIPPED") for o in open_orders(standin)[:5]]
    t = standin.now()
    ids = []
    for i, order in enumerate(orders):
        ids.append(uploader.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES,
                                           metadata(order, f"RE-{i}")))
        standin.advance(dt.timedelta(seconds=20))
    found = uploader.uploads_since(t)
    assert sorted(f for f, _ in found) == sorted(ids) and len(found) == 5
    assert calls(standin)["getFeeds"] == 3  # 2 + 2 + 1
    uploader.close()


def test_uploads_since_says_later_when_the_getfeeds_bucket_is_empty(standin):
    # getFeeds refills one call every ~45 s at Amazon's rate: the job must not sleep through it.
    api = SpApi(make_api(standin, rate_scale=1.0).cfg, budgets={"getFeeds": (0.0, datetime.now(timezone.utc))})
    uploader = AmazonInvoices(api, max_wait_seconds=10)
    with pytest.raises(ThrottledError) as exc:
        uploader.uploads_since(standin.now() - dt.timedelta(hours=1))
    assert api.rate_waited() == 0 and api.stats.waited_seconds == 0  # said later without sleeping
    assert "getFeeds allows one call every ~45 s" in str(exc.value)
    assert calls(standin)["getFeeds"] == 0
    uploader.close()


def test_uploads_since_a_time_after_amazons_now_is_rejected(standin, invoices):
    # createdSince after createdUntil (which defaults to now) is a 400 at Amazon
    with pytest.raises(RejectedError) as exc:
        invoices.uploads_since(standin.now() + dt.timedelta(days=1))
    assert "list of invoice feeds" in str(exc.value) and "createdSince" in str(exc.value)
    assert calls(standin)["getFeeds"] == 1


def test_the_bucket_tells_the_wait_without_spending_a_token():
    clock = Clock()
    bucket = TokenBucket(0.0083, 15, clock=clock, sleep=clock.sleep)
    assert bucket.wait_seconds() == 0.0
    for _ in range(15):
        bucket.acquire()
    waits = [bucket.wait_seconds(), bucket.wait_seconds()]
    assert waits[0] == waits[1] and 115 < waits[0] < 125  # asking twice spends nothing
    clock.now += 60
    assert 55 < bucket.wait_seconds() < 65


# --------------------------------------------------------------------------- the stand-in's rules
def _raw_feed(s: AmazonStandin, content: bytes, options: dict[str, str], marketplace_ids: list[str],
              content_type: str = "application/pdf") -> str:
    """Through the library alone (its own create-and-upload helper), past our adapter's checks."""
    client = make_api(s).client(Feeds, marketplace_ids[0])
    doc = client.create_feed_document(io.BytesIO(content), content_type)
    feed = client.create_feed("UPLOAD_VAT_INVOICE", doc.payload["feedDocumentId"], marketplaceIds=marketplace_ids,
                              feedOptions=options)
    return feed.payload["feedId"]


def _options(order: dict, **over: str | None) -> dict[str, str]:
    values = {f"metadata:{k}": v for k, v in metadata(order).items()}
    values["metadata:OrderId"] = order["orderId"]
    for key, value in over.items():
        if value is None:
            values.pop(f"metadata:{key}", None)
        else:
            values[f"metadata:{key}"] = value
    return values


FATAL_CASES = {
    # name: (build (content, options, marketplace ids) from the order, result message code)
    "not a PDF": (lambda o: (b"hello", _options(o), [marketplace(o)]), "InvalidDocument"),
    "two marketplaces": (lambda o: (PDF_BYTES, _options(o), [marketplace(o), "A1F83G8C2ARO7P"]),
                         "MarketplaceIDInputError"),
    "a marketplace without the feed": (lambda o: (PDF_BYTES, _options(o), ["AMEN7PMS3EDWL"]),
                                       "MarketplaceIDInputError"),
    "the order's other marketplace": (lambda o: (PDF_BYTES, _options(o), [
        "A1F83G8C2ARO7P"]), "OrderMarketplaceMismatch"),
    "no DocumentType": (lambda o: (PDF_BYTES, _options(o, DocumentType=None), [marketplace(o)]), "MissingMetadata"),
    "bad characters": (lambda o: (PDF_BYTES, _options(o, InvoiceNumber="RE\"1"), [marketplace(o)]),
                       "InvalidMetadataValue"),
    "unknown option": (lambda o: (PDF_BYTES, {**_options(o), "metadata:Colour": "blue"}, [marketplace(o)]),
                       "InvalidFeedOption"),
    "ShippingId": (lambda o: (PDF_BYTES, _options(o, ShippingId="DTMBGWY2T"), [marketplace(o)]),
                   "ShippingIdNotSupported"),
    "unknown order": (lambda o: (PDF_BYTES, _options(o, OrderId="302-0000000-0000000"), [marketplace(o)]),
                      "OrderNotFound"),
    "VAT not Amazon's": (lambda o: (PDF_BYTES, _options(o, TotalVATAmount="0.01"), [marketplace(o)]),
                         "TotalVATAmountMismatch"),
}


@pytest.mark.parametrize("case", list(FATAL_CASES))
def test_the_standin_ends_an_invoice_feed_fatal_for_what_option_3_rules_out(standin, invoices, case):
    build, code = FATAL_CASES[case]
    order = shipped_order(standin)
    feed_id = _raw_feed(standin, *build(order))
    standin.advance(TWO_MINUTES)
    status, text = invoices.feed_status(feed_id)
    assert status == "FATAL", text
    assert code in [c for c, _ in report(text)["results"]], text
    assert standin.invoices()[0]["status"] == "REJECTED"


def _token(s: AmazonStandin) -> dict[str, str]:
    return {"x-amz-access-token": access_token(s)}


def test_the_presigned_url_takes_only_the_content_type_it_was_signed_for(standin):
    r = httpx.post(f"{standin.url}/feeds/2021-06-30/documents", json={"contentType": "application/pdf"},
                   headers=_token(standin))
    assert r.status_code == 201 and r.headers["x-amzn-RateLimit-Limit"]
    url = r.json()["url"]
    # no SP-API token on the presigned URL, as on S3
    wrong = httpx.put(url, content=PDF_BYTES, headers={"Content-Type": "text/plain"})
    assert wrong.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in wrong.text
    assert "application/pdf" in wrong.text
    forged = httpx.put(url.replace("sig=", "sig=x"), content=PDF_BYTES, headers={"Content-Type": "application/pdf"})
    assert forged.status_code == 403
    ok = httpx.put(url, content=PDF_BYTES, headers={"Content-Type": "application/pdf"})
    assert ok.status_code == 200 and ok.headers["ETag"]
    doc = standin.marketplace.document(r.json()["feedDocumentId"])
    assert doc.content == PDF_BYTES
    # uploads are S3's part, not SP-API calls
    assert calls(standin)["createFeedDocument"] == 1 and sum(calls(standin).values()) == 2  # + the token


CREATE_FEED_400 = {
    "no feedType": ({"feedType": None}, "feedType"),
    "no marketplaceIds": ({"marketplaceIds": []}, "marketplaceIds"),
    "unknown marketplace": ({"marketplaceIds": ["XX"]}, "XX"),
    "unknown document": ({"inputFeedDocumentId": "badDocumentId"}, "badDocumentId"),
    "feedOptions not strings": ({"feedOptions": {"metadata:TotalAmount": 1.5}}, "feedOptions"),
    "another feed type": ({"feedType": "POST_PRODUCT_DATA"}, "UPLOAD_VAT_INVOICE"),
}


@pytest.mark.parametrize("case", list(CREATE_FEED_400))
def test_createfeed_refuses_at_once_what_it_can_see(standin, case):
    change, word = CREATE_FEED_400[case]
    headers = _token(standin)
    doc = httpx.post(f"{standin.url}/feeds/2021-06-30/documents", json={"contentType": "application/pdf"},
                     headers=headers).json()
    body = {"feedType": "UPLOAD_VAT_INVOICE", "marketplaceIds": ["A1PA6795UKMFR9"],
            "inputFeedDocumentId": doc["feedDocumentId"], **change}
    r = httpx.post(f"{standin.url}/feeds/2021-06-30/feeds", json={k: v for k, v in body.items() if v is not None},
                   headers=headers)
    assert r.status_code == 400 and r.headers["x-amzn-RateLimit-Limit"]
    err = r.json()["errors"][0]
    assert (err["code"], err["message"]) == ("400", "Invalid input") and word in err["details"], err
    assert not standin.invoices()


def test_a_503_on_a_call_that_only_reads_is_still_retried(standin, api, invoices):
    order = shipped_order(standin)
    feed_id = invoices.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES, metadata(order))
    standin.add_fault(Fault(operation="getFeed", kind="status", status=503))
    assert invoices.feed_status(feed_id) == ("IN_QUEUE", "")
    assert api.stats.retries == 1 and calls(standin)["getFeed"] == 2


def test_a_4xx_on_createfeed_is_a_refusal_nothing_was_queued(standin, api, invoices):
    # 4xx: Amazon answered without acting, so the upload is not in doubt (RefusedError); the
    # outbox retries it later like any failure.
    order = shipped_order(standin)
    standin.add_fault(Fault(operation="createFeed", kind="status", status=409))
    with pytest.raises(RefusedError, match="HTTP 409"):
        invoices.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES, metadata(order))
    assert api.stats.retries == 0 and calls(standin)["createFeed"] == 1 and not standin.invoices()


def test_a_429_on_createfeed_is_retried_and_one_feed_is_queued(standin, api, invoices):
    # A 429 is Amazon saying it did not take the request: repeating it cannot queue a second feed.
    order = shipped_order(standin)
    standin.add_fault(Fault(operation="createFeed", kind="throttle"))
    feed_id = invoices.upload_invoice(order["orderId"], marketplace(order), PDF_BYTES, metadata(order))
    assert api.stats.throttled == 1 and api.stats.retries == 1 and calls(standin)["createFeed"] == 2
    assert [i["feed_id"] for i in standin.invoices()] == [feed_id]
