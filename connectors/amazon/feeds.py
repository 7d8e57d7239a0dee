"""Handing an invoice PDF to Amazon: Feeds API 2021-06-30 with feed type ``UPLOAD_VAT_INVOICE``.

Why a feed: a seller outside Amazon's VAT Calculation Service uploads its own PDF invoices this
way ("Option 3", reference/amazon/customer-contact.md §3); Amazon keeps the invoice against the
order and shows the invoice number to the buyer. The flow is the usual one for feeds
(reference/amazon/README.md §2 "Feeds alternative"): createFeedDocument with contentType
``application/pdf``, PUT the PDF to the presigned URL it returns, then createFeed with the
metadata as ``feedOptions`` (``metadata:OrderId`` ...). Amazon judges the invoice later: the
feed ends DONE or FATAL and its processing report says why (``feed_status``).

Why the job never waits for createFeed: its published rate is 0.0083/s, burst 15
(README §3), i.e. one call every two minutes once the burst is spent. customer-contact.md also
says "one invoice upload every 3 seconds"; the createFeed rate is the stricter of the two and
the one we keep. When our bucket would make us wait longer than ``max_wait_seconds``, the upload
raises ThrottledError before anything is sent, and the outbox tries again later.

Why the PUT is ours and not the library's: ``create_feed_document(file, ...)`` in
python-amazon-sp-api uploads with a client of its own (no timeout of ours) and reads a failed
upload's body as JSON, which S3's XML errors are not; and a failed upload inside ``SpApi.call``
would repeat createFeedDocument too. So the library creates the document and we PUT.

A createFeed repeated after a lost answer could queue the same invoice twice (Amazon does not
document what it does then; the stand-in reports the second as a duplicate and keeps the first).
A 5xx is no better than a lost answer: the feed may have been queued before the error. So
createFeed is never repeated inside the call once it may have reached Amazon
(``SpApi.call(acts=True)``); the outbox keeps the upload in doubt and, before it sends again,
asks ``uploads_since`` (getFeeds, from ``feed_created`` of the last upload it knows) which invoice
feeds exist since then (connectors.amazon.invoice_feeds.feed_of_interrupted_upload). A crash after
createFeed is handled the same way.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable

import httpx
from sp_api.api import Feeds
from sp_api.base import ApiResponse
from sp_api.base.exceptions import SellingApiBadRequestException, SellingApiNotFoundException

from caturactl.core.errors import InputError, RejectedError, RemoteError, ThrottledError
from connectors.amazon.client import SpApi, amazon_says, call_interval
from connectors.amazon.orders import iso
from connectors.tls import client_context

FEED_TYPE = "UPLOAD_VAT_INVOICE"  # not in python-amazon-sp-api's FeedType enum: passed as a string
PDF = "application/pdf"
# The metadata keys we send (customer-contact.md §3); ShippingId and TransactionId are left out:
# we invoice per order, and TransactionId's rule is unverified.
METADATA_KEYS = ("OrderId", "InvoiceNumber", "DocumentType", "TotalAmount", "TotalVATAmount")
REQUIRED_KEYS = ("OrderId", "InvoiceNumber", "DocumentType")
DOCUMENT_TYPES = ("Invoice", "CreditNote")  # CreditNote: Gutschrift / Rechnungskorrektur
AMOUNT_KEYS = ("TotalAmount", "TotalVATAmount")
# "Allowed characters in values: letters, digits, space, , / \ - _ ; : #" (customer-contact.md §3).
# ASCII letters only: whether Amazon takes umlauts is not documented, and a refusal costs a ticket.
TEXT_VALUE = re.compile(r"[A-Za-z0-9 ,/\\\-_;:#]+")
# Amounts as Amazon's own example sends them: a plain decimal with a point, at most 2 decimals.
AMOUNT_VALUE = re.compile(r"-?\d+(\.\d{1,2})?")
FINISHED = ("DONE", "FATAL", "CANCELLED")
STATUSES = FINISHED + ("IN_QUEUE", "IN_PROGRESS")
FEEDS_PAGE_SIZE = 100  # getFeeds' maximum: at 0.0222/s every page saved is ~45 s


def feed_options(order_id: str, metadata: dict[str, str]) -> dict[str, str]:
    """The ``feedOptions`` for one invoice: each key as ``metadata:<Key>``, OrderId filled in from
    ``order_id``. Raises InputError naming the key when one is unknown, missing or holds a
    character Amazon does not allow."""
    where = f"amazon order {order_id} invoice metadata"
    meta = {k: (v if isinstance(v, str) else str(v)) for k, v in metadata.items()}
    unknown = sorted(set(meta) - set(METADATA_KEYS))
    if unknown:
        raise InputError(f"unknown invoice metadata key {unknown[0]}; expected {', '.join(METADATA_KEYS)}",
                         where=f"{where} {unknown[0]}")
    if meta.setdefault("OrderId", order_id) != order_id:
        raise InputError(f"OrderId {meta['OrderId']!r} is not the order the invoice is uploaded for ({order_id})",
                         where=f"{where} OrderId")
    for key in REQUIRED_KEYS:
        if not meta.get(key):
            raise InputError(f"{key} is required", where=f"{where} {key}")
    if meta["DocumentType"] not in DOCUMENT_TYPES:
        raise InputError(f"DocumentType {meta['DocumentType']!r} must be Invoice or CreditNote",
                         where=f"{where} DocumentType")
    for key, value in meta.items():
        if key in AMOUNT_KEYS:
            if not AMOUNT_VALUE.fullmatch(value):
                raise InputError(f"{key} {value!r} is not an amount such as 119.00", where=f"{where} {key}")
        elif not TEXT_VALUE.fullmatch(value):
            bad = sorted({c for c in value if not TEXT_VALUE.fullmatch(c)})
            raise InputError(f"{key} {value!r} holds {''.join(bad)!r}; Amazon allows letters, digits, space "
                             "and , / \\ - _ ; : # only", where=f"{where} {key}")
    return {f"metadata:{key}": meta[key] for key in METADATA_KEYS if key in meta}


def _refusal(exc: SellingApiBadRequestException | SellingApiNotFoundException, what: str,
             where: str) -> RejectedError:
    if isinstance(exc, SellingApiNotFoundException):
        return RejectedError(f"Amazon does not know {what}: {amazon_says(exc)}", where=where)
    return RejectedError(f"Amazon refused {what}: {amazon_says(exc)}", where=where)


def _document(response: ApiResponse) -> tuple[str, str]:
    p = response.payload if isinstance(response.payload, dict) else {}
    doc_id, url = p.get("feedDocumentId"), p.get("url")
    if not (isinstance(doc_id, str) and doc_id and isinstance(url, str) and url.startswith(("https://", "http://"))):
        raise ValueError(f"createFeedDocument answered without feedDocumentId and url: {p!r}")
    return doc_id, url


def _feed_id(response: ApiResponse) -> str:
    p = response.payload if isinstance(response.payload, dict) else {}
    if not (isinstance(p.get("feedId"), str) and p["feedId"]):
        raise ValueError(f"createFeed answered without a feedId: {p!r}")
    return p["feedId"]


def _feed(response: ApiResponse) -> dict[str, Any]:
    p = response.payload if isinstance(response.payload, dict) else {}
    if p.get("processingStatus") not in STATUSES:
        raise ValueError(f"getFeed answered without a known processingStatus: {p!r}")
    return p


def _feed_list(response: ApiResponse) -> tuple[list[tuple[str, datetime]], str | None]:
    body = response.payload if isinstance(response.payload, dict) else {}
    feeds = body.get("feeds")
    if not isinstance(feeds, list):
        raise ValueError(f"getFeeds answered without a feeds list: {body!r}")
    found = []
    for f in feeds:
        if not isinstance(f, dict) or f.get("feedType") != FEED_TYPE:
            continue  # we asked for invoice feeds only; anything else is not ours to judge
        feed_id, created = f.get("feedId"), f.get("createdTime")
        if not (isinstance(feed_id, str) and feed_id and isinstance(created, str)):
            raise ValueError(f"getFeeds listed a feed without feedId or createdTime: {f!r}")
        try:
            at = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"getFeeds listed feed {feed_id} with createdTime {created!r}") from None
        found.append((feed_id, at if at.tzinfo else at.replace(tzinfo=timezone.utc)))
    # The library moves nextToken out of the body into ``next_token``.
    token = response.next_token or body.get("nextToken")
    return found, token if isinstance(token, str) and token else None


def _report(text: Any) -> str:
    if not isinstance(text, str):
        raise ValueError(f"getFeedDocument gave no text: {text!r}")
    return text


class AmazonInvoices:
    """The ``InvoiceUploader`` port over Feeds 2021-06-30 ``UPLOAD_VAT_INVOICE``."""

    def __init__(self, api: SpApi, *, max_wait_seconds: float = 10.0, feeds_page_size: int = FEEDS_PAGE_SIZE):
        self.api = api
        self.max_wait_seconds = max_wait_seconds
        self.feeds_page_size = feeds_page_size
        self._feeds: Any = None

    def _client(self) -> Any:
        if self._feeds is None:
            # One client serves every marketplace: createFeedDocument and createFeed get the
            # marketplace in their bodies from us, getFeed and getFeedDocument take none.
            self._feeds = self.api.client(Feeds, self.api.cfg.marketplaces[0])
            self.api.login(self._feeds)  # the token exchange must not eat into the first call's timeout
        return self._feeds

    def _not_now(self, what: str, where: str) -> None:
        wait = self.api.wait_seconds("createFeed")
        if wait > self.max_wait_seconds:
            rate = self.api.bucket("createFeed").rate
            raise ThrottledError(f"createFeed allows one call every {call_interval(rate)} and the next is due in "
                                 f"{wait:.0f} s; {what} later", where=where)

    def upload_invoice(self, order_id: str, marketplace_id: str, pdf: bytes, metadata: dict[str, str], *,
                       before_submit: Callable[[], None] | None = None) -> str:
        """Upload the PDF and queue it as an UPLOAD_VAT_INVOICE feed; returns Amazon's feedId
        (whether Amazon takes the invoice shows later in ``feed_status``). Raises InputError for
        metadata or a file Amazon would refuse (before any call), ThrottledError when createFeed's
        rate says later, RejectedError when Amazon refuses the request, RemoteError otherwise
        (also when createFeed may have queued the invoice without our knowing: a lost answer or a
        5xx, not repeated). ``before_submit`` is called right before createFeed, the call that
        queues the invoice."""
        options = feed_options(order_id, metadata)
        where = f"amazon order {order_id} invoice {options['metadata:InvoiceNumber']}"
        if not pdf.startswith(b"%PDF-"):
            raise InputError("the invoice is not a PDF (it does not start with %PDF-)", where=where)
        # Asked first so that a full bucket does not leave an orphaned document behind.
        self._not_now("upload the invoice", where)
        client = self._client()

        def create_document() -> ApiResponse:
            try:
                # file=None: the library only creates the document; the PUT is below.
                return client.create_feed_document(None, PDF, marketplaceIds=[marketplace_id])
            except SellingApiBadRequestException as exc:
                raise _refusal(exc, "the feed document", where) from None

        doc_id, url = self.api.call("createFeedDocument", create_document, _document,
                                    f"createFeedDocument for {order_id}", max_wait=self.max_wait_seconds)
        self._put(url, pdf, where)
        self._not_now("upload the invoice", where)  # another job may have spent the token meanwhile

        if before_submit is not None:
            before_submit()

        def create_feed() -> ApiResponse:
            try:
                return client.create_feed(FEED_TYPE, doc_id, marketplaceIds=[marketplace_id], feedOptions=options)
            except (SellingApiBadRequestException, SellingApiNotFoundException) as exc:
                raise _refusal(exc, "the invoice feed", where) from None

        return self.api.call("createFeed", create_feed, _feed_id, f"createFeed for {order_id}",
                             max_wait=self.max_wait_seconds, acts=True)

    def _put(self, url: str, pdf: bytes, where: str) -> None:
        # The presigned URL is S3's, not SP-API: no token, no rate limit; its signature covers
        # the Content-Type given to createFeedDocument, so it must be the same here.
        try:
            r = httpx.put(url, content=pdf, headers={"Content-Type": PDF}, timeout=self.api.cfg.timeout_seconds,
                          verify=client_context())
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot upload the invoice PDF to Amazon's storage: {type(exc).__name__}: {exc}",
                              where=where) from None
        if not 200 <= r.status_code < 300:
            code = re.search(r"<Code>([^<]+)</Code>", r.text)
            raise RemoteError(f"Amazon's storage refused the invoice PDF: HTTP {r.status_code}"
                              + (f" {code.group(1)}" if code else ""), where=where)

    def _get_feed(self, feed_id: str) -> dict[str, Any]:
        client = self._client()

        def get_feed() -> ApiResponse:
            try:
                return client.get_feed(feed_id)
            except (SellingApiBadRequestException, SellingApiNotFoundException) as exc:
                raise _refusal(exc, f"feed {feed_id}", f"amazon feed {feed_id}") from None

        return self.api.call("getFeed", get_feed, _feed, f"getFeed {feed_id}", max_wait=self.max_wait_seconds)

    def feed_status(self, feed_id: str) -> tuple[str, str]:
        """The feed's processingStatus (IN_QUEUE, IN_PROGRESS, DONE, FATAL, CANCELLED) and, once
        it is DONE or FATAL, the text of Amazon's processing report ("" before). Raises
        RejectedError for a feed Amazon does not know, ThrottledError when getFeedDocument's rate
        (0.0222/s) says later, RemoteError otherwise."""
        client = self._client()
        where = f"amazon feed {feed_id}"
        feed = self._get_feed(feed_id)
        status, result_id = feed["processingStatus"], feed.get("resultFeedDocumentId")
        if status not in ("DONE", "FATAL") or not result_id:
            return status, ""

        def get_report() -> str:
            try:
                # The library asks for the document's URL and downloads it (gunzipped if need be).
                return client.get_feed_document(result_id)
            except (SellingApiBadRequestException, SellingApiNotFoundException) as exc:
                raise _refusal(exc, f"the report {result_id} of feed {feed_id}", where) from None

        report = self.api.call("getFeedDocument", get_report, _report, f"getFeedDocument for feed {feed_id}",
                               max_wait=self.max_wait_seconds)
        return status, report

    def feed_created(self, feed_id: str) -> datetime:
        """When Amazon created the feed, on Amazon's clock (getFeed createdTime). Raises
        RejectedError for a feed Amazon does not know, ThrottledError / RemoteError otherwise."""
        where = f"amazon feed {feed_id}"
        feed = self._get_feed(feed_id)
        try:
            return datetime.fromisoformat(str(feed.get("createdTime")).replace("Z", "+00:00"))
        except ValueError:
            raise RemoteError(f"getFeed answered with createdTime {feed.get('createdTime')!r}", where=where) from None

    def uploads_since(self, created_since: datetime) -> list[tuple[str, datetime]]:
        """(feedId, createdTime) of every UPLOAD_VAT_INVOICE feed Amazon created at or after
        ``created_since`` (timezone-aware) in the configured marketplaces, each once, in Amazon's
        order. Raises RejectedError when Amazon refuses the query (also for a time after Amazon's
        now), ThrottledError when getFeeds' rate (0.0222/s) says later, RemoteError otherwise;
        ValueError for a naive ``created_since``."""
        if created_since.tzinfo is None:
            raise ValueError("created_since must carry a timezone")
        client = self._client()
        where = "amazon getFeeds"
        # Named explicitly: without marketplaceIds the library adds the client's one marketplace,
        # and Amazon would list only that one's feeds. The lists go comma-separated, the model's
        # collection format (get_feeds passes a Python list on as a repeated key).
        params = {"feedTypes": FEED_TYPE, "marketplaceIds": ",".join(dict.fromkeys(self.api.cfg.marketplaces)),
                  "createdSince": iso(created_since), "pageSize": self.feeds_page_size}
        found: dict[str, datetime] = {}
        token: str | None = None
        page_no = 0
        while True:
            page_no += 1

            def get_page(token: str | None = token) -> ApiResponse:
                try:
                    # "include this token as the only parameter"
                    return client.get_feeds(nextToken=token) if token is not None else client.get_feeds(**params)
                except (SellingApiBadRequestException, SellingApiNotFoundException) as exc:
                    raise _refusal(exc, "the list of invoice feeds", where) from None

            feeds, token = self.api.call("getFeeds", get_page, _feed_list, f"getFeeds page {page_no}",
                                         max_wait=self.max_wait_seconds)
            for feed_id, at in feeds:
                # iso() drops the fraction of a second; Amazon's createdTime has milliseconds.
                if at >= created_since:
                    found.setdefault(feed_id, at)
            if token is None:
                return list(found.items())

    def feed_outcome(self, feed_id: str) -> tuple[str, str]:
        """Like ``feed_status``, with the report reduced to its result descriptions for people."""
        status, report = self.feed_status(feed_id)
        return status, report_text(report) if report else ""

    def close(self) -> None:
        """Close the client's HTTP connections."""
        if self._feeds is not None:
            self._feeds.close()
            self._feeds = None


def report_text(report: str) -> str:
    """The result descriptions of a processing report ("Error: ..."), or the report itself when it
    is not the XML ProcessingReport; parsed with entities and network off."""
    from lxml import etree

    from carriers.safe_xml import parser
    try:
        root = etree.fromstring(report.encode("utf-8"), parser())
    except (etree.XMLSyntaxError, ValueError):
        return report.strip()
    lines = []
    for result in root.iter("Result"):
        code = (result.findtext("ResultCode") or "").strip()
        text = (result.findtext("ResultDescription") or "").strip()
        if text:
            lines.append(f"{code}: {text}" if code else text)
    return "; ".join(lines) or report.strip()
