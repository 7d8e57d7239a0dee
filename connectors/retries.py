"""Bounded retries of a call to a channel's API (SP-API, the Shopware Admin API), and what is
counted of them.

A call that failed is tried again after a backoff that doubles from ``backoff_seconds`` up to
``backoff_max_seconds``, with jitter so parallel runners do not march in step; a remote that
names its wait (Retry-After) is waited out that long, capped the same. Past ``max_retries``
failures in a row the call raises, ThrottledError when the last failure was a throttle and
RemoteError otherwise: nothing is lost, the caller ends its run and the next run resumes. A
request that never reached the remote may always be repeated; one that may have arrived is not
repeated when it acts (a repeat could do the thing twice).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from caturactl.core.errors import RemoteError, ThrottledError

# Failures that leave a request unsent: no connection was made, so repeating it is no risk.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass
class CallCounts:
    """What a client's calls came to (reported with an import run)."""
    calls: int = 0
    throttled: int = 0  # 429s received
    retries: int = 0
    waited_seconds: float = 0.0  # backing off between tries


class RetryPolicy(Protocol):
    """The settings of a channel's configuration section that bound its retries."""
    max_retries: int
    backoff_seconds: float
    backoff_max_seconds: float


class Retries:
    """The failures in a row of one call: ``failed`` waits before the next try, or raises once
    there were more than the policy allows."""

    def __init__(self, what: str, policy: RetryPolicy, stats: CallCounts, *, sleep: Callable[[float], None],
                 jitter: random.Random) -> None:
        self.what = what
        self.failures = 0
        self._policy, self._stats, self._sleep, self._jitter = policy, stats, sleep, jitter

    def failed(self, problem: str, *, throttled: bool, wait: float | None = None) -> None:
        """Count one failure (``problem`` says what it was). Raises ThrottledError (when it was a
        throttle) or RemoteError past ``max_retries``; otherwise sleeps before the next try:
        ``wait`` when the remote named it, else the exponential backoff with jitter, both capped by
        ``backoff_max_seconds``."""
        self.failures += 1
        if self.failures > self._policy.max_retries:
            cls = ThrottledError if throttled else RemoteError
            raise cls(f"{self.what} failed {self.failures} times in a row, last: {problem}; "
                      "nothing is lost, run again later")
        self._stats.retries += 1
        if wait is None:
            wait = min(self._policy.backoff_max_seconds, self._policy.backoff_seconds * 2 ** (self.failures - 1))
            wait *= 0.5 + self._jitter.random() / 2
        wait = min(wait, self._policy.backoff_max_seconds)
        self._stats.waited_seconds += wait
        self._sleep(wait)


def unanswered(exc: httpx.HTTPError, what: str, *, acts: bool, remote: str) -> str:
    """The problem to retry after a request that got no answer. Raises RemoteError instead when
    the call ``acts`` and the request may have reached ``remote`` ("Amazon", "the shop")."""
    problem = f"{type(exc).__name__}: {exc}"
    if acts and not isinstance(exc, NEVER_SENT):
        raise RemoteError(f"{what}: {problem}; the request may have reached {remote}, so it is not repeated now") \
            from None
    return problem
