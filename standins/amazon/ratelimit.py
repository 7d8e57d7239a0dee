"""Server-side token bucket for the SP-API stand-in.

Deliberately independent of caturactl's own client-side limiter: the stand-in
must behave like Amazon, not like our idea of Amazon's limiter, so a bug in one
is not mirrored by the other.

Amazon's usage plans are token buckets: ``burst`` requests can be made at once,
after which tokens come back at ``rate`` per second.  The bucket starts full.
Real time (``time.monotonic``) drives the refill, not the stand-in's simulated
clock.
"""

from __future__ import annotations

import threading
import time
from typing import Callable


class TokenBucket:
    """A thread-safe token bucket (rate per second, burst capacity, starts full)."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        if rate < 0 or burst <= 0:
            raise ValueError("rate must be >= 0 and burst > 0")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._last = now

    def try_acquire(self, tokens: float = 1.0) -> bool:
        """Take ``tokens`` if available and return True; otherwise take nothing and return False."""
        with self._lock:
            self._refill()
            if self._tokens >= tokens:
                self._tokens -= tokens
                return True
            return False

    @property
    def available(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens

    def seconds_until(self, tokens: float = 1.0) -> float:
        """How long until ``tokens`` would be available (0.0 if they are now)."""
        with self._lock:
            self._refill()
            missing = tokens - self._tokens
            if missing <= 0:
                return 0.0
            if self.rate == 0:
                return float("inf")
            return missing / self.rate

    def reset(self) -> None:
        """Fill the bucket again."""
        with self._lock:
            self._tokens = self.burst
            self._last = self._clock()
