"""Business time at a location: which days a warehouse works, and deadlines in business hours.

A fulfiller that gets a delivery at 17:30 on the Friday before Easter is not late on Saturday
morning. Working days are Monday to Friday minus the public holidays of the location's country
or federal state (the ``holidays`` library, e.g. "DE-NW" for North Rhine-Westphalia); working
hours are one window per day ("08:00-18:00") in the location's time zone. Pure: no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from caturactl.core.errors import ConfigError


@lru_cache(maxsize=32)
def _holiday_table(region: str) -> holidays.HolidayBase:
    country, _, subdiv = region.upper().partition("-")
    try:
        return holidays.country_holidays(country, subdiv=subdiv or None)
    except NotImplementedError:
        raise ConfigError(f"no public-holiday table for {region!r}", where="holidays") from None


def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days and hours of one location."""

    region: str = "DE"  # country or country-subdivision for public holidays
    hours: str = "08:00-18:00"
    timezone: str = "Europe/Berlin"
    _open: time = field(init=False, repr=False)
    _close: time = field(init=False, repr=False)

    def __post_init__(self) -> None:
        start, end = self.hours.split("-")
        object.__setattr__(self, "_open", _hhmm(start))
        object.__setattr__(self, "_close", _hhmm(end))
        if self._close <= self._open:
            raise ConfigError(f"business hours {self.hours!r} end before they start", where="business_hours")
        _holiday_table(self.region)  # fail on load, not at the first deadline

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in _holiday_table(self.region)

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after ``day``."""
        day += timedelta(days=1)
        while not self.is_business_day(day):
            day += timedelta(days=1)
        return day

    def add_business_days(self, day: date, n: int) -> date:
        """``n`` business days after ``day`` (``day`` itself when n is 0)."""
        for _ in range(n):
            day = self.next_business_day(day)
        return day

    def ship_date(self, now: datetime, cutoff: str) -> date:
        """The day a parcel handed over ``now`` leaves: today before the cut-off on a business
        day, else the next business day."""
        local = now.astimezone(self.tz)
        today = local.date()
        if self.is_business_day(today) and local.time() < _hhmm(cutoff):
            return today
        return self.next_business_day(today)

    def add_business_hours(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` working hours after ``start`` (aware), in UTC.

        Time outside the working window does not count; a start outside it counts from the
        next opening.
        """
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        tz = self.tz
        local = start.astimezone(tz)
        left = timedelta(hours=hours)
        day = local.date()
        cursor = local
        while True:
            if self.is_business_day(day):
                opens = datetime.combine(day, self._open, tz)
                closes = datetime.combine(day, self._close, tz)
                begin = max(cursor, opens)
                if begin < closes:
                    if begin + left <= closes:
                        return (begin + left).astimezone(timezone.utc)
                    left -= closes - begin
            day += timedelta(days=1)
            cursor = datetime.combine(day, time(0), tz)
