"""HTTP side of the SP-API stand-in: LWA, Orders v2026-01-01, v0 confirmShipment, Feeds 2021-06-30
(invoice upload), Solicitations v1, Listings Items 2021-08-01 (a listing's quantity; listings.py), rate
limits, faults, admin.

Served with the standard library only (``http.server.ThreadingHTTPServer`` in a
daemon thread).  The python-amazon-sp-api client talks to it unchanged.

Routes
    POST /auth/o2/token                            LWA token exchange (not rate limited)
    GET  /orders/2026-01-01/orders                 searchOrders (0.0056/s x rate_scale, burst 20)
    GET  /orders/2026-01-01/orders/{orderId}       getOrder     (0.5/s x rate_scale, burst 30)
    POST /orders/v0/orders/{orderId}/shipmentConfirmation
                                                   confirmShipment (2/s x rate_scale, burst 10)
    POST /feeds/2021-06-30/documents               createFeedDocument (0.5/s, burst 15)
    POST /feeds/2021-06-30/feeds                   createFeed         (0.0083/s, burst 15)
    GET  /feeds/2021-06-30/feeds                   getFeeds           (0.0222/s, burst 10)
    GET  /feeds/2021-06-30/feeds/{feedId}          getFeed            (2/s, burst 15)
    GET  /feeds/2021-06-30/documents/{documentId}  getFeedDocument    (0.0222/s, burst 10)
    PUT  /_upload/{documentId}?expires=..&sig=..   the presigned upload URL (S3's part: no SP-API
                                                   auth, not rate limited, not in stats)
    GET  /_download/{documentId}?expires=..&sig=.. the presigned download URL of a document
    GET  /reports/2021-06-30/reports               getReports         (0.0222/s, burst 10)
    GET  /reports/2021-06-30/documents/{id}        getReportDocument  (0.0167/s, burst 15)
    GET  /solicitations/v1/orders/{orderId}        getSolicitationActionsForOrder (1/s, burst 5)
    POST /solicitations/v1/orders/{orderId}/solicitations/productReviewAndSellerFeedback
                                                   createProductReviewAndSellerFeedbackSolicitation (1/s, burst 5)
    PATCH /listings/2021-08-01/items/{sellerId}/{sku}
                                                   patchListingsItem (5/s, burst 5): fulfillment_availability
    GET  /listings/2021-08-01/items/{sellerId}/{sku}
                                                   getListingsItem (5/s, burst 10)
    GET  /_standin/listings                        {"quantities": {sku: n}, "patches": [...]}
    GET  /_standin/stats | /_standin/catalogue.csv | /_standin/catalogue | /_standin/now
    GET  /_standin/orders                          {"orderIds": [...]}  (all generated ids)
    GET  /_standin/visible                         {"orders": [...]}    (visible_orders())
    POST /_standin/advance   {"hours": 30}         (also days/minutes/seconds)
    POST /_standin/faults    {Fault fields}        DELETE /_standin/faults clears them
    POST /_standin/orders/{id} {"status":..., "address":{...}, "break_field":...}
    GET  /_standin/shipments[?orderId=...]         {"shipments": [...]} (confirmed packages)
    GET  /_standin/invoices[?orderId=...]          {"invoices": [...]} (uploaded invoices, PDF as length + sha256)
    GET  /_standin/solicitations                   {"solicitations": [...]} (review requests sent)

The simulated clock (``now()``) starts at the end of ``day`` + 3 h and moves
only with ``advance()``.  searchOrders' default ``...Before`` is now - 2 min, so
a ``change_order()`` made at now shows up in a lastUpdated search only after the
clock has been advanced by more than 2 minutes.  Pagination is keyset-based (the
token carries the query, the fixed ``before``, the last sort key and the offset),
so an order that changes between pages drops out without shifting the others.
Unknown searchOrders query keys (other than the client's MarketplaceId,
MarketplaceIds, marketplace_ids extras) get 400 InvalidInput, which catches
v0-style names such as ``CreatedAfter``.

Access tokens are self-verifying (HMAC over refresh-token hash and real expiry
time) so that any stand-in with the same refresh token accepts them.  This is
needed because python-amazon-sp-api caches access tokens process-wide by
refresh token: a test suite that starts several stand-ins with the default
credentials would otherwise get 403s from every stand-in but the first.

confirmShipment validates the body as Amazon's model documents it (ordersV0.json
ConfirmShipmentRequest / PackageDetail; reference/amazon/README.md §2) and against the
order (marketplace, items, quantities still unshipped, dates, status).  Every 400 uses the
code and message of Amazon's one sample (confirmShipment_400_request_and_response.json:
"Invalid Input"); ``details`` says what is wrong, which Amazon's sample does not show.
Success is 204 without a body; the order turns PARTIALLY_SHIPPED or SHIPPED at the
simulated now (see ``Marketplace.confirm_shipment``).

Feeds (feeds_2021-06-30.json; README.md §2 "Feeds alternative", customer-contact.md §3).
createFeedDocument answers 201 with a presigned URL on the stand-in itself. As on S3 the URL
carries its own signature over the document, the expiry (5 minutes of real time, the model's
figure) and the content type given to createFeedDocument, so a PUT with another Content-Type
gets S3's 403 ``SignatureDoesNotMatch``. createFeed refuses with 400 (the model's sandbox
error shape, code "400" / "Invalid input") what it can see at once: a body without feedType,
marketplaceIds (1-25) or inputFeedDocumentId, feedOptions that is not a string map, an unknown
document or marketplace, and any feed type but UPLOAD_VAT_INVOICE (the stand-in's choice:
it processes no other). Everything about the invoice itself is judged when the feed is
processed, and shows in its report (``Marketplace`` docstring). Body keys the model does not
name are ignored: python-amazon-sp-api sends its ``path`` and marketplace ids in these bodies,
and works against Amazon.
getFeeds lists the feeds as getFeed shows them, with the rules of getReports below (feedTypes
or nextToken, nextToken alone, pageSize 1-100, createdSince 90 days and createdUntil now by
default, newest first as the stand-in's choice, keyset pages) and these besides: createdSince
and createdUntil must be ISO 8601 date-times with a "T" and createdSince not after createdUntil;
its 400s have createFeed's shape. Array parameters are read comma-separated or repeated.

Reports (reports_2021-06-30.json; README.md §8). Only settlement reports exist, and only once a
test calls ``close_settlement`` (Amazon makes them on its own schedule). getReports needs
reportTypes or nextToken; nextToken must come alone (400 otherwise, as the model says); pageSize
is 1-100 (default 10); createdSince defaults to 90 days before the simulated now, createdUntil
to now; marketplaceIds match a report naming any of them. Newest first is the stand-in's choice
(the model does not say); pages are keyset-based, so a report closed between two pages does not
shift them. The answer is not wrapped in ``payload``. getReportDocument answers
``{reportDocumentId, url, compressionAlgorithm?}`` with a presigned URL like the feeds' ones.

Solicitations (solicitations.json; customer-contact.md §1). marketplaceIds must name exactly
one known marketplace (400 otherwise); an unknown order is 404, an order of another
marketplace 400 (the stand-in's choice). The POST's body is ignored (the model has none; the
library sends its marketplace ids). Refusals are 403 ``Unauthorized`` with Amazon's reported
messages (see ``Marketplace``).
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import hashlib
import hmac
import json
import re
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from .marketplace import (
    ALL_INCLUDED, CATALOGUE, FULFILLMENT_STATUSES, KNOWN_MARKETPLACE_IDS, MARKETPLACES, SOLICITATION,
    VAT_INVOICE_FEED, Marketplace, OrderState, ShipmentRefused, SolicitationRefused, UTC, WrongMarketplace, _iso,
    catalogue_csv,
)
from ..http import HttpStandin, StandinHandler
from .listings import INCLUDED as LISTING_DATA, BadPatch, Listings
from .ratelimit import TokenBucket

SEARCH_PATH = "/orders/2026-01-01/orders"
TOKEN_PATH = "/auth/o2/token"
CONFIRM_PATH = re.compile(r"^/orders/v0/orders/([^/]+)/shipmentConfirmation$")
FEED_DOCUMENTS_PATH = "/feeds/2021-06-30/documents"
FEED_DOCUMENT_PATH = re.compile(r"^/feeds/2021-06-30/documents/([^/]+)$")
FEEDS_PATH = "/feeds/2021-06-30/feeds"
FEED_PATH = re.compile(r"^/feeds/2021-06-30/feeds/([^/]+)$")
UPLOAD_PATH = re.compile(r"^/_upload/([^/]+)$")
DOWNLOAD_PATH = re.compile(r"^/_download/([^/]+)$")
REPORTS_PATH = "/reports/2021-06-30/reports"
REPORT_DOCUMENT_PATH = re.compile(r"^/reports/2021-06-30/documents/([^/]+)$")
SOLICITATIONS_PATH = re.compile(r"^/solicitations/v1/orders/([^/]+)$")
SOLICIT_PATH = re.compile(rf"^/solicitations/v1/orders/([^/]+)/solicitations/{SOLICITATION}$")
LISTINGS_PATH = re.compile(r"^/listings/2021-08-01/items/([^/]+)/([^/]+)$")
# Every operation has a line in stats()["calls"] from the start.
OPERATIONS = ("searchOrders", "getOrder", "confirmShipment", "createFeedDocument", "createFeed", "getFeed",
              "getFeeds", "getFeedDocument", "getSolicitationActionsForOrder",
              "createProductReviewAndSellerFeedbackSolicitation", "getReports", "getReportDocument",
              "patchListingsItem", "getListingsItem", "token")
# Published default usage plans (reference/amazon/README.md §3, orders-2026.md, customer-contact.md §1).
RATES = {"searchOrders": (0.0056, 20), "getOrder": (0.5, 30), "confirmShipment": (2.0, 10),
         "createFeedDocument": (0.5, 15), "createFeed": (0.0083, 15), "getFeed": (2.0, 15), "getFeeds": (0.0222, 10),
         "getFeedDocument": (0.0222, 10), "getReports": (0.0222, 10), "getReportDocument": (0.0167, 15),
         "getSolicitationActionsForOrder": (1.0, 5),
         "createProductReviewAndSellerFeedbackSolicitation": (1.0, 5),
         # listingsItems_2021-08-01.json (selling-partner-api-models, current revision)
         "patchListingsItem": (5.0, 5), "getListingsItem": (5.0, 10)}
# Operations whose models list x-amzn-RateLimit-Limit on 400 and 404 answers too, not only on success.
LIMIT_HEADER_ON_ERRORS = {"confirmShipment", "createFeedDocument", "createFeed", "getFeed", "getFeeds",
                          "getFeedDocument", "getReports", "getReportDocument",
                          "getSolicitationActionsForOrder", "createProductReviewAndSellerFeedbackSolicitation",
                          "patchListingsItem", "getListingsItem"}
PRESIGNED_LIFETIME = 300     # seconds: "This URL expires after 5 minutes" (feeds_2021-06-30.json)
FILTER_PARAMS = ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore",
                 "marketplaceIds", "fulfillmentStatuses", "fulfilledBy")
ARRAY_PARAMS = {"marketplaceIds", "fulfillmentStatuses", "fulfilledBy", "includedData"}
KNOWN_SEARCH_PARAMS = set(FILTER_PARAMS) | {"maxResultsPerPage", "paginationToken", "includedData"}
IGNORED_PARAMS = {"MarketplaceId", "MarketplaceIds", "marketplace_ids"}
TOKEN_MAX_AGE = dt.timedelta(hours=24)
MIN_BEFORE_GAP = dt.timedelta(minutes=2)

_SIGNING_KEY = b"caturactl-amazon-standin"   # not a secret: it only makes tokens tamper-evident

FAULT_KINDS = ("status", "throttle", "slow", "malformed", "duplicate_page", "hang")
_STATUS_ERRORS = {
    500: ("InternalFailure", "We encountered an internal error. Please try again."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "Service temporarily unavailable. Please try again."),
    504: ("GatewayTimeout", "Gateway timeout."),
}

QUOTA_BODY = {"errors": [{"code": "QuotaExceeded",
                          "message": "You exceeded your quota for the requested resource.", "details": ""}]}
UNAUTHORIZED_BODY = {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied.",
                                 "details": "The access token you provided is revoked, malformed or invalid."}]}


@dataclass
class Fault:
    """A misbehaviour applied to the next ``count`` matching requests.

    operation: one of OPERATIONS (e.g. "getOrder", "getReports", "token") or "*".
    kind: status | throttle | slow | malformed | duplicate_page | hang.
    status: HTTP status for kind="status" (default 500).
    delay: seconds for "slow" and "hang" (hang defaults to 60).
    """
    operation: str
    kind: str
    count: int = 1
    status: int | None = None
    delay: float = 0.0

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.operation not in OPERATIONS + ("*",):
            raise ValueError(f"unknown operation {self.operation!r}; expected one of "
                             f"{OPERATIONS} or '*'")
        if self.kind == "duplicate_page" and self.operation != "searchOrders":
            raise ValueError("duplicate_page only applies to searchOrders")
        if self.kind == "status" and self.status is None:
            self.status = 500
        self.count = int(self.count)
        self.delay = float(self.delay)


class BadRequest(Exception):
    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.message = message
        self.details = details


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: str) -> str:
    return _b64e(hmac.new(_SIGNING_KEY, payload.encode(), hashlib.sha256).digest()[:12])


def _parse_time(name: str, value: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise BadRequest(f"Invalid {name}: '{value}' is not a valid ISO 8601 date.",
                         f"{name} must be an ISO 8601 date-time, e.g. 2026-11-24T00:00:00Z.") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


def _key_iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _rate_text(rate: float) -> str:
    return f"{rate:.10g}"


class AmazonStandin(HttpStandin):
    """A local Selling Partner API (Orders v2026-01-01 + LWA) for tests, demos and benchmarks."""

    def __init__(self, orders: int = 200, seed: int = 1, day: dt.date | None = None, rate_scale: float = 1.0,
                 client_id: str = "standin-client", client_secret: str = "standin-secret",
                 refresh_token: str = "standin-refresh", host: str = "127.0.0.1", port: int = 0,
                 seller_id: str = "A1STANDINSELLER",
                 token_lifetime: int = 3600, start: dt.datetime | None = None, clock: Any = None):
        super().__init__(host, port, handler=_Handler, thread_name="amazon-standin")
        if isinstance(day, str):
            day = dt.date.fromisoformat(day)
        self.day = day or dt.date(2026, 11, 24)
        self.seed = seed
        self.rate_scale = float(rate_scale)
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.token_lifetime = token_lifetime
        self.marketplace = Marketplace(orders=orders, seed=seed, day=self.day, start=start, clock=clock)
        self.seller_id = seller_id
        self.listings = Listings(self.marketplace.now)
        self.buckets = {op: TokenBucket(rate * self.rate_scale, burst) for op, (rate, burst) in RATES.items()}
        self._calls = {op: 0 for op in OPERATIONS}
        self._throttled = 0
        self._faults_applied = 0
        self._rt_hash = hashlib.sha256(refresh_token.encode()).hexdigest()[:16]

    # lifecycle -------------------------------------------------------------
    def start(self) -> "AmazonStandin":
        if self._server is None:
            self.marketplace.snapshot()     # build the sorted view now, not on the first request
        return super().start()

    @property
    def lwa_url(self) -> str:
        return f"{self.url}{TOKEN_PATH}"

    # marketplace controls ----------------------------------------------------
    @property
    def clock(self):
        """The stand-in's clock; tests install it as the app's clock (caturactl.core.clock)."""
        return self.marketplace.clock

    def now(self) -> dt.datetime:
        return self.marketplace.now()

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        return self.marketplace.advance(delta)

    def change_order(self, order_id: str, **change: Any) -> dict[str, Any]:
        return self.marketplace.change_order(order_id, **change)

    def order_ids(self) -> list[str]:
        return self.marketplace.order_ids()

    def visible_orders(self) -> list[dict[str, Any]]:
        return self.marketplace.visible_orders()

    def catalogue(self) -> list[dict[str, Any]]:
        return [dict(r) for r in CATALOGUE]

    def catalogue_csv(self) -> str:
        return catalogue_csv(CATALOGUE)

    def stats(self) -> dict[str, Any]:
        """Calls per operation, 429s answered, faults applied."""
        with self._lock:
            calls = dict(self._calls)
            return {"calls": calls, "throttled": self._throttled, "faults": self._faults_applied}

    def shipments(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """Every package confirmed through confirmShipment (each once, repeats not counted),
        oldest first; only ``order_id``'s when given."""
        return self.marketplace.shipments(order_id)

    def invoices(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """Every invoice uploaded with UPLOAD_VAT_INVOICE, oldest first; only ``order_id``'s when
        given. Each: order_id, marketplace_id, invoice_number, document_type, total_amount,
        total_vat_amount (as sent), pdf (the bytes), pdf_length, feed_id, status (PENDING, ACCEPTED,
        REJECTED, DUPLICATE), problems (the report's descriptions), uploaded_at, processed_at."""
        return self.marketplace.invoices(order_id)

    def solicitations(self) -> list[dict[str, Any]]:
        """Every review request sent, oldest first: order_id, marketplace_id, solicitation, sent_at."""
        return self.marketplace.solicitations()

    def listing_quantities(self) -> dict[str, int]:
        """The merchant-fulfilled quantity of each listing patched so far, by SKU."""
        return self.listings.quantities()

    def close_settlement(self, locale: str = "DE", gzip: bool = False, duplicate: bool = False,
                         mixed_decimals: bool = False) -> dict[str, Any]:
        """Close a settlement at the simulated now and publish it as a DONE settlement report
        (twice with ``duplicate``); see ``Marketplace.close_settlement``. Raises ValueError for
        a locale other than DE or EN."""
        return self.marketplace.close_settlement(locale, gzip, duplicate, mixed_decimals)

    def settlement_text(self, report_id: str) -> str:
        """The flat file behind a report, uncompressed; raises KeyError for an unknown report."""
        return self.marketplace.settlement_text(report_id)

    def presigned_url(self, method: str, document_id: str, content_type: str = "") -> str:
        """A URL on the stand-in that lets ``method`` (PUT or GET) reach the document for
        PRESIGNED_LIFETIME seconds without SP-API credentials, like an S3 presigned URL."""
        kind = "_upload" if method == "PUT" else "_download"
        expires = int(time.time()) + PRESIGNED_LIFETIME
        sig = _sign(f"{method}:{document_id}:{expires}:{content_type if method == 'PUT' else ''}")
        return f"{self.url}/{kind}/{document_id}?expires={expires}&sig={sig}"

    # internals used by the handler --------------------------------------------
    def _count_call(self, op: str) -> None:
        with self._lock:
            self._calls[op] = self._calls.get(op, 0) + 1

    def _count_throttled(self) -> None:
        with self._lock:
            self._throttled += 1

    def _take_fault(self, op: str, has_page_token: bool) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.operation not in (op, "*"):
                    continue
                if f.kind == "duplicate_page" and not has_page_token:
                    continue
                f.count -= 1
                if f.count <= 0:
                    self._faults.remove(f)
                self._faults_applied += 1
                return f
        return None

    def _issue_access_token(self) -> str:
        payload = _b64e(json.dumps({"r": self._rt_hash, "e": int(time.time()) + int(self.token_lifetime),
                                    "n": uuid.uuid4().hex[:8]}, separators=(",", ":")).encode())
        return f"Atza|{payload}.{_sign(payload)}"

    def _token_valid(self, token: str | None) -> bool:
        if not token or not token.startswith("Atza|") or "." not in token:
            return False
        payload, _, sig = token[5:].rpartition(".")
        if not hmac.compare_digest(sig, _sign(payload)):
            return False
        try:
            data = json.loads(_b64d(payload))
        except (ValueError, json.JSONDecodeError):
            return False
        return data.get("r") == self._rt_hash and data.get("e", 0) > time.time()


class _Response:
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
                 raw: bytes | None = None, content_type: str = "application/json"):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.raw = raw
        self.content_type = content_type


def _errors(code: str, message: str, details: str = "") -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "details": details}]}


class _Handler(StandinHandler):
    standin: AmazonStandin
    server_version = "Server"
    sys_version = ""

    # plumbing ---------------------------------------------------------------
    def _send(self, resp: _Response) -> None:
        if resp.raw is not None:
            data = resp.raw
        elif resp.body is None:
            data = b""
        elif isinstance(resp.body, (bytes, str)):
            data = resp.body.encode() if isinstance(resp.body, str) else resp.body
        else:
            data = json.dumps(resp.body, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        self._answer(resp.status, data, resp.content_type, {"x-amzn-RequestId": str(uuid.uuid4()), **resp.headers})

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PUT(self):
        self._dispatch("PUT")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)       # the Host header is ignored on purpose
        path = parts.path.rstrip("/") or "/"
        body = self._read_body()
        try:
            if path.startswith("/_standin/") or path == "/_standin":
                resp = self._admin(method, path, body)
            elif path == TOKEN_PATH:
                resp = self._sp_call("token", method, "POST", lambda: self._token(body), False)
            elif path == SEARCH_PATH:
                query = parse_qs(parts.query, keep_blank_values=True)
                resp = self._sp_call("searchOrders", method, "GET", lambda f: self._search(query, f),
                                     "paginationToken" in query)
            elif path.startswith(SEARCH_PATH + "/") and path.count("/") == 4:
                order_id = unquote(path[len(SEARCH_PATH) + 1:])
                query = parse_qs(parts.query, keep_blank_values=True)
                resp = self._sp_call("getOrder", method, "GET", lambda: self._get_order(order_id, query), False)
            elif (m := CONFIRM_PATH.match(path)) is not None:
                order_id = unquote(m.group(1))
                resp = self._sp_call("confirmShipment", method, "POST", lambda: self._confirm(order_id, body), False)
            elif path == FEED_DOCUMENTS_PATH:
                resp = self._sp_call("createFeedDocument", method, "POST", lambda: self._create_feed_document(body),
                                     False)
            elif (m := FEED_DOCUMENT_PATH.match(path)) is not None:
                doc_id = unquote(m.group(1))
                resp = self._sp_call("getFeedDocument", method, "GET", lambda: self._get_feed_document(doc_id), False)
            elif path == FEEDS_PATH and method == "POST":
                resp = self._sp_call("createFeed", method, "POST", lambda: self._create_feed(body), False)
            elif path == FEEDS_PATH:
                query = parse_qs(parts.query, keep_blank_values=True)
                resp = self._sp_call("getFeeds", method, "GET", lambda: self._get_feeds(query), False)
            elif (m := FEED_PATH.match(path)) is not None and method == "GET":   # cancelFeed is not served
                feed_id = unquote(m.group(1))
                resp = self._sp_call("getFeed", method, "GET", lambda: self._get_feed(feed_id), False)
            elif path == REPORTS_PATH:
                query = parse_qs(parts.query, keep_blank_values=True)
                resp = self._sp_call("getReports", method, "GET", lambda: self._get_reports(query), False)
            elif (m := REPORT_DOCUMENT_PATH.match(path)) is not None:
                doc_id = unquote(m.group(1))
                resp = self._sp_call("getReportDocument", method, "GET", lambda: self._get_report_document(doc_id),
                                     False)
            elif (m := UPLOAD_PATH.match(path)) is not None:
                resp = self._upload(method, unquote(m.group(1)), parse_qs(parts.query), body)
            elif (m := DOWNLOAD_PATH.match(path)) is not None:
                resp = self._download(method, unquote(m.group(1)), parse_qs(parts.query))
            elif (m := SOLICITATIONS_PATH.match(path)) is not None:
                order_id = unquote(m.group(1))
                query = parse_qs(parts.query, keep_blank_values=True)
                resp = self._sp_call("getSolicitationActionsForOrder", method, "GET",
                                     lambda: self._solicitation_actions(order_id, query), False)
            elif (m := SOLICIT_PATH.match(path)) is not None:
                order_id = unquote(m.group(1))
                query = parse_qs(parts.query, keep_blank_values=True)
                resp = self._sp_call("createProductReviewAndSellerFeedbackSolicitation", method, "POST",
                                     lambda: self._solicit(order_id, query), False)
            elif (m := LISTINGS_PATH.match(path)) is not None:
                seller, sku = unquote(m.group(1)), unquote(m.group(2))
                query = parse_qs(parts.query, keep_blank_values=True)
                if method == "PATCH":
                    resp = self._sp_call("patchListingsItem", method, "PATCH",
                                         lambda: self._patch_listing(seller, sku, query, body), False)
                else:
                    resp = self._sp_call("getListingsItem", method, "GET",
                                         lambda: self._get_listing(seller, sku, query), False)
            else:
                resp = _Response(404, _errors("NotFound", "Resource not found.", f"No route for {path}"))
        except _Hang:
            self.close_connection = True
            return
        except Exception as exc:  # pragma: no cover - a stand-in bug must not kill the connection silently
            resp = _Response(500, _errors("InternalFailure", "Stand-in error.", repr(exc)))
        self._send(resp)

    # SP-API pipeline: auth -> faults -> rate limit -> handler ------------------------------
    def _sp_call(self, op: str, method: str, expected: str, handler, has_page_token: bool) -> _Response:
        s = self.standin
        s._count_call(op)
        if method != expected:
            return _Response(405, _errors("MethodNotAllowed", f"{method} is not allowed here."))
        if op != "token" and not s._token_valid(self.headers.get("x-amz-access-token")):
            return _Response(403, UNAUTHORIZED_BODY)
        fault = s._take_fault(op, has_page_token)
        if fault is not None and fault.kind != "duplicate_page":
            early = self._apply_fault(op, fault)
            if early is not None:
                return early
        if op != "token":
            bucket = s.buckets[op]
            if not bucket.try_acquire():
                s._count_throttled()
                return _Response(429, QUOTA_BODY)
        if op == "searchOrders":
            resp = handler(fault if fault is not None and fault.kind == "duplicate_page" else None)
        else:
            resp = handler()
        # Every model lists the header on success; ordersV0.json, feeds and solicitations also on 400 and 404.
        if op != "token" and (200 <= resp.status < 300 or (op in LIMIT_HEADER_ON_ERRORS and resp.status in (400, 404))):
            resp.headers["x-amzn-RateLimit-Limit"] = _rate_text(s.buckets[op].rate)
        if fault is not None and fault.kind == "malformed" and resp.status == 200:
            good = json.dumps(resp.body, separators=(",", ":")).encode()
            resp = _Response(200, raw=good[: max(1, len(good) // 2)], headers=resp.headers)
        return resp

    def _apply_fault(self, op: str, fault: Fault) -> _Response | None:
        s = self.standin
        if fault.kind == "status":
            if op == "token":
                return _Response(fault.status, {"error": "ServerError",
                                                "error_description": "Internal server error"})
            code, msg = _STATUS_ERRORS.get(fault.status, ("InternalFailure", "Unexpected error."))
            return _Response(fault.status, _errors(code, msg))
        if fault.kind == "throttle":
            s._count_throttled()
            if op == "token":
                return _Response(429, {"error": "TooManyRequests", "error_description": "Rate exceeded"})
            return _Response(429, QUOTA_BODY)
        if fault.kind == "slow":
            s.hold(fault.delay)
            return None
        if fault.kind == "hang":
            s.hold(fault.delay or 60.0)
            raise _Hang()
        return None   # malformed: handled after the real answer was built

    # LWA ------------------------------------------------------------------------------
    def _token(self, body: bytes) -> _Response:
        s = self.standin
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        grant = form.get("grant_type")
        if grant not in ("refresh_token", "client_credentials"):
            return _Response(400, {"error": "unsupported_grant_type",
                                   "error_description": "The authorization grant type is not supported by the "
                                                        "authorization server"})
        if form.get("client_id") != s.client_id or form.get("client_secret") != s.client_secret:
            return _Response(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        if grant == "refresh_token" and form.get("refresh_token") != s.refresh_token:
            return _Response(400, {"error": "invalid_grant",
                                   "error_description": "The request has an invalid grant parameter : refresh_token"})
        body_out = {"access_token": s._issue_access_token(), "token_type": "bearer",
                    "expires_in": int(s.token_lifetime)}
        if grant == "refresh_token":
            body_out["refresh_token"] = s.refresh_token
        return _Response(200, body_out, headers={"Cache-Control": "no-store"})

    # getOrder ---------------------------------------------------------------------------
    def _get_order(self, order_id: str, query: dict[str, list[str]]) -> _Response:
        try:
            included = _included(query)
        except BadRequest as e:
            return _Response(400, _errors("InvalidInput", e.message, e.details))
        snap = self.standin.marketplace.snapshot()
        state = snap.by_id.get(order_id)
        if state is None:
            return _Response(404, _errors("NotFound", f"Order {order_id} not found.",
                                          "The requested order does not exist or is not visible yet."))
        return _Response(200, {"order": snap.rendered(state, included)})

    # confirmShipment (Orders v0) --------------------------------------------------------
    def _confirm(self, order_id: str, body: bytes) -> _Response:
        try:
            request = _shipment_request(body)
            self.standin.marketplace.confirm_shipment(order_id, request)
        except (BadRequest, ShipmentRefused) as e:
            details = e.details if isinstance(e, BadRequest) else str(e)
            return _Response(400, _errors(INVALID_INPUT, INVALID_INPUT, details))
        except KeyError:
            return _Response(404, _errors("NotFound", f"Order {order_id} not found.",
                                          "The requested order does not exist or is not visible yet."))
        return _Response(204)

    # Feeds 2021-06-30 ---------------------------------------------------------------------
    def _create_feed_document(self, body: bytes) -> _Response:
        try:
            data = _json_object(body)
        except BadRequest as e:
            return _feed_refused(e.details)
        content_type = data.get("contentType")
        if not isinstance(content_type, str) or not content_type.strip():
            return _feed_refused("contentType is required.")
        content_type = content_type.strip()
        doc_id = self.standin.marketplace.create_feed_document(content_type)
        return _Response(201, {"feedDocumentId": doc_id,
                               "url": self.standin.presigned_url("PUT", doc_id, content_type)})

    def _create_feed(self, body: bytes) -> _Response:
        try:
            data = _json_object(body)
        except BadRequest as e:
            return _feed_refused(e.details)
        feed_type, ids = data.get("feedType"), data.get("marketplaceIds")
        doc_id, options = data.get("inputFeedDocumentId"), data.get("feedOptions") or {}
        if not isinstance(feed_type, str) or not feed_type:
            return _feed_refused("feedType is required.")
        # CreateFeedSpecification.marketplaceIds: minItems 1, maxItems 25.
        if not isinstance(ids, list) or not 1 <= len(ids) <= 25 or not all(isinstance(x, str) for x in ids):
            return _feed_refused("marketplaceIds must list 1 to 25 marketplace ids.")
        unknown = [x for x in ids if x not in KNOWN_MARKETPLACE_IDS]
        if unknown:
            return _feed_refused(f"Unknown marketplace id {unknown[0]}.")
        if not isinstance(doc_id, str) or not doc_id:
            return _feed_refused("inputFeedDocumentId is required.")
        if not isinstance(options, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in options.items()):
            return _feed_refused("feedOptions must map strings to strings.")
        if feed_type != VAT_INVOICE_FEED:
            return _feed_refused(f"feedType {feed_type} is not served by the stand-in (only {VAT_INVOICE_FEED}).")
        try:
            feed_id = self.standin.marketplace.create_feed(feed_type, ids, doc_id, options)
        except KeyError:
            # The model's sandbox answers an unknown inputFeedDocumentId with this 400.
            return _feed_refused(f"inputFeedDocumentId {doc_id} is not a feed document.")
        return _Response(202, {"feedId": feed_id})

    def _get_feed(self, feed_id: str) -> _Response:
        try:
            feed = self.standin.marketplace.feed(feed_id)
        except KeyError:
            feed = None
        # "Feeds are retained for a maximum of 90 days": an older one is gone, as getFeeds shows it.
        if feed is None or _parse_time("createdTime", feed["createdTime"]) < self.standin.now() - FEED_RETENTION:
            return _Response(404, _errors("NotFound", "The specified resource does not exist.", f"feed {feed_id}"))
        return _Response(200, feed)

    def _get_feeds(self, query: dict[str, list[str]]) -> _Response:
        try:
            return _Response(200, _feeds_page(self.standin.marketplace.feeds(), query, self.standin.now()))
        except BadRequest as e:
            return _feed_refused(f"{e.message} {e.details}".strip())

    def _get_feed_document(self, doc_id: str) -> _Response:
        try:
            self.standin.marketplace.document(doc_id)
        except KeyError:
            return _Response(404, _errors("NotFound", "The specified resource does not exist.",
                                          f"feed document {doc_id}"))
        return _Response(200, {"feedDocumentId": doc_id, "url": self.standin.presigned_url("GET", doc_id)})

    # the presigned URLs (S3's part) --------------------------------------------------------
    def _signed(self, method: str, doc_id: str, query: dict[str, list[str]], content_type: str) -> _Response | None:
        """None when the URL's signature and expiry allow the request, else S3's 403."""
        expires, sig = query.get("expires", [""])[-1], query.get("sig", [""])[-1]
        if not expires.isdigit() or not hmac.compare_digest(sig, _sign(f"{method}:{doc_id}:{expires}:{content_type}")):
            message = ("The request signature we calculated does not match the signature you provided. "
                       "Check your key and signing method.")
            try:
                signed_for = self.standin.marketplace.document(doc_id).content_type
            except KeyError:
                signed_for = None
            if method == "PUT" and signed_for is not None and signed_for != content_type and expires.isdigit() \
                    and hmac.compare_digest(sig, _sign(f"PUT:{doc_id}:{expires}:{signed_for}")):
                # S3 only says the signature is wrong; naming the cause saves a tester the guess.
                message += f" (Content-Type {content_type!r}; the URL was signed for {signed_for!r}.)"
            return _s3_error(403, "SignatureDoesNotMatch", message)
        if int(expires) < time.time():
            return _s3_error(403, "AccessDenied", "Request has expired")
        return None

    def _upload(self, method: str, doc_id: str, query: dict[str, list[str]], body: bytes) -> _Response:
        if method != "PUT":
            return _s3_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        refused = self._signed("PUT", doc_id, query, (self.headers.get("Content-Type") or "").strip())
        if refused is not None:
            return refused
        try:
            self.standin.marketplace.store_document(doc_id, body)
        except KeyError:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return _Response(200, headers={"ETag": f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'})

    def _download(self, method: str, doc_id: str, query: dict[str, list[str]]) -> _Response:
        if method != "GET":
            return _s3_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        refused = self._signed("GET", doc_id, query, "")
        if refused is not None:
            return refused
        mp = self.standin.marketplace
        try:
            doc = mp.report_document(doc_id)
        except KeyError:
            try:
                doc = mp.document(doc_id)
            except KeyError:
                doc = None
        if doc is None or doc.content is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return _Response(200, raw=doc.content, content_type=doc.content_type)

    # Reports 2021-06-30 -------------------------------------------------------------------
    def _get_reports(self, query: dict[str, list[str]]) -> _Response:
        try:
            return _Response(200, _reports_page(self.standin.marketplace.reports(), query, self.standin.now()))
        except BadRequest as e:
            return _Response(400, _errors("InvalidInput", e.message, e.details))

    def _get_report_document(self, doc_id: str) -> _Response:
        try:
            doc = self.standin.marketplace.report_document(doc_id)
        except KeyError:
            return _Response(404, _errors("NotFound", "The specified resource does not exist.",
                                          f"report document {doc_id}"))
        body = {"reportDocumentId": doc_id, "url": self.standin.presigned_url("GET", doc_id)}
        if doc.compression:
            body["compressionAlgorithm"] = doc.compression
        return _Response(200, body)

    # Solicitations v1 --------------------------------------------------------------------
    def _solicitation_actions(self, order_id: str, query: dict[str, list[str]]) -> _Response:
        try:
            mp_id = _one_marketplace(query)
            refusal = self.standin.marketplace.solicitation_refusal(order_id, mp_id)
        except (BadRequest, WrongMarketplace, KeyError) as e:
            return _solicitation_error(order_id, e)
        base = f"/solicitations/v1/orders/{order_id}"
        actions = [] if refusal else [{"href": f"{base}/solicitations/{SOLICITATION}?marketplaceIds={mp_id}",
                                       "name": SOLICITATION}]
        return _Response(200, {"_links": {"actions": actions, "self": {"href": f"{base}?marketplaceIds={mp_id}"}}})

    def _solicit(self, order_id: str, query: dict[str, list[str]]) -> _Response:
        try:
            self.standin.marketplace.send_solicitation(order_id, _one_marketplace(query))
        except SolicitationRefused as e:
            return _Response(403, _errors("Unauthorized", str(e), ""))
        except (BadRequest, WrongMarketplace, KeyError) as e:
            return _solicitation_error(order_id, e)
        return _Response(201, {})     # the model's sandbox answer

    # Listings Items 2021-08-01 ------------------------------------------------------------
    def _listing_request(self, seller: str, query: dict[str, list[str]]) -> str | _Response:
        """The one marketplace id of a Listings Items call, or the error answer."""
        if seller != self.standin.seller_id:
            return _Response(403, _errors("Unauthorized", "Access to requested resource is denied.",
                                          f"sellerId {seller} is not the seller of this token."))
        ids = [x.strip() for v in query.get("marketplaceIds", []) for x in v.split(",") if x.strip()]
        # marketplaceIds: required, maxItems 1 (listingsItems_2021-08-01.json)
        if len(ids) != 1 or ids[0] not in KNOWN_MARKETPLACE_IDS:
            return _Response(400, _errors("BAD_REQUEST", "Invalid input",
                                          f"marketplaceIds must name exactly one known marketplace, not {ids}."))
        return ids[0]

    def _patch_listing(self, seller: str, sku: str, query: dict[str, list[str]], body: bytes) -> _Response:
        mp_id = self._listing_request(seller, query)
        if isinstance(mp_id, _Response):
            return mp_id
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _Response(400, _errors("BAD_REQUEST", "Invalid input", "The request body is not JSON."))
        try:
            return _Response(200, self.standin.listings.patch(sku, mp_id, data))
        except BadPatch as e:
            return _Response(400, _errors("BAD_REQUEST", "Invalid input", str(e)))

    def _get_listing(self, seller: str, sku: str, query: dict[str, list[str]]) -> _Response:
        mp_id = self._listing_request(seller, query)
        if isinstance(mp_id, _Response):
            return mp_id
        included = [x.strip() for v in query.get("includedData", []) for x in v.split(",") if x.strip()]
        unknown = [x for x in included if x not in LISTING_DATA]
        if unknown:
            return _Response(400, _errors("BAD_REQUEST", "Invalid input",
                                          f"includedData {unknown[0]} is not one of {', '.join(LISTING_DATA)}."))
        item = self.standin.listings.item(sku, mp_id, included or ["summaries"])
        if item is None:
            return _Response(404, _errors("NOT_FOUND", "Not found", f"The seller has no listing with SKU {sku}."))
        return _Response(200, item)

    # searchOrders -----------------------------------------------------------------------
    def _search(self, query: dict[str, list[str]], fault: Fault | None) -> _Response:
        try:
            return self._search_inner(query, fault)
        except BadRequest as e:
            return _Response(400, _errors("InvalidInput", e.message, e.details))

    def _search_inner(self, query: dict[str, list[str]], fault: Fault | None) -> _Response:
        mp = self.standin.marketplace
        snap = mp.snapshot()
        now = snap.now
        for key in query:
            if key not in KNOWN_SEARCH_PARAMS and key not in IGNORED_PARAMS:
                raise BadRequest(f"Unknown parameter: {key}.", f"{key} is not a searchOrders parameter.")
        params = _normalise(query)
        included = _included(query)
        size = 100
        if "maxResultsPerPage" in params:
            try:
                size = int(params["maxResultsPerPage"])
            except ValueError:
                size = -1
            if not 1 <= size <= 100:
                raise BadRequest("Invalid maxResultsPerPage: must be an integer between 1 and 100.",
                                 f"maxResultsPerPage={params['maxResultsPerPage']}")
        filters = {k: params[k] for k in FILTER_PARAMS if k in params}

        token = params.get("paginationToken")
        after_key: list[str] | None = None
        prev_key: list[str] | None = None
        offset = 0
        if token is not None:
            tok = _decode_page_token(token)
            if dt.datetime.fromisoformat(tok["t"]) + TOKEN_MAX_AGE < now:
                raise BadRequest("Invalid paginationToken: the token has expired.",
                                 "Pagination tokens are valid for 24 hours.")
            if tok["q"] != filters:
                changed = sorted(k for k in set(tok["q"]) | set(filters) if tok["q"].get(k) != filters.get(k))
                raise BadRequest(
                    f"Invalid paginationToken: parameter(s) {', '.join(changed)} differ from the original request.",
                    "Repeat every parameter of the original request with the same values; only "
                    "maxResultsPerPage and includedData may change.")
            before = dt.datetime.fromisoformat(tok["b"])
            after_key, prev_key, offset = tok["k"], tok.get("p"), tok["o"]
            issued = tok["t"]
            mode, after, _ = _validate_window(filters, now, allow_stale_before=True)
        else:
            mode, after, before = _validate_window(filters, now)
            issued = _key_iso(now)

        mps = _split(filters.get("marketplaceIds"))
        if len(mps) > 50:
            raise BadRequest("Invalid marketplaceIds: at most 50 marketplace ids are allowed.",
                             f"{len(mps)} marketplaceIds given")
        for m in mps:
            if m not in KNOWN_MARKETPLACE_IDS:
                raise BadRequest(f"Invalid marketplaceIds: unknown marketplace id {m}.", m)
        statuses = _split(filters.get("fulfillmentStatuses"))
        for st in statuses:
            if st not in FULFILLMENT_STATUSES:
                raise BadRequest(f"Invalid fulfillmentStatuses: {st} is not a valid value.",
                                 f"Valid values: {', '.join(FULFILLMENT_STATUSES)}")
        fby = _split(filters.get("fulfilledBy"))
        for f in fby:
            if f not in ("MERCHANT", "AMAZON"):
                raise BadRequest(f"Invalid fulfilledBy: {f} is not a valid value.", "Valid values: MERCHANT, AMAZON")

        by_created = mode == "created"
        ordered = snap.by_created if by_created else snap.by_updated
        keys = snap.created_keys if by_created else snap.updated_keys
        mp_set, st_set, fb_set = set(mps), set(statuses), set(fby)
        first = bisect.bisect_left(keys, (after, ""))

        def scan(from_key, limit: int, stop_key=None) -> list[tuple[tuple[dt.datetime, str], OrderState]]:
            """Matches after ``from_key`` in sort order (keyset pagination), at most ``limit``."""
            i = first if from_key is None else max(first, bisect.bisect_right(keys, from_key))
            out = []
            while i < len(keys):
                k = keys[i]
                if k[0] >= before or (stop_key is not None and k > stop_key):
                    break
                s = ordered[i]
                i += 1
                if mp_set and _mp_id(s) not in mp_set:
                    continue
                if st_set and s.status not in st_set:
                    continue
                if fb_set and s.order.fulfilled_by not in fb_set:
                    continue
                out.append((k, s))
                if limit and len(out) >= limit:
                    break
            return out

        after_k = _key(after_key)
        page = scan(after_k, size + 1)
        has_more = len(page) > size
        page = page[:size]
        body: dict[str, Any]
        if fault is not None and after_k is not None:
            # duplicate_page: serve the previous page again, and hand back the token just received,
            # so the client asks for this page next and sees the previous one twice, missing none.
            shown = scan(_key(prev_key), 0, stop_key=after_k)
            body = {"orders": [snap.rendered(s, included) for _, s in shown],
                    "pagination": {"nextToken": token}}
            body["createdBefore" if by_created else "lastUpdatedBefore"] = _iso(before)
            return _Response(200, body)

        body = {"orders": [snap.rendered(s, included) for _, s in page]}
        if has_more:
            last_key = page[-1][0]
            body["pagination"] = {"nextToken": _encode_page_token({
                "q": filters, "b": _key_iso(before), "t": issued, "o": offset + len(page),
                "k": [_key_iso(last_key[0]), last_key[1]], "p": after_key,
            })}
        body["createdBefore" if by_created else "lastUpdatedBefore"] = _iso(before)
        return _Response(200, body)

    # admin ------------------------------------------------------------------------------
    def _admin(self, method: str, path: str, body: bytes) -> _Response:
        s = self.standin
        try:
            data = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError:
            return _Response(400, {"error": "body is not JSON"})
        sub = path[len("/_standin"):]
        try:
            if method == "GET" and sub == "/stats":
                return _Response(200, s.stats())
            if method == "GET" and sub == "/now":
                return _Response(200, {"now": _iso(s.now())})
            if method == "GET" and sub == "/catalogue.csv":
                return _Response(200, s.catalogue_csv(), content_type="text/csv; charset=utf-8")
            if method == "GET" and sub == "/catalogue":
                return _Response(200, {"catalogue": [{**r, "price": str(r["price"])} for r in s.catalogue()]})
            if method == "GET" and sub == "/orders":
                return _Response(200, {"orderIds": s.order_ids()})
            if method == "GET" and sub == "/visible":
                return _Response(200, {"orders": s.visible_orders()})
            if method == "GET" and sub == "/shipments":
                wanted = parse_qs(urlsplit(self.path).query).get("orderId", [None])[-1]
                return _Response(200, {"shipments": s.shipments(wanted)})
            if method == "GET" and sub == "/invoices":
                wanted = parse_qs(urlsplit(self.path).query).get("orderId", [None])[-1]
                shown = []
                for inv in s.invoices(wanted):
                    pdf = inv.pop("pdf")
                    shown.append({**inv, "pdf_sha256": hashlib.sha256(pdf).hexdigest()})
                return _Response(200, {"invoices": shown})
            if method == "GET" and sub == "/listings":
                patches = [{**p, "at": _iso(p["at"])} for p in s.listings.patches]
                return _Response(200, {"quantities": s.listing_quantities(), "patches": patches})
            if method == "GET" and sub == "/solicitations":
                return _Response(200, {"solicitations": s.solicitations()})
            if method == "GET" and sub == "/credentials":
                return _Response(200, {"client_id": s.client_id, "client_secret": s.client_secret,
                                       "refresh_token": s.refresh_token, "url": s.url, "lwa_url": s.lwa_url})
            if method == "POST" and sub == "/advance":
                delta = dt.timedelta(days=float(data.get("days", 0)), hours=float(data.get("hours", 0)),
                                     minutes=float(data.get("minutes", 0)), seconds=float(data.get("seconds", 0)))
                return _Response(200, {"now": _iso(s.advance(delta))})
            if method == "POST" and sub == "/faults":
                f = s.add_fault(Fault(**data))
                return _Response(200, {"fault": asdict(f)})
            if method == "DELETE" and sub == "/faults":
                s.clear_faults()
                return _Response(200, {"cleared": True})
            if method == "POST" and sub.startswith("/orders/"):
                order_id = unquote(sub[len("/orders/"):])
                try:
                    order = s.change_order(order_id, **data)
                except KeyError:
                    return _Response(404, {"error": f"unknown order {order_id}"})
                return _Response(200, {"order": order})
        except (TypeError, ValueError) as e:
            return _Response(400, {"error": str(e)})
        return _Response(404, {"error": f"no admin route {method} {path}"})


class _Hang(Exception):
    """Raised to drop the connection without an answer."""


# --------------------------------------------------------------------------- helpers
def _normalise(query: dict[str, list[str]]) -> dict[str, str]:
    out = {}
    for k, values in query.items():
        if k in IGNORED_PARAMS:
            continue
        if k in ARRAY_PARAMS:
            items = [x.strip() for v in values for x in v.split(",") if x.strip()]
            out[k] = ",".join(sorted(dict.fromkeys(items))) if k != "includedData" else ",".join(items)
        else:
            out[k] = values[-1]
    return out


def _split(value: str | None) -> list[str]:
    return [x for x in (value or "").split(",") if x]


def _included(query: dict[str, list[str]]) -> frozenset[str]:
    values = [x.strip() for v in query.get("includedData", []) for x in v.split(",") if x.strip()]
    for v in values:
        if v not in ALL_INCLUDED:
            raise BadRequest(f"Invalid includedData: {v} is not a valid value.",
                             f"Valid values: {', '.join(ALL_INCLUDED)}")
    return frozenset(values)


def _validate_window(filters: dict[str, str], now: dt.datetime, allow_stale_before: bool = False):
    ca, cb = filters.get("createdAfter"), filters.get("createdBefore")
    ua, ub = filters.get("lastUpdatedAfter"), filters.get("lastUpdatedBefore")
    if (ca is None) == (ua is None):
        raise BadRequest("Exactly one of createdAfter and lastUpdatedAfter must be provided.",
                         "createdAfter, lastUpdatedAfter")
    if ca is not None and (ub is not None):
        raise BadRequest("lastUpdatedBefore cannot be combined with createdAfter.", "lastUpdatedBefore")
    if ua is not None and (cb is not None):
        raise BadRequest("createdBefore cannot be combined with lastUpdatedAfter.", "createdBefore")
    mode = "created" if ca is not None else "updated"
    a_name, b_name = ("createdAfter", "createdBefore") if mode == "created" else ("lastUpdatedAfter",
                                                                                   "lastUpdatedBefore")
    after = _parse_time(a_name, ca if mode == "created" else ua)
    b_raw = cb if mode == "created" else ub
    latest = now - MIN_BEFORE_GAP
    if after > latest and not allow_stale_before:
        raise BadRequest(f"Invalid {a_name}: must be at least 2 minutes before the time of the request.",
                         f"{a_name}={_iso(after)}, now={_iso(now)}")
    if b_raw is None:
        before = latest
    else:
        before = _parse_time(b_name, b_raw)
        if before < after:
            raise BadRequest(f"Invalid {b_name}: must be equal to or after {a_name}.", f"{b_name}={b_raw}")
        if before > latest and not allow_stale_before:
            raise BadRequest(f"Invalid {b_name}: must be at least 2 minutes before the time of the request.",
                             f"{b_name}={b_raw}, now={_iso(now)}")
    return mode, after, before


# Feeds and Solicitations --------------------------------------------------------------------
def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("Invalid input", "The request body is not JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest("Invalid input", "The request body must be a JSON object.")
    return data


def _feed_refused(details: str) -> _Response:
    # Code and message of the model's sandbox 400s for createFeedDocument, createFeed and getFeed.
    return _Response(400, _errors("400", "Invalid input", details))


def _s3_error(status: int, code: str, message: str) -> _Response:
    root = ET.Element("Error")
    ET.SubElement(root, "Code").text = code
    ET.SubElement(root, "Message").text = message
    ET.SubElement(root, "RequestId").text = uuid.uuid4().hex[:16].upper()
    return _Response(status, raw=ET.tostring(root, encoding="UTF-8", xml_declaration=True),
                     content_type="application/xml")


def _one_marketplace(query: dict[str, list[str]]) -> str:
    """The one marketplace id of a Solicitations call (solicitations.json: maxItems 1); raises BadRequest."""
    ids = [x.strip() for v in query.get("marketplaceIds", []) for x in v.split(",") if x.strip()]
    if len(ids) != 1:
        raise BadRequest("Invalid marketplaceIds: exactly one marketplace id is required.", f"{len(ids)} given")
    if ids[0] not in KNOWN_MARKETPLACE_IDS:
        raise BadRequest(f"Invalid marketplaceIds: unknown marketplace id {ids[0]}.", ids[0])
    return ids[0]


def _solicitation_error(order_id: str, exc: Exception) -> _Response:
    if isinstance(exc, KeyError):
        return _Response(404, _errors("NotFound", f"Order {order_id} not found.",
                                      "The requested order does not exist or is not visible yet."))
    if isinstance(exc, BadRequest):
        return _Response(400, _errors("InvalidInput", exc.message, exc.details))
    return _Response(400, _errors("InvalidInput", "Invalid Input", str(exc)))


# confirmShipment body ---------------------------------------------------------------------
# Amazon's carrierCode values come from the CarrierCode enumeration in its feeds XSD
# (amzn-base.xsd), which is not in our reference; this list is the stand-in's assumption: the
# codes a merchant shipping from Germany to DE/FR/IT/ES uses, plus "Other" (then carrierName
# is required, ordersV0.json PackageDetail.carrierName). Codes are compared exactly.
CARRIER_CODES = frozenset({
    "DHL", "Deutsche Post", "DPD", "GLS", "Hermes", "UPS", "FedEx", "TNT", "Other",
    "Amazon Shipping", "DB Schenker", "Trans-o-flex", "Rieck", "Chronopost", "Colissimo", "La Poste",
    "BRT", "Poste Italiane", "SDA", "Correos", "SEUR", "Royal Mail",
})
INVALID_INPUT = "Invalid Input"     # code and message of Amazon's confirmShipment 400 sample
# ISO 8601 date and time ("format": "date-time" in PackageDetail.shipDate); a date alone or
# Amazon's bad sample "02/21/2022" does not match. No offset means UTC.
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$")
_REQUIRED_DETAIL = ("packageReferenceId", "carrierCode", "trackingNumber", "shipDate", "orderItems")


def _shipment_request(body: bytes) -> dict[str, Any]:
    """The ConfirmShipmentRequest normalised for Marketplace.confirm_shipment; raises BadRequest
    (details name the field) for what the model itself rules out."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest(INVALID_INPUT, "The request body is not JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest(INVALID_INPUT, "The request body must be a ConfirmShipmentRequest object.")
    for key in ("marketplaceId", "packageDetail"):
        if key not in data:
            raise BadRequest(INVALID_INPUT, f"{key} is required.")
    marketplace_id = data["marketplaceId"]
    if not isinstance(marketplace_id, str) or not marketplace_id:
        raise BadRequest(INVALID_INPUT, "marketplaceId must be a marketplace id.")
    cod = data.get("codCollectionMethod")
    if cod is not None:
        raise BadRequest(INVALID_INPUT, "codCollectionMethod is only supported in the JP marketplace.")
    d = data["packageDetail"]
    if not isinstance(d, dict):
        raise BadRequest(INVALID_INPUT, "packageDetail must be an object.")
    for key in _REQUIRED_DETAIL:
        if d.get(key) is None or d.get(key) == "":
            raise BadRequest(INVALID_INPUT, f"packageDetail.{key} is required.")
    text = {}
    for key in ("packageReferenceId", "carrierCode", "carrierName", "shippingMethod", "trackingNumber",
                "shipDate", "shipFromSupplySourceId"):
        value = d.get(key, "")
        if not isinstance(value, str):
            raise BadRequest(INVALID_INPUT, f"packageDetail.{key} must be a string, not {value!r}.")
        text[key] = value.strip()
    ref = text["packageReferenceId"]
    if not ref.isascii() or not ref.isdigit() or int(ref) <= 0:
        raise BadRequest(INVALID_INPUT, f"packageDetail.packageReferenceId {ref!r} is not a positive number.")
    code = text["carrierCode"]
    if code not in CARRIER_CODES:
        raise BadRequest(INVALID_INPUT, f"packageDetail.carrierCode {code!r} is not a valid carrier code.")
    if code == "Other" and not text["carrierName"]:
        raise BadRequest(INVALID_INPUT, "packageDetail.carrierName is required when carrierCode is 'Other'.")
    if not text["trackingNumber"]:
        raise BadRequest(INVALID_INPUT, "packageDetail.trackingNumber is required.")
    raw_date = text["shipDate"]
    ship: dt.datetime | None = None
    if _DATE_TIME.match(raw_date):
        try:
            ship = dt.datetime.fromisoformat(raw_date)
        except ValueError:
            ship = None
    if ship is None:
        raise BadRequest(INVALID_INPUT, f"packageDetail.shipDate {raw_date!r} is not an ISO 8601 date-time.")
    if ship.tzinfo is None:
        ship = ship.replace(tzinfo=UTC)
    items = d["orderItems"]
    if not isinstance(items, list) or not items:
        raise BadRequest(INVALID_INPUT, "packageDetail.orderItems must list at least one item.")
    seen: set[str] = set()
    normal = []
    for i, it in enumerate(items):
        where = f"packageDetail.orderItems[{i}]"
        if not isinstance(it, dict):
            raise BadRequest(INVALID_INPUT, f"{where} must be an object.")
        item_id, qty, codes = it.get("orderItemId"), it.get("quantity"), it.get("transparencyCodes") or []
        if not isinstance(item_id, str) or not item_id:
            raise BadRequest(INVALID_INPUT, f"{where}.orderItemId is required.")
        if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
            raise BadRequest(INVALID_INPUT, f"{where}.quantity must be a whole number of at least 1, not {qty!r}.")
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise BadRequest(INVALID_INPUT, f"{where}.transparencyCodes must be a list of strings.")
        # Not documented by Amazon; the stand-in wants each item once per package.
        if item_id in seen:
            raise BadRequest(INVALID_INPUT, f"{where}.orderItemId {item_id} appears twice in the package.")
        seen.add(item_id)
        normal.append((item_id, qty, tuple(codes)))
    return {
        "marketplaceId": marketplace_id, "packageReferenceId": int(ref), "carrierCode": code,
        "carrierName": text["carrierName"], "shippingMethod": text["shippingMethod"],
        "trackingNumber": text["trackingNumber"], "shipDate": ship.astimezone(UTC),
        "shipFromSupplySourceId": text["shipFromSupplySourceId"], "orderItems": tuple(normal),
    }


REPORT_FILTERS = ("reportTypes", "processingStatuses", "marketplaceIds", "createdSince", "createdUntil")
REPORT_STATUSES = ("CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE")
REPORT_RETENTION = dt.timedelta(days=90)   # "Reports are retained for a maximum of 90 days."
FEED_FILTERS = ("feedTypes", "processingStatuses", "marketplaceIds", "createdSince", "createdUntil")
FEED_STATUSES = ("CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE")
FEED_RETENTION = dt.timedelta(days=90)     # "Feeds are retained for a maximum of 90 days."


def _query_list(query: dict[str, list[str]], name: str, max_items: int | None) -> list[str]:
    # An array parameter comes comma-separated (the model's default collection format, and what
    # python-amazon-sp-api makes of getReports' lists) or as the key repeated (what it sends for
    # getFeeds' lists, which it hands to httpx unchanged); both are read.
    items = [x.strip() for v in query.get(name, []) for x in v.split(",") if x.strip()]
    if name in query and not items:
        raise BadRequest(f"Invalid {name}: at least one value is required.", name)
    if max_items is not None and len(items) > max_items:
        raise BadRequest(f"Invalid {name}: at most {max_items} values are allowed.", f"{len(items)} given")
    return items


def _known_params(query: dict[str, list[str]], filters: tuple[str, ...], operation: str) -> None:
    known = set(filters) | {"pageSize", "nextToken"} | IGNORED_PARAMS
    for key in query:
        if key not in known:
            raise BadRequest(f"Unknown parameter: {key}.", f"{key} is not a {operation} parameter.")


def _next_token_alone(query: dict[str, list[str]], operation: str) -> dict[str, Any] | None:
    """The state a nextToken carries, None without one; raises BadRequest when other parameters
    come with it or the token is not one of ``operation``'s."""
    token = query.get("nextToken", [None])[-1]
    if token is None:
        return None
    others = sorted(k for k in query if k != "nextToken")
    if others:
        # "Specifying nextToken with any other parameters will cause the request to fail."
        raise BadRequest("Invalid input: nextToken must be the only parameter.", ", ".join(others))
    return _decode_listing_token(token, operation)


def _statuses(query: dict[str, list[str]], valid: tuple[str, ...]) -> list[str]:
    statuses = _query_list(query, "processingStatuses", None)
    for st in statuses:
        if st not in valid:
            raise BadRequest(f"Invalid processingStatuses: {st} is not a valid value.",
                             f"Valid values: {', '.join(valid)}")
    return statuses


def _page_size(query: dict[str, list[str]]) -> int:
    raw_size = query.get("pageSize", ["10"])[-1]
    try:
        size = int(raw_size)
    except ValueError:
        size = 0
    if not 1 <= size <= 100:
        raise BadRequest("Invalid pageSize: must be an integer between 1 and 100.", f"pageSize={raw_size}")
    return size


def _list_page(items: list[dict[str, Any]], query: dict[str, list[str]], now: dt.datetime, *, op: str,
               known: Any, types_key: str, statuses: Any, retention: dt.timedelta,
               parse: Callable[[str, str], dt.datetime], ordered: bool, list_key: str, type_key: str,
               id_key: str) -> dict[str, Any]:
    """One page of getReports or getFeeds: the filters of the first call (or the state a
    nextToken carries), then keyset pages; raises BadRequest like the models' 400s."""
    _known_params(query, known, op)
    state = _next_token_alone(query, op)
    if state is not None:
        filters, size, last = state["q"], state["n"], state["k"]
    else:
        types = _query_list(query, types_key, 10)
        if not types:
            raise BadRequest(f"Either {types_key} or nextToken is required.", types_key)
        allowed = _statuses(query, statuses)
        size = _page_size(query)
        since_raw, until_raw = query.get("createdSince", [None])[-1], query.get("createdUntil", [None])[-1]
        since = parse("createdSince", since_raw) if since_raw else now - retention
        until = parse("createdUntil", until_raw) if until_raw else now
        if ordered and since > until:
            raise BadRequest("Invalid createdSince: must be equal to or before createdUntil.",
                             f"createdSince={_iso(since)}, createdUntil={_iso(until)}")
        filters = {"t": types, "s": allowed, "m": _query_list(query, "marketplaceIds", 10),
                   "a": _key_iso(since), "b": _key_iso(until)}
        last = None
    page, last_key = _created_page(items, filters, size, last, now - retention, type_key, id_key)
    body: dict[str, Any] = {list_key: page}
    if last_key is not None:
        body["nextToken"] = _encode_page_token({"o": op, "q": filters, "n": size, "k": last_key})
    return body


def _reports_page(reports: list[dict[str, Any]], query: dict[str, list[str]], now: dt.datetime) -> dict[str, Any]:
    """One page of getReports (reports_2021-06-30.json); raises BadRequest like the model's 400."""
    return _list_page(reports, query, now, op="getReports", known=REPORT_FILTERS, types_key="reportTypes",
                      statuses=REPORT_STATUSES, retention=REPORT_RETENTION, parse=_parse_time, ordered=False,
                      list_key="reports", type_key="reportType", id_key="reportId")


def _date_time(name: str, value: str) -> dt.datetime:
    # The model's format is date-time, with a "T" between date and time; str() of a Python
    # datetime, which httpx sends when a client passes one as is, has a space there.
    if not _DATE_TIME.match(value.strip()):
        raise BadRequest(f"Invalid {name}: '{value}' is not an ISO 8601 date-time.",
                         f"{name} must be an ISO 8601 date-time, e.g. 2026-11-24T00:00:00Z.")
    return _parse_time(name, value)


def _feeds_page(feeds: list[dict[str, Any]], query: dict[str, list[str]], now: dt.datetime) -> dict[str, Any]:
    """One page of getFeeds (feeds_2021-06-30.json), the feeds as getFeed shows them; raises
    BadRequest for parameters the model rules out."""
    return _list_page(feeds, query, now, op="getFeeds", known=FEED_FILTERS, types_key="feedTypes",
                      statuses=FEED_STATUSES, retention=FEED_RETENTION, parse=_date_time, ordered=True,
                      list_key="feeds", type_key="feedType", id_key="feedId")


def _created_page(items: list[dict[str, Any]], filters: dict[str, Any], size: int, last: list[str] | None,
                  oldest: dt.datetime, type_key: str, id_key: str) -> tuple[list[dict[str, Any]], list[str] | None]:
    """The page of getReports or getFeeds after the item whose (createdTime, id) is ``last``, and
    the key of its last item when more follow (None when not). Newest first is the stand-in's
    choice: neither model says an order. Keyset pages, so an item added between two calls does
    not shift them."""
    since, until = dt.datetime.fromisoformat(filters["a"]), dt.datetime.fromisoformat(filters["b"])
    matching = []
    for r in items:
        created = dt.datetime.fromisoformat(r["createdTime"].replace("Z", "+00:00"))
        if not (max(since, oldest) <= created <= until) or r[type_key] not in filters["t"]:
            continue
        if filters["s"] and r["processingStatus"] not in filters["s"]:
            continue
        if filters["m"] and not set(filters["m"]) & set(r.get("marketplaceIds", [])):
            continue
        key = [_key_iso(created), r[id_key]]
        if last is not None and (key[0], key[1]) >= (last[0], last[1]):
            continue
        matching.append((key, r))
    matching.sort(key=lambda kr: (kr[0][0], kr[0][1]), reverse=True)
    page = matching[:size]
    return [r for _, r in page], (page[-1][0] if len(matching) > size else None)


def _decode_listing_token(token: str, operation: str) -> dict[str, Any]:
    try:
        data = _decode_page_token(token)
    except BadRequest:
        raise BadRequest("Invalid nextToken.", "The token is malformed.") from None
    if not isinstance(data, dict) or not {"q", "n", "k"} <= set(data):
        raise BadRequest("Invalid nextToken.", "The token is malformed.")
    if data.get("o") != operation:
        raise BadRequest("Invalid nextToken.", f"The token is not one of {operation}.")
    return data


def _encode_page_token(data: dict[str, Any]) -> str:
    payload = _b64e(json.dumps(data, separators=(",", ":")).encode())
    return f"{payload}.{_sign(payload)}"


def _decode_page_token(token: str) -> dict[str, Any]:
    payload, _, sig = token.rpartition(".")
    if not payload or not hmac.compare_digest(sig, _sign(payload)):
        raise BadRequest("Invalid paginationToken.", "The pagination token is malformed.")
    try:
        return json.loads(_b64d(payload))
    except (ValueError, json.JSONDecodeError):
        raise BadRequest("Invalid paginationToken.", "The pagination token is malformed.") from None


def _key(key: list[str] | None) -> tuple[dt.datetime, str] | None:
    return None if key is None else (dt.datetime.fromisoformat(key[0]), key[1])


def _mp_id(s: OrderState) -> str:
    return MARKETPLACES[s.order.country][0]


__all__ = ["AmazonStandin", "Fault"]
