"""Calling SP-API politely: endpoint and LWA wiring for python-amazon-sp-api, a client-side token
bucket per operation at Amazon's published rate, and bounded exponential backoff.

Amazon refills each operation's bucket at a fixed rate (reference/amazon/README.md §3,
orders-2026.md §2). We wait for our own bucket before calling, so Amazon rarely has to say 429;
when it does (or answers 5xx, garbage, or not at all) we back off exponentially, and the backoff
resets after the next success (connectors/retries.py). Past ``max_retries`` the call raises, and
the caller ends its run cleanly: the cursor makes the next run resume. A call that acts (createFeed, confirmShipment, a
review request) is only repeated when Amazon cannot have acted on it: after a 429 or a
connection that never opened, not after a 5xx (see ``SpApi.call``).

Some buckets refill so slowly that waiting is wrong: createFeed allows one call every two
minutes once its burst is spent. ``wait_seconds`` tells an adapter the wait without spending a
token, and ``call(..., max_wait=...)`` raises ThrottledError instead of sleeping longer, so a
job gives the slot back and the outbox tries again later.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Callable
from urllib.parse import urlsplit

import httpx
from sp_api.auth import AccessTokenClient
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import ApiResponse
from sp_api.base.exceptions import (SellingApiException, SellingApiForbiddenException,
                                    SellingApiRequestThrottledException)

from caturactl.config import AmazonConfig
from caturactl.core import clock
from caturactl.core.cursors import stored_budgets
from caturactl.core.errors import ConfigError, RefusedError, RemoteError, ThrottledError
from connectors.retries import CallCounts, Retries, unanswered
from connectors.tls import client_context

# Published default usage plans: operation -> (requests per second, burst).
RATES: dict[str, tuple[float, int]] = {
    "searchOrders": (0.0056, 20),  # Orders 2026-01-01
    "getOrder": (0.5, 30),  # Orders 2026-01-01
    "confirmShipment": (2.0, 10),  # Orders v0
    "createFeedDocument": (0.5, 15),  # Feeds 2021-06-30 (README §3)
    "createFeed": (0.0083, 15),  # Feeds 2021-06-30: one call per ~2 minutes after the burst
    "getFeed": (2.0, 15),  # Feeds 2021-06-30
    "getFeeds": (0.0222, 10),  # Feeds 2021-06-30 (feeds_2021-06-30.json getFeeds usage plan)
    "getFeedDocument": (0.0222, 10),  # Feeds 2021-06-30
    "getReports": (0.0222, 10),  # Reports 2021-06-30 (README §3, reports_2021-06-30.json)
    "getReportDocument": (0.0167, 15),  # Reports 2021-06-30
    "getSolicitationActionsForOrder": (1.0, 5),  # Solicitations v1 (customer-contact.md §1)
    "createProductReviewAndSellerFeedbackSolicitation": (1.0, 5),  # Solicitations v1
    # Listings Items 2021-08-01 (selling-partner-api-models listingsItems_2021-08-01.json: patch 5/s
    # burst 5 since the model's 2024 revision, 10 before; get 5/s burst 10).
    "patchListingsItem": (5.0, 5),
    "getListingsItem": (5.0, 10),
}
RETRYABLE_STATUS = {429, 500, 502, 503, 504}
# Latency on the way to Amazon varies; waiting for this much more than one token keeps a slower
# earlier request from making a faster later one arrive before Amazon's bucket has refilled.
CUSHION_SECONDS = 0.05


class TokenBucket:
    """Client-side bucket: ``acquire`` sleeps until a call is allowed, then spends a token."""

    def __init__(self, rate: float, burst: int, *, tokens: float | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.rate, self.burst = rate, burst
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst if tokens is None else min(tokens, burst))
        self._at = clock()
        self._lock = threading.Lock()
        self.waited = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now

    @property
    def tokens(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens

    def _need(self) -> float:
        return min(float(self.burst), 1.0 + CUSHION_SECONDS * self.rate)

    def wait_seconds(self) -> float:
        """How long ``acquire`` would sleep if called now (0.0: a call may go at once); spends nothing."""
        with self._lock:
            self._refill()
            missing = self._need() - self._tokens
            return missing / self.rate if missing > 0 else 0.0

    def acquire(self) -> None:
        with self._lock:
            self._refill()
            need = self._need()
            if self._tokens < need:
                wait = (need - self._tokens) / self.rate
                self.waited += wait
                self._sleep(wait)
                self._refill()
            self._tokens -= 1.0

    def drain(self) -> None:
        """The remote side said its bucket is empty: believe it."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 0.0)


def _lwa_client_class(lwa_url: str) -> type[AccessTokenClient]:
    parts = urlsplit(lwa_url)
    # python-amazon-sp-api builds the LWA URL from class attributes (no setting for it).
    return type("ConfiguredAccessTokenClient", (AccessTokenClient,),
                {"scheme": f"{parts.scheme}://", "host": parts.netloc, "path": parts.path or "/auth/o2/token"})


class SpApi:
    """One seller's SP-API access: builds sp_api clients and runs every call through ``call``."""

    def __init__(self, cfg: AmazonConfig, *, sleep: Callable[[float], None] = time.sleep,
                 budgets: dict[str, tuple[float, datetime]] | None = None):
        if not cfg.client_id:
            raise ConfigError("amazon.client_id is empty", where="caturactl.toml: amazon.client_id")
        if cfg.client_secret is None or cfg.refresh_token is None:
            raise ConfigError("Amazon credentials missing: set CATURACTL_AMAZON_CLIENT_SECRET and "
                              "CATURACTL_AMAZON_REFRESH_TOKEN, or amazon.secrets_file", where="amazon")
        self.cfg = cfg
        self._sleep = sleep
        self.stats = CallCounts()
        self._buckets: dict[str, TokenBucket] = {}
        self._budgets = dict(budgets or {})
        self._random = random.Random()

    def client(self, api_class: type, marketplace_id: str, **kwargs) -> Any:
        """An sp_api client of ``api_class`` pointed at the configured endpoint and LWA URL."""
        target = SimpleNamespace(endpoint=self.cfg.endpoint, marketplace_id=marketplace_id, region="eu-west-1")
        return api_class(
            marketplace=target,
            credentials={"refresh_token": self.cfg.refresh_token.get_secret_value(),
                         "lwa_app_id": self.cfg.client_id,
                         "lwa_client_secret": self.cfg.client_secret.get_secret_value()},
            auth_token_client_class=_lwa_client_class(self.cfg.lwa_url),
            timeout=self.cfg.timeout_seconds, **{"verify": client_context(), **kwargs})

    def bucket(self, operation: str) -> TokenBucket:
        if operation not in self._buckets:
            rate, burst = RATES[operation]
            rate *= self.cfg.rate_scale
            tokens = None
            if operation in self._budgets:  # what the last process left, refilled since then
                left, at = self._budgets[operation]
                tokens = left + max(0.0, (clock.real_now() - at).total_seconds()) * rate  # Amazon refills in real seconds
            self._buckets[operation] = TokenBucket(rate, burst, tokens=tokens, sleep=self._sleep)
        return self._buckets[operation]

    def wait_seconds(self, operation: str) -> float:
        """Seconds our bucket would make a call of ``operation`` wait now; spends nothing."""
        return self.bucket(operation).wait_seconds()

    def rate_waited(self) -> float:
        """Seconds spent waiting for our own buckets (keeping to Amazon's rate)."""
        return sum(b.waited for b in self._buckets.values())

    def budgets(self) -> dict[str, tuple[float, datetime]]:
        """Tokens left per operation now, to be remembered for the next process."""
        now = clock.real_now()
        return {op: (b.tokens, now) for op, b in self._buckets.items()}

    def login(self, client: Any) -> None:
        """Fetch the LWA access token now, so it does not delay the first rate-limited call."""
        try:
            client.auth  # noqa: B018 - the property performs (and caches) the token exchange
        except AuthorizationError as exc:
            raise _refused(exc) from None
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach Login with Amazon at {self.cfg.lwa_url}: {exc}") from None

    def call(self, operation: str, fn: Callable[[], ApiResponse], check: Callable[[ApiResponse], Any],
             what: str, *, max_wait: float | None = None, acts: bool = False) -> Any:
        """Run ``fn`` under the operation's rate limit with retries; ``check`` validates and
        converts the answer (raising ValueError for a malformed one). With ``max_wait``, a wait
        for our bucket longer than that many seconds (before the first try or a retry after a
        429) raises ThrottledError without calling. Raises RemoteError, ThrottledError or
        ConfigError; RefusedError (a RemoteError) when Amazon answered 4xx, which it does without
        acting on the request.

        ``acts``: the call does something at Amazon that a repeat could do twice (createFeed,
        confirmShipment, a review request). Once Amazon may have acted on the request without us
        knowing (a read timeout, a dropped connection, a garbled answer, or a 5xx: a server error
        may come after the work was done), it is not repeated here: RemoteError at once, and the
        outbox, which marked the send, keeps it in doubt and asks Amazon before it tries again.
        Requests that cannot have arrived (no connection) and 429s are retried as usual."""
        bucket = self.bucket(operation)
        retries = Retries(what, self.cfg, self.stats, sleep=self._sleep, jitter=self._random)
        while True:
            if max_wait is not None:
                wait = bucket.wait_seconds()
                if wait > max_wait:
                    raise ThrottledError(f"{what}: {operation} allows one call every {call_interval(bucket.rate)} "
                                         f"and the next is due in {wait:.0f} s; nothing was sent, try again later")
            bucket.acquire()
            self.stats.calls += 1
            try:
                return check(fn())
            except SellingApiRequestThrottledException:
                self.stats.throttled += 1
                bucket.drain()
                problem, throttled = "throttled (429 QuotaExceeded)", True
            except SellingApiForbiddenException as exc:
                raise RefusedError(f"Amazon refused access to {what}: {_describe(exc)}") from None
            except SellingApiException as exc:
                status = _status(exc)
                if acts and exc.code >= 500:  # 999: a status the library has no class for (401, 502...)
                    said = _describe(exc)
                    raise RemoteError(f"{what}: Amazon answered {status}" + (f" ({said})" if said else "")
                                      + " and may have acted on the request before it failed, so it is not "
                                        "repeated now") from None
                if exc.code not in RETRYABLE_STATUS:
                    refused = RefusedError if 400 <= exc.code < 500 else RemoteError
                    raise refused(f"Amazon rejected {what}: {status} {_describe(exc)}") from None
                problem, throttled = f"{status} {_describe(exc)}", False
            except AuthorizationError as exc:
                raise _refused(exc) from None
            except httpx.HTTPError as exc:
                problem, throttled = unanswered(exc, what, acts=acts, remote="Amazon"), False
            except ValueError as exc:
                problem, throttled = f"malformed answer: {exc}", False
                if acts:
                    raise RemoteError(f"{what}: {problem}; Amazon answered, so it is not repeated now") from None
            retries.failed(problem, throttled=throttled)


def call_interval(rate: float) -> str:
    """``rate`` calls per second as people say it: "~2 minutes", "~45 s"."""
    seconds = 1.0 / rate if rate > 0 else float("inf")
    if seconds >= 90:
        return f"~{seconds / 60:.0f} minutes"
    return f"~{seconds:.0f} s" if seconds >= 1.5 else f"{seconds:.2g} s"


def amazon_says(exc: SellingApiException) -> str:
    """Amazon's own words from an error answer: "message (code): details" for each error."""
    parts = []
    for err in exc.error if isinstance(exc.error, list) else []:
        if not isinstance(err, dict):
            continue
        code, message, details = (str(err.get(k) or "") for k in ("code", "message", "details"))
        head = message if code in ("", message) else f"{message} ({code})"
        parts.append(f"{head}: {details}" if details else head)
    return "; ".join(parts) or str(getattr(exc, "message", "") or exc.error)


def _status(exc: SellingApiException) -> str:
    # The library raises its base class, code 999, for a status it has no class for.
    return "an HTTP error" if exc.code == 999 else f"HTTP {exc.code}"


def _refused(exc: AuthorizationError) -> ConfigError:
    # The library's exception keeps the description in .message (its docstring says error_msg).
    detail = getattr(exc, "message", "") or ""
    return ConfigError(f"Login with Amazon refused the credentials: {exc.error_code}"
                       + (f" ({detail})" if detail else ""), where="amazon credentials")


def _describe(exc: SellingApiException) -> str:
    err = exc.error[0] if isinstance(exc.error, list) and exc.error else {}
    if isinstance(err, dict):
        return " ".join(x for x in (err.get("code", ""), err.get("message", ""), err.get("details", "")) if x)
    return str(exc.message or exc.error)


def stored_api(cfg: AmazonConfig, session) -> SpApi:
    """SP-API access that starts from the rate budgets the last process left behind."""
    return SpApi(cfg, budgets=stored_budgets(session))
