"""The NYSE calendar: which dates are sessions, in America/New_York.

Backed by ``pandas_market_calendars`` (holidays and special closures such as the national day of
mourning on 2025-01-09). The schedule is computed once per process for a wide window and cached, so
every question is a binary search over a sorted array of session dates.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from allocator.exceptions import CalendarError

EASTERN = ZoneInfo("America/New_York")
_WINDOW_START = dt.date(1990, 1, 1)
_WINDOW_YEARS_AHEAD = 2


@lru_cache(maxsize=4)
def _sessions(until_year: int) -> np.ndarray:
    import pandas_market_calendars as mcal

    nyse = mcal.get_calendar("NYSE")
    days = nyse.valid_days(start_date=_WINDOW_START, end_date=dt.date(until_year, 12, 31))
    return np.array([d.date() for d in days], dtype="datetime64[D]")


def _all_sessions(for_date: dt.date | None = None) -> np.ndarray:
    year = max(dt.date.today().year, for_date.year if for_date else 0) + _WINDOW_YEARS_AHEAD
    return _sessions(year)


def to_date(value: str | dt.date | dt.datetime | pd.Timestamp, name: str = "date") -> dt.date:
    """Parse ``value`` (ISO ``YYYY-MM-DD``, a date or a timestamp) into a :class:`datetime.date`."""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise CalendarError(f"{name} {value!r} is not a date: use YYYY-MM-DD") from None


def _check_range(day: dt.date) -> None:
    if day < _WINDOW_START:
        raise CalendarError(f"{day} is before {_WINDOW_START}, where the calendar starts")


def now_eastern() -> dt.datetime:
    return dt.datetime.now(tz=EASTERN)


def today_eastern(now: dt.datetime | None = None) -> dt.date:
    """Today's date in America/New_York (cron's machine may sit in another zone)."""
    now = now or now_eastern()
    if now.tzinfo is None:
        raise CalendarError("now must be timezone-aware")
    return now.astimezone(EASTERN).date()


def is_session(day: dt.date | str) -> bool:
    """True when the NYSE holds a session on ``day``."""
    day = to_date(day)
    _check_range(day)
    sessions = _all_sessions(day)
    key = np.datetime64(day, "D")
    i = np.searchsorted(sessions, key)
    return bool(i < len(sessions) and sessions[i] == key)


def previous_session(day: dt.date | str) -> dt.date:
    """The last session strictly before ``day``."""
    day = to_date(day)
    sessions = _all_sessions(day)
    i = int(np.searchsorted(sessions, np.datetime64(day, "D"), side="left"))
    if i == 0:
        raise CalendarError(f"no session before {day} in the calendar")
    return sessions[i - 1].astype(dt.date)


def next_session(day: dt.date | str) -> dt.date:
    """The first session strictly after ``day``."""
    day = to_date(day)
    sessions = _all_sessions(day)
    i = int(np.searchsorted(sessions, np.datetime64(day, "D"), side="right"))
    if i >= len(sessions):
        raise CalendarError(f"no session after {day} in the calendar")
    return sessions[i].astype(dt.date)


def latest_session(day: dt.date | str) -> dt.date:
    """``day`` if it is a session, else the last session before it."""
    day = to_date(day)
    return day if is_session(day) else previous_session(day)


def sessions_between(start: dt.date | str, end: dt.date | str) -> list[dt.date]:
    """Sessions in the closed interval [start, end], ascending."""
    start, end = to_date(start, "start"), to_date(end, "end")
    if end < start:
        raise CalendarError(f"end {end} is before start {start}")
    _check_range(start)
    sessions = _all_sessions(end)
    lo = np.searchsorted(sessions, np.datetime64(start, "D"), side="left")
    hi = np.searchsorted(sessions, np.datetime64(end, "D"), side="right")
    return [d.astype(dt.date) for d in sessions[lo:hi]]


def last_n_sessions(end: dt.date | str, n: int) -> list[dt.date]:
    """The ``n`` sessions ending at ``end`` (inclusive when ``end`` is a session)."""
    if n < 1:
        raise CalendarError(f"n={n}: ask for at least one session")
    end = to_date(end, "end")
    sessions = _all_sessions(end)
    hi = int(np.searchsorted(sessions, np.datetime64(end, "D"), side="right"))
    lo = max(0, hi - n)
    return [d.astype(dt.date) for d in sessions[lo:hi]]


def first_session_of_month(year: int, month: int) -> dt.date:
    """The first NYSE session of ``year``-``month``."""
    start = dt.date(year, month, 1)
    end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    days = sessions_between(start, end)
    if not days:
        raise CalendarError(f"no session in {year}-{month:02d}")
    return days[0]


def is_first_session_of_month(day: dt.date | str) -> bool:
    day = to_date(day)
    return is_session(day) and first_session_of_month(day.year, day.month) == day


def require_session(day: dt.date | str, name: str = "date") -> dt.date:
    """Return ``day`` if it is a session, else raise naming it and the nearest sessions."""
    day = to_date(day, name)
    if not is_session(day):
        raise CalendarError(
            f"{name} {day} ({day:%A}) is not an NYSE session; the nearest sessions are "
            f"{previous_session(day)} and {next_session(day)}"
        )
    return day


#: The bar of a session is complete after the close (16:00 ET); fetch runs at 16:35.
CLOSE_TIME = dt.time(16, 0)


def latest_complete_session(now: dt.datetime | None = None) -> dt.date:
    """The last session whose closing bar exists at ``now`` (America/New_York)."""
    now = (now or now_eastern()).astimezone(EASTERN)
    today = now.date()
    if is_session(today) and now.time() >= CLOSE_TIME:
        return today
    return previous_session(today)
