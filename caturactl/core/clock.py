"""The app's one clock: every business "now" in caturactl comes from here.

In production it is the system clock. Tests, the demo and the benches set it, either in process
(:func:`install`, :func:`using`) or for a whole tree of processes through one environment
variable, ``CATURACTL_CLOCK``, that ``jobs daemon``'s children inherit:

``2026-11-24T06:00:00+01:00``
    a fixed instant: the clock shows it and does not move.
``2026-11-24T06:00:00+01:00 x1000``
    starts there and runs 1000 times faster than real time.
``2026-11-24T06:00:00+01:00 x1000 @1764000000.25``
    the same, with the real UNIX time at which the clock shows the start. Without ``@`` the first
    process to read the variable fixes it and writes it back into its environment, so that every
    child agrees to the microsecond.

What does not come from here, on purpose: real durations (timeouts, rate-limit buckets, the
scheduler's sleep, a lease's real seconds), which are measured with ``time.monotonic`` or
``time.time``, because the remote side and the kernel measure them in real time.
"""

from __future__ import annotations

import os
import re
import threading
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Iterator, Protocol

from caturactl.core.errors import ConfigError

ENV = "CATURACTL_CLOCK"
MAX_SPEED = 1_000_000  # a day in under a tenth of a second: faster says nothing a test needs


class Clock(Protocol):
    real: bool  # the wall clock itself

    def now(self) -> datetime: ...

    def real_seconds(self, clock_seconds: float) -> float:
        """Real seconds that ``clock_seconds`` on this clock take."""


class SystemClock:
    """The machine's clock, in UTC."""

    speed = 1.0
    real = True  # the wall clock: the scheduler may let the `schedule` library wake it

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def real_seconds(self, clock_seconds: float) -> float:
        return clock_seconds

    def spec(self) -> str | None:
        return None


class FixedClock:
    """A clock that shows one instant until it is moved; tests and benches step it."""

    speed = 0.0
    real = False

    def __init__(self, at: datetime):
        self._at = _aware(at)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> datetime:
        """Moves the clock to ``at`` (forward only); raises ValueError going back."""
        at = _aware(at)
        with self._lock:
            if at < self._at:
                raise ValueError(f"the clock only moves forward ({at.isoformat()} < {self._at.isoformat()})")
            self._at = at
        _exported(self)
        return at

    def advance(self, delta: timedelta) -> datetime:
        """Moves the clock forward by ``delta``; raises ValueError for a negative one."""
        with self._lock:
            if delta < timedelta(0):
                raise ValueError("the clock only moves forward")
            self._at += delta
            at = self._at
        _exported(self)
        return at

    def real_seconds(self, clock_seconds: float) -> float:
        return clock_seconds  # it does not move by itself; a sleeper wakes as often as on the wall clock

    def spec(self) -> str:
        return self._at.isoformat()


class RunningClock:
    """Starts at ``start`` at real UNIX time ``epoch`` and runs ``speed`` times faster."""

    real = False

    def __init__(self, start: datetime, speed: float = 1.0, epoch: float | None = None):
        if speed <= 0:
            raise ValueError("a running clock needs a speed above 0")
        self.start, self.speed = _aware(start), float(speed)
        self.epoch = time.time() if epoch is None else float(epoch)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.time() - self.epoch) * self.speed)

    def real_seconds(self, clock_seconds: float) -> float:
        return clock_seconds / self.speed

    def spec(self) -> str:
        return f"{self.start.isoformat()} x{self.speed:g} @{self.epoch!r}"


_SPEC = re.compile(r"^\s*(?P<at>\S+)(?:\s+x(?P<speed>[0-9.]+))?(?:\s+@(?P<epoch>[0-9.]+))?\s*$")


def parse(spec: str) -> FixedClock | RunningClock:
    """The clock that ``spec`` describes (see the module's docstring); raises ConfigError."""
    m = _SPEC.match(spec or "")
    where = f"environment: {ENV}"
    if not m:
        raise ConfigError(f"{spec!r} is not 'INSTANT [xSPEED] [@EPOCH]'", where=where)
    try:
        at = datetime.fromisoformat(m["at"].replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{m['at']!r} is not an ISO 8601 instant", where=where) from None
    if at.tzinfo is None:
        raise ConfigError(f"{m['at']!r} needs a UTC offset (e.g. +01:00 or Z)", where=where)
    try:
        speed = float(m["speed"]) if m["speed"] else 0.0
        epoch = float(m["epoch"]) if m["epoch"] else None
    except ValueError:
        raise ConfigError(f"{spec!r}: SPEED and EPOCH are plain numbers (x1000, @1764000000.25)", where=where) from None
    if speed > MAX_SPEED:
        raise ConfigError(f"{spec!r}: a clock runs at most {MAX_SPEED:g} times fast", where=where)
    if epoch is not None and not 0 <= epoch < 2**33:
        raise ConfigError(f"{spec!r}: EPOCH is a UNIX time in seconds", where=where)
    if speed == 0:
        return FixedClock(at)
    return RunningClock(at, speed, epoch)


_installed: Clock | None = None
_lock = threading.Lock()


def current() -> Clock:
    """The clock in force: one installed in process, else ``$CATURACTL_CLOCK``, else the system's."""
    global _installed
    if _installed is not None:
        return _installed
    with _lock:
        if _installed is None:
            spec = os.environ.get(ENV, "").strip()
            clock = parse(spec) if spec else SystemClock()
            if isinstance(clock, RunningClock) and "@" not in spec:
                os.environ[ENV] = clock.spec()  # children share this process's timeline
            _installed = clock
        return _installed


def install(clock: Clock | None) -> None:
    """Makes ``clock`` the app's clock for this process and, where it can be written as a spec,
    for the processes it starts. ``None`` goes back to ``$CATURACTL_CLOCK`` or the system clock."""
    global _installed
    with _lock:
        _installed = clock
    _exported(clock)


@contextmanager
def using(clock: Clock) -> Iterator[Clock]:
    """Installs ``clock`` for the ``with`` block, then puts back what was there."""
    global _installed
    before, env = _installed, os.environ.get(ENV)
    install(clock)
    try:
        yield clock
    finally:
        with _lock:
            _installed = before
            if env is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = env


def _exported(clock: Clock | None) -> None:
    """Writes the installed clock into the environment, so that the processes it starts agree."""
    if clock is None or clock is not _installed:
        return
    spec = getattr(clock, "spec", lambda: None)()
    if spec:
        os.environ[ENV] = spec


def real_now() -> datetime:
    """The machine's clock, for the one kind of time that must not follow the app's clock: real
    durations measured across processes (how far Amazon has refilled a rate bucket since the last
    process stored it). A clock running 1000x fast would otherwise refill it 1000x too fast."""
    return datetime.now(timezone.utc)


def now() -> datetime:
    """The current instant on the app's clock, timezone-aware UTC."""
    return current().now()


def today(tz: tzinfo) -> date:
    """Today's date in the business time zone ``tz``, on the app's clock."""
    return now().astimezone(tz).date()


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("the clock takes timezone-aware instants only")
    return at.astimezone(timezone.utc)
