"""Calling the Shopware 6 Admin API: an integration's OAuth token, kept until shortly before it
expires, and bounded retries.

The token comes from ``POST /api/oauth/token`` with the client_credentials grant (an integration's
access key id and secret) and lives ``expires_in`` seconds (600 in Shopware); it is fetched again
a little before then, and once more when the shop answers 401 to a call (a shop restart forgets
tokens). A 429 is waited out for its ``Retry-After`` (capped by ``backoff_max_seconds``), a 5xx,
a garbled answer or a connection that failed with exponential backoff and jitter
(connectors/retries.py); past ``max_retries`` the call raises and the caller ends its run cleanly. A call that changes the shop
(``acts``: a state transition, tracking codes) is repeated only when the shop cannot have acted
on it: after a 429 or a connection that never opened.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from caturactl.config import ShopConfig
from caturactl.core import clock as app_clock
from caturactl.core.errors import (
    ConfigError,
    RefusedError,
    RejectedError,
    RemoteError,
)
from connectors.retries import CallCounts, Retries, unanswered
from connectors.tls import client_context

TOKEN_PATH = "/api/oauth/token"
EARLY_RENEWAL = 30.0  # seconds before expiry a token is renewed, so no call goes out with a dying one
RETRYABLE = {429, 500, 502, 503, 504}


class ShopwareApi:
    """One shop's Admin API: every call goes through ``call``."""

    def __init__(self, cfg: ShopConfig, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, transport: httpx.BaseTransport | None = None):
        if not cfg.url:
            raise ConfigError("shop.url is empty", where="caturactl.toml: shop.url")
        if not cfg.client_id:
            raise ConfigError("shop.client_id is empty (the integration's access key id)",
                              where="caturactl.toml: shop.client_id")
        if cfg.client_secret is None:
            raise ConfigError("the shop's secret is missing: set CATURACTL_SHOP_CLIENT_SECRET or shop.secrets_file",
                              where="shop")
        self.cfg = cfg
        self._sleep, self._clock = sleep, clock
        self._http = httpx.Client(base_url=cfg.url, timeout=cfg.timeout_seconds, transport=transport,
                                  headers={"Accept": "application/json"}, verify=client_context())
        self._token: str | None = None
        self._expires = 0.0
        self.stats = CallCounts()
        self._random = random.Random()

    def close(self) -> None:
        self._http.close()

    # --- the token ------------------------------------------------------------------------------

    def token(self) -> str:
        """A valid access token, fetched when there is none or it is about to expire; ConfigError
        when the shop refuses the credentials, RemoteError when it cannot be reached."""
        if self._token and self._clock() < self._expires:
            return self._token
        body = {"grant_type": "client_credentials", "client_id": self.cfg.client_id,
                "client_secret": self.cfg.client_secret.get_secret_value()}
        answer = self._send("POST", TOKEN_PATH, body, "the shop's token", acts=False, auth=False)
        try:
            token, lifetime = answer["access_token"], float(answer.get("expires_in", 600))
            if not isinstance(token, str) or not token:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise RemoteError("the shop's token answer has no access_token") from None
        self._token, self._expires = token, self._clock() + max(0.0, lifetime - EARLY_RENEWAL)
        return token

    # --- calls ----------------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any, what: str, *, acts: bool = False) -> Any:
        """``method path`` with a JSON ``body``; the answer's JSON (None for 204). Raises
        ConfigError (credentials, permissions), RejectedError (the shop refused the request as
        invalid: 400, 404, 422), RemoteError or ThrottledError (kept failing; nothing lost)."""
        return self._send(method, path, body, what, acts=acts, auth=True)

    def _send(self, method: str, path: str, body: Any, what: str, *, acts: bool, auth: bool) -> Any:
        retries = Retries(what, self.cfg, self.stats, sleep=self._sleep, jitter=self._random)
        renewed = False
        while True:
            headers = {"Authorization": f"Bearer {self.token()}"} if auth else {}
            self.stats.calls += 1
            wait: float | None = None
            try:
                r = self._http.request(method, path, json=body, headers=headers)
            except httpx.HTTPError as exc:
                problem, throttled = unanswered(exc, what, acts=acts, remote="the shop"), False
            else:
                if r.status_code == 401 and auth and not renewed:
                    self._token, renewed = None, True  # the shop forgot the token: one new one
                    continue
                if r.status_code < 300:
                    if r.status_code == 204 or not r.content:
                        return None
                    try:
                        return r.json()
                    except ValueError:
                        problem, throttled = "malformed answer (not JSON)", False
                        if acts:
                            raise RemoteError(f"{what}: {problem}; the shop answered, so it is not repeated now") \
                                from None
                else:
                    said = _shop_says(r)
                    if r.status_code in (401, 403):
                        raise ConfigError(f"the shop refused {'the credentials' if not auth else what}: "
                                          f"{r.status_code} {said}", where="shop credentials")
                    if r.status_code not in RETRYABLE:
                        kind = RejectedError if r.status_code in (400, 404, 409, 412, 422) else RefusedError
                        raise kind(f"the shop refused {what}: {r.status_code} {said}")
                    if acts and r.status_code >= 500:
                        raise RemoteError(f"{what}: the shop answered {r.status_code} ({said}) and may have acted "
                                          "before it failed, so it is not repeated now")
                    throttled = r.status_code == 429
                    problem = f"{r.status_code} {said}"
                    if throttled:
                        self.stats.throttled += 1
                        wait = _retry_after(r.headers.get("Retry-After"))
            retries.failed(problem, throttled=throttled, wait=wait)


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None when absent or odd."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - app_clock.now().timestamp())
    except (TypeError, ValueError):
        return None


def _shop_says(r: httpx.Response) -> str:
    """The shop's own words from an error answer: each error's code and detail."""
    try:
        errors = r.json().get("errors") or []
    except (ValueError, AttributeError):
        return r.reason_phrase or ""
    parts = []
    for e in errors if isinstance(errors, list) else []:
        if isinstance(e, dict):
            head = str(e.get("code") or "")
            text = str(e.get("detail") or e.get("title") or "")
            parts.append(f"{head}: {text}" if head and text else head or text)
    return "; ".join(parts) or r.reason_phrase or ""
