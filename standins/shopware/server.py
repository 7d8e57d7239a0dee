"""HTTP side of the Shopware 6 Admin API stand-in: OAuth, order search, state transitions, tracking
codes, faults and a record of what it was asked to do. Standard library only
(``http.server.ThreadingHTTPServer`` in a daemon thread), like the Amazon stand-in.

Routes, and where each behaviour comes from
    POST /api/oauth/token
        ``{"grant_type": "client_credentials", "client_id", "client_secret"}`` (JSON or form) ->
        ``{"token_type": "Bearer", "expires_in": 600, "access_token"}``: an integration's access
        key (Settings > System > Integrations) with this grant (forum.shopware.com/t/
        admin-api-access/65882; the npm client shopware-admin-api-client ``createFromIntegration``
        keeps the token ``expires_in`` seconds). 600 s is the lifetime Shopware gives its access
        tokens (``expires_in`` of its answers; not a documented constant, the stand-in's choice
        within it, settable per stand-in). Wrong credentials: 401; another grant: 400 (the
        error bodies' wording is the stand-in's).
    POST /api/search/order  (Accept: application/json; ``Authorization: Bearer``)
        A Criteria body (the filter, sort and association schema of @shopware/api-client's
        ``api-types/adminApiSchema.overrides.json``): ``filter`` (equals, equalsAny, contains,
        prefix, suffix, range with gt/gte/lt/lte, multi and not with AND/OR), ``sort``
        ([{field, order}], NULLs first ascending as in MySQL), ``page``/``limit`` (offset paging,
        page 1-based), ``total-count-mode`` (0/"none": total is the page's count, 1/"exact",
        2/"next-pages"), ``associations`` (nested ``{"name": {"associations": {...}}}``). Field
        paths may cross to-many associations (``deliveries.updatedAt``): a row matches when any
        element does (the DAL joins). Answer ``{"total", "data", "aggregations"}`` with the
        entities in the plain JSON shape (not JSON:API). An association not asked for is null;
        since 6.6 that includes every ``stateMachineState`` (shopware/shopware issue #3717:
        "You have to reference that association explicitly now in the request body associations
        key"). Unknown filter types, fields or associations of ``order`` get 400 (wording and
        code are the stand-in's); ``limit`` above 500 too (Shopware's ``shopware.api.max_limit``
        is a setting; 500 is the stand-in's).
    POST /api/_action/order/{id}/state/{transition}
    POST /api/_action/order_delivery/{id}/state/{transition}
    POST /api/_action/order_transaction/{id}/state/{transition}
        The Admin API's order state routes (OrderActionController; listed with their bodies in
        carstenkiefer/sw6apiclient docs/Api/OrderManagementApi.md). States and moves of
        src/Core/Migration/V6_3/Migration1536233560BasicData.php with the action names of
        src/Core/System/StateMachine/Aggregation/StateMachineTransition/StateMachineTransitionActions.php
        and the states of OrderTransactionStates.php (see ``shop.TRANSITIONS``). Body optional
        (``sendMail``, ``documentIds``, ``internalComment``...; recorded). 200 with the new
        state; an impossible move 400 ``SYSTEM__ILLEGAL_STATE_TRANSITION`` naming the possible
        ones; a move to the state it is in already 200 and no change (changelog
        release-6-4-4-0 "Unnecessary transitions won't fail any more"); an unknown id 404.
    PATCH /api/order-delivery/{id}   ``{"trackingCodes": [...]}`` -> 204 (the generic entity
        write route; ``trackingCodes`` is a list field of the order_delivery entity). Other
        fields are refused: the stand-in writes nothing else.
    POST /api/search/product, PATCH /api/product/{id}
        The products and their ``stock`` (products.py): the stock push finds a product by its
        ``productNumber`` and writes ``{"stock": n}``.

Rate limits and faults
    Shopware itself rate-limits only logins (``shopware.api.rate_limiter``: the oauth token route),
    but shops sit behind proxies and hosters that answer 429 with ``Retry-After``. ``Fault``s
    make the next ``count`` matching requests fail: ``status`` (500/502/503), ``throttle`` (429
    with Retry-After ``retry_after`` seconds), ``slow`` (answer after ``delay`` seconds),
    ``malformed`` (half a JSON body, 200).

Admin (no auth): GET /_standin/stats, /_standin/transitions, /_standin/products, /_standin/now;
POST /_standin/advance {"hours": 2}.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..http import HttpStandin, StandinHandler
from .products import BadProductRequest, Products
from .shop import IllegalTransition, Shop

TOKEN_PATH = "/api/oauth/token"
SEARCH_PATH = "/api/search/order"
ACTION_PATH = re.compile(r"^/api/_action/(order|order_delivery|order_transaction)/([0-9a-f]{32})/state/([a-z_]+)$")
DELIVERY_PATH = re.compile(r"^/api/order-delivery/([0-9a-f]{32})$")
PRODUCT_SEARCH_PATH = "/api/search/product"
PRODUCT_PATH = re.compile(r"^/api/product/([0-9a-f]{32})$")
OPERATIONS = ("token", "searchOrder", "transition", "patchDelivery", "searchProduct", "patchProduct")
FAULT_KINDS = ("status", "throttle", "slow", "malformed")
MAX_LIMIT = 500
TOKEN_LIFETIME = 600
_SIGNING_KEY = b"caturactl-shopware-standin"  # not a secret: it only makes tokens tamper-evident

# Order fields a criteria may name (first segment of a path), and the associations it may load.
ASSOCIATIONS: dict[str, dict] = {
    "lineItems": {}, "orderCustomer": {}, "currency": {}, "stateMachineState": {}, "salesChannel": {},
    "billingAddress": {"country": {}, "countryState": {}}, "addresses": {"country": {}, "countryState": {}},
    "deliveries": {"shippingOrderAddress": {"country": {}, "countryState": {}}, "stateMachineState": {},
                   "shippingMethod": {}},
    "transactions": {"paymentMethod": {}, "stateMachineState": {}},
}
SCALAR_FIELDS = {"id", "versionId", "orderNumber", "salesChannelId", "orderDateTime", "orderDate", "createdAt",
                 "updatedAt", "currencyId", "currencyFactor", "languageId", "billingAddressId", "price", "amountTotal",
                 "amountNet", "positionPrice", "taxStatus", "shippingCosts", "shippingTotal", "customerComment",
                 "affiliateCode", "campaignCode", "deepLinkCode", "stateId"}


@dataclass
class Fault:
    """A misbehaviour for the next ``count`` requests of ``operation`` (one of OPERATIONS or "*")."""
    operation: str
    kind: str
    count: int = 1
    status: int = 500
    delay: float = 0.0
    retry_after: float = 1.0

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.operation not in OPERATIONS + ("*",):
            raise ValueError(f"unknown operation {self.operation!r}; expected one of {OPERATIONS} or '*'")


class BadCriteria(ValueError):
    pass


def _errors(status: int, code: str, detail: str, title: str = "") -> dict[str, Any]:
    return {"errors": [{"status": str(status), "code": code, "title": title or _TITLES.get(status, "Error"),
                        "detail": detail}]}


def _not_found(entity: str, entity_id: str) -> tuple[int, dict[str, Any]]:
    """Shopware's answer to a write or transition of an entity that is not there."""
    return 404, _errors(404, "FRAMEWORK__ENTITY_NOT_FOUND",
                        f'Could not find entity for "{entity}" with id "{entity_id}".')


_TITLES = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class ShopwareStandin(HttpStandin):
    """A local Shopware 6 Admin API for tests, demos and benchmarks."""

    def __init__(self, orders: int = 120, seed: int = 1, day: dt.date | str | None = None,
                 client_id: str = "SWIASTANDINCLIENT", client_secret: str = "standin-shop-secret",
                 host: str = "127.0.0.1", port: int = 0, token_lifetime: int = TOKEN_LIFETIME,
                 start: dt.datetime | None = None, clock: Any = None):
        super().__init__(host, port, handler=_Handler, thread_name="shopware-standin")
        if isinstance(day, str):
            day = dt.date.fromisoformat(day)
        self.shop = Shop(orders=orders, seed=seed, day=day, start=start, clock=clock)
        self.products = Products(self.shop.now, seed)
        self.client_id, self.client_secret = client_id, client_secret
        self.token_lifetime = token_lifetime
        self._calls = {op: 0 for op in OPERATIONS}
        self._throttled = 0

    # shop controls -------------------------------------------------------------------------------
    @property
    def clock(self):
        """The shop's clock; tests install it as the app's clock (caturactl.core.clock)."""
        return self.shop.clock

    def now(self) -> dt.datetime:
        return self.shop.now()

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        return self.shop.advance(delta)

    def visible_orders(self) -> list[dict[str, Any]]:
        return self.shop.visible()

    def catalogue_csv(self) -> str:
        return self.shop.catalogue_csv()

    def transitions(self, entity: str | None = None) -> list[dict[str, Any]]:
        """Every state transition received (each: entity, id, order_id, order_number, transition,
        from, to, at, tracking_codes at that moment, body), oldest first."""
        return [dict(t) for t in self.shop.transitions if entity is None or t["entity"] == entity]

    def product_stock(self) -> dict[str, int]:
        """Every product's stock, by productNumber (our SKU)."""
        return self.products.stock()

    def tracking_patches(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self.shop.patches]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": dict(self._calls), "throttled": self._throttled}

    # internals -----------------------------------------------------------------------------------
    def _take_fault(self, op: str) -> Fault | None:
        with self._lock:
            self._calls[op] += 1
            for f in self._faults:
                if f.operation in (op, "*"):
                    f.count -= 1
                    if f.count <= 0:
                        self._faults.remove(f)
                    if f.kind == "throttle":
                        self._throttled += 1
                    return f
        return None

    def _issue_token(self) -> str:
        payload = f"{self.client_id}:{int(time.time()) + self.token_lifetime}:{uuid.uuid4().hex[:8]}"
        sig = hmac.new(_SIGNING_KEY, payload.encode(), hashlib.sha256).hexdigest()[:24]
        return f"{payload}.{sig}"

    def _token_valid(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        token = header[7:]
        payload, _, sig = token.rpartition(".")
        if not hmac.compare_digest(sig, hmac.new(_SIGNING_KEY, payload.encode(), hashlib.sha256).hexdigest()[:24]):
            return False
        try:
            client, expires, _ = payload.split(":")
            return client == self.client_id and int(expires) > time.time()
        except ValueError:
            return False


class _Handler(StandinHandler):
    standin: ShopwareStandin

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
              raw: bytes | None = None) -> None:
        data = raw if raw is not None else (b"" if body is None else
                                            json.dumps(body, ensure_ascii=False, default=str).encode())
        self._answer(status, data, "application/json", headers or {})

    def _dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        body = self._read_body()
        try:
            if path.startswith("/_standin"):
                return self._admin(method, path, body)
            if path == TOKEN_PATH:
                op, run = "token", lambda: self._token(body)
            elif path == SEARCH_PATH and method == "POST":
                op, run = "searchOrder", lambda: self._search(body)
            elif (m := ACTION_PATH.match(path)) and method == "POST":
                op, run = "transition", lambda: self._transition(m.group(1), m.group(2), unquote(m.group(3)), body)
            elif (m := DELIVERY_PATH.match(path)) and method == "PATCH":
                op, run = "patchDelivery", lambda: self._patch_delivery(m.group(1), body)
            elif path == PRODUCT_SEARCH_PATH and method == "POST":
                op, run = "searchProduct", lambda: self._search_products(body)
            elif (m := PRODUCT_PATH.match(path)) and method == "PATCH":
                op, run = "patchProduct", lambda: self._patch_product(m.group(1), body)
            else:
                return self._send(404, _errors(404, "FRAMEWORK__ROUTE_NOT_FOUND", f"No route found for {method} {path}"))
            s = self.standin
            fault = s._take_fault(op)
            if fault is not None:
                if fault.kind == "status":
                    return self._send(fault.status, _errors(fault.status, "FRAMEWORK__INTERNAL", "stand-in fault"))
                if fault.kind == "throttle":
                    return self._send(429, _errors(429, "FRAMEWORK__RATE_LIMIT_EXCEEDED", "Too many requests"),
                                      {"Retry-After": f"{fault.retry_after:g}"})
                if fault.kind == "slow":
                    s.hold(fault.delay)
            if op != "token" and not s._token_valid(self.headers.get("Authorization")):
                return self._send(401, _errors(401, "FRAMEWORK__UNAUTHORIZED",
                                               "The resource owner or authorization server denied the request."))
            status, out = run()
            if fault is not None and fault.kind == "malformed" and status == 200:
                good = json.dumps(out).encode()
                return self._send(200, raw=good[: max(1, len(good) // 2)])
            self._send(status, out)
        except Exception as exc:  # pragma: no cover - a stand-in bug must show, not hang the client
            self._send(500, _errors(500, "STANDIN__BUG", repr(exc)))

    # OAuth ---------------------------------------------------------------------------------------
    def _token(self, body: bytes) -> tuple[int, Any]:
        s = self.standin
        try:
            form = json.loads(body or b"{}")
        except ValueError:
            form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if not isinstance(form, dict) or form.get("grant_type") != "client_credentials":
            return 400, {"errors": [{"code": "2", "status": "400", "title": "The authorization grant type is not "
                                     "supported by the authorization server.", "detail": "unsupported_grant_type"}]}
        if form.get("client_id") != s.client_id or form.get("client_secret") != s.client_secret:
            return 401, {"errors": [{"code": "6", "status": "401", "title": "Client authentication failed",
                                     "detail": "invalid_client"}]}
        return 200, {"token_type": "Bearer", "expires_in": s.token_lifetime, "access_token": s._issue_token()}

    # search --------------------------------------------------------------------------------------
    def _search(self, body: bytes) -> tuple[int, Any]:
        try:
            criteria = json.loads(body or b"{}")
            if not isinstance(criteria, dict):
                raise BadCriteria("the criteria must be a JSON object")
            rows = self.standin.shop.visible()
            flt = criteria.get("filter") or []
            if not isinstance(flt, list):
                raise BadCriteria("filter must be a list")
            rows = [r for r in rows if all(_matches(r, f) for f in flt)]
            rows = _sorted(rows, criteria.get("sort") or [])
            page, limit = _int(criteria, "page", 1), _int(criteria, "limit", 25)
            if page < 1 or not 1 <= limit <= MAX_LIMIT:
                raise BadCriteria(f"page must be >= 1 and limit 1..{MAX_LIMIT}")
            mode = criteria.get("total-count-mode", 0)
            mode = {"none": 0, "exact": 1, "next-pages": 2}.get(mode, mode)
            offset = (page - 1) * limit
            data = rows[offset: offset + limit]
            total = {1: len(rows), 2: offset + min(len(rows) - offset, limit * 5 + 1)}.get(mode, len(data))
            assoc = criteria.get("associations") or {}
            _check_associations(assoc, ASSOCIATIONS, "associations")
            return 200, {"total": total, "data": [_prune(r, assoc, ASSOCIATIONS) for r in data],
                         "aggregations": []}
        except (BadCriteria, ValueError) as exc:
            return 400, _errors(400, "FRAMEWORK__INVALID_CRITERIA_PARAMETERS", str(exc))

    # transitions ---------------------------------------------------------------------------------
    def _transition(self, entity: str, entity_id: str, action: str, body: bytes) -> tuple[int, Any]:
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return 400, _errors(400, "FRAMEWORK__INVALID_REQUEST_PARAMETER", "the body is not JSON")
        try:
            state = self.standin.shop.transition(entity, entity_id, action, data if isinstance(data, dict) else {})
        except KeyError:
            return _not_found(entity, entity_id)
        except IllegalTransition as exc:
            return 400, _errors(400, "SYSTEM__ILLEGAL_STATE_TRANSITION", str(exc))
        return 200, state

    def _patch_delivery(self, delivery_id: str, body: bytes) -> tuple[int, Any]:
        try:
            values = json.loads(body or b"{}")
            if not isinstance(values, dict):
                raise ValueError("the body must be a JSON object")
            self.standin.shop.patch_delivery(delivery_id, values)
        except KeyError:
            return _not_found("order_delivery", delivery_id)
        except ValueError as exc:
            return 400, _errors(400, "FRAMEWORK__WRITE_CONSTRAINT_VIOLATION", str(exc))
        return 204, None

    # products ------------------------------------------------------------------------------------
    def _search_products(self, body: bytes) -> tuple[int, Any]:
        try:
            return 200, self.standin.products.search(json.loads(body or b"{}"))
        except (BadProductRequest, ValueError) as exc:
            return 400, _errors(400, "FRAMEWORK__INVALID_CRITERIA_PARAMETERS", str(exc))

    def _patch_product(self, product_id: str, body: bytes) -> tuple[int, Any]:
        try:
            self.standin.products.patch(product_id, json.loads(body or b"{}"))
        except KeyError:
            return _not_found("product", product_id)
        except (BadProductRequest, ValueError) as exc:
            return 400, _errors(400, "FRAMEWORK__WRITE_CONSTRAINT_VIOLATION", str(exc))
        return 204, None

    # admin ---------------------------------------------------------------------------------------
    def _admin(self, method: str, path: str, body: bytes) -> None:
        s = self.standin
        if path == "/_standin/stats":
            return self._send(200, s.stats())
        if path == "/_standin/transitions":
            return self._send(200, {"transitions": s.transitions()})
        if path == "/_standin/products":
            return self._send(200, {"stock": s.product_stock()})
        if path == "/_standin/now":
            return self._send(200, {"now": s.now().isoformat()})
        if path == "/_standin/advance" and method == "POST":
            d = json.loads(body or b"{}")
            s.advance(dt.timedelta(**{k: float(v) for k, v in d.items()}))
            return self._send(200, {"now": s.now().isoformat()})
        self._send(404, _errors(404, "FRAMEWORK__ROUTE_NOT_FOUND", path))


def _int(criteria: dict, key: str, default: int) -> int:
    value = criteria.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadCriteria(f"{key} must be a number, not {value!r}") from None


def _check_associations(assoc: Any, allowed: dict, where: str) -> None:
    if not isinstance(assoc, dict):
        raise BadCriteria(f"{where} must be an object")
    for name, sub in assoc.items():
        if name not in allowed:
            raise BadCriteria(f'{where}: "{name}" is not an association of this entity')
        if not isinstance(sub, dict):
            raise BadCriteria(f"{where}.{name} must be an object")
        _check_associations(sub.get("associations") or {}, allowed[name], f"{where}.{name}.associations")


def _prune(row: dict, asked: dict, known: dict) -> dict:
    """``row`` with the associations of ``known`` that were not ``asked`` for set to null."""
    out = dict(row)
    for name, children in known.items():
        if name not in out:
            continue
        if name not in asked:
            out[name] = None
            continue
        sub = (asked[name] or {}).get("associations") or {}
        value = out[name]
        if isinstance(value, list):
            out[name] = [_prune(v, sub, children) if isinstance(v, dict) else v for v in value]
        elif isinstance(value, dict):
            out[name] = _prune(value, sub, children)
    return out


def _values(row: Any, path: list[str]) -> list[Any]:
    """Every value at ``path``, crossing lists (to-many associations) as the DAL's joins do."""
    if not path:
        return row if isinstance(row, list) else [row]
    if isinstance(row, list):
        return [v for item in row for v in _values(item, path)]
    if not isinstance(row, dict):
        return [None]
    return _values(row.get(path[0]), path[1:])


def _field(f: dict) -> list[str]:
    name = f.get("field")
    if not isinstance(name, str) or not name:
        raise BadCriteria(f"filter {f.get('type')!r} needs a field")
    parts = name.removeprefix("order.").split(".")
    if parts[0] not in SCALAR_FIELDS and parts[0] not in ASSOCIATIONS:
        raise BadCriteria(f'field "{name}" is not a field of order')
    return parts


def _comparable(v: Any) -> Any:
    if isinstance(v, str) and re.match(r"^\d{4}-\d{2}-\d{2}", v):
        try:
            t = dt.datetime.fromisoformat(v.replace("Z", "+00:00").replace(" ", "T"))
            return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
        except ValueError:
            return v
    return v


def _matches(row: dict, f: Any) -> bool:
    if not isinstance(f, dict):
        raise BadCriteria("a filter must be an object")
    kind = f.get("type")
    if kind in ("multi", "not"):
        op = str(f.get("operator", "and")).lower()
        queries = f.get("queries") or []
        if op not in ("and", "or") or not isinstance(queries, list):
            raise BadCriteria(f"{kind} filter needs operator AND/OR and queries")
        results = [_matches(row, q) for q in queries]
        combined = all(results) if op == "and" else any(results)
        return combined if kind == "multi" else not combined
    values = _values(row, _field(f))
    if kind == "equals":
        return any(v == f.get("value") or (v is not None and str(v) == str(f.get("value"))) for v in values)
    if kind == "equalsAny":
        wanted = f.get("value")
        wanted = wanted.split("|") if isinstance(wanted, str) else list(wanted or [])
        return any(v is not None and str(v) in map(str, wanted) for v in values)
    if kind in ("contains", "prefix", "suffix"):
        needle = str(f.get("value", ""))
        test = {"contains": lambda s: needle in s, "prefix": lambda s: s.startswith(needle),
                "suffix": lambda s: s.endswith(needle)}[kind]
        return any(v is not None and test(str(v)) for v in values)
    if kind == "range":
        params = f.get("parameters") or {}
        if not isinstance(params, dict) or not set(params) <= {"gt", "gte", "lt", "lte"} or not params:
            raise BadCriteria("range needs parameters gt, gte, lt or lte")
        bounds = {k: _comparable(v) for k, v in params.items()}

        def inside(v: Any) -> bool:
            if v is None:
                return False
            v = _comparable(v)
            try:
                return all({"gt": v > b, "gte": v >= b, "lt": v < b, "lte": v <= b}[k] for k, b in bounds.items())
            except TypeError:
                raise BadCriteria(f"range on {f.get('field')}: cannot compare {v!r} with {params!r}") from None
        return any(inside(v) for v in values)
    raise BadCriteria(f"unknown filter type {kind!r}")


def _sorted(rows: list[dict], sorting: Any) -> list[dict]:
    if not isinstance(sorting, list):
        raise BadCriteria("sort must be a list")
    for s in reversed(sorting):
        if not isinstance(s, dict):
            raise BadCriteria("a sort must be an object")
        path = _field(s)
        desc = str(s.get("order", "ASC")).upper() == "DESC"

        def key(r: dict, path=path):
            v = _values(r, path)
            v = v[0] if v else None
            return (v is not None, _comparable(v) if v is not None else 0)
        rows = sorted(rows, key=key, reverse=desc)
    return rows
