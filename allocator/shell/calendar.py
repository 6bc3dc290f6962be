"""The NYSE calendar: which dates are sessions, in America/New_York.

Backed by ``pandas_market_calendars`` (holidays and special closures such as the national day of
mourning on 2025-01-09). Its schedule from 1990 on is computed once and kept in a cache file
(:func:`nyse_sessions`), so a process that asks a calendar question imports neither pandas nor
the calendar library, and every question is a binary search over a sorted tuple of dates.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from allocator.exceptions import CalendarError
from allocator.shell.settings import PROJECT_ROOT

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

EASTERN = ZoneInfo("America/New_York")
_WINDOW_START = dt.date(1990, 1, 1)
_WINDOW_YEARS_AHEAD = 2
#: Where the computed session list is kept between processes (default ``var/cache``).
ENV_CACHE_DIR = "ALLOCATOR_CACHE_DIR"
_CACHE_HEADER = "# NYSE sessions, one ISO date a line; sha256 of the lines:"


def cache_dir() -> Path:
    """The folder of the session cache: ``ALLOCATOR_CACHE_DIR``, else ``var/cache``."""
    raw = os.environ.get(ENV_CACHE_DIR)
    return Path(raw).expanduser() if raw else PROJECT_ROOT / "var" / "cache"


def compute_sessions(until_year: int) -> tuple[dt.date, ...]:
    """NYSE sessions from 1990-01-01 to the end of ``until_year``, from pandas_market_calendars."""
    import pandas_market_calendars as mcal

    nyse = mcal.get_calendar("NYSE")
    days = nyse.valid_days(start_date=_WINDOW_START, end_date=dt.date(until_year, 12, 31))
    return tuple(d.date() for d in days)


def _cache_file(until_year: int) -> Path:
    """The cache file for this window and these library versions (an upgrade recomputes)."""
    from importlib.metadata import version

    versions = f"pmc{version('pandas_market_calendars')}-pandas{version('pandas')}"
    return cache_dir() / f"nyse-sessions-{_WINDOW_START.year}-{until_year}-{versions}.txt"


def _digest(body: str) -> str:
    import hashlib

    return hashlib.sha256(body.encode("ascii")).hexdigest()


def _read_cache(path: Path) -> tuple[dt.date, ...] | None:
    """The sessions in ``path``, or None when it is missing, unreadable or altered."""
    try:
        header, body = path.read_text(encoding="ascii").split("\n", 1)
        if header != f"{_CACHE_HEADER} {_digest(body)}":
            return None
        sessions = tuple(map(dt.date.fromisoformat, body.split()))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    ordered = all(a < b for a, b in zip(sessions, sessions[1:], strict=False))
    return sessions if sessions and ordered else None


def _write_cache(path: Path, sessions: tuple[dt.date, ...]) -> None:
    """Write ``path`` atomically (readers never see half a file); a failure only costs time."""
    body = "".join(f"{day.isoformat()}\n" for day in sessions)
    text = f"{_CACHE_HEADER} {_digest(body)}\n{body}"
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="ascii", dir=path.parent, prefix=".nyse-", delete=False
        ) as tmp:
            tmp.write(text)
        os.chmod(tmp.name, 0o644)  # derived public data: readable by the cron user and others
        os.replace(tmp.name, path)
    except OSError as exc:
        log.debug("NYSE session cache %s not written (%s): computed in every process", path, exc)
        if tmp is not None:
            Path(tmp.name).unlink(missing_ok=True)


@lru_cache(maxsize=4)
def nyse_sessions(until_year: int) -> tuple[dt.date, ...]:
    """NYSE sessions from 1990-01-01 to the end of ``until_year``, ascending.

    Read from the cache file when it exists for the installed pandas_market_calendars and pandas
    (:func:`cache_dir`), else computed by :func:`compute_sessions` and written there. A missing,
    damaged or unwritable cache is never an error: the sessions are then computed.
    """
    path = _cache_file(until_year)
    sessions = _read_cache(path)
    if sessions is None:
        sessions = compute_sessions(until_year)
        _write_cache(path, sessions)
    return sessions


def _all_sessions(for_date: dt.date | None = None) -> tuple[dt.date, ...]:
    year = max(dt.date.today().year, for_date.year if for_date else 0) + _WINDOW_YEARS_AHEAD
    return nyse_sessions(year)


def to_date(value: str | dt.date | dt.datetime | pd.Timestamp, name: str = "date") -> dt.date:
    """Parse ``value`` (ISO ``YYYY-MM-DD``, a date or a timestamp) into a :class:`datetime.date`."""
    if isinstance(value, dt.datetime):  # pandas.Timestamp too
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise CalendarError(f"{name} {shown!r} is not a date: use YYYY-MM-DD") from None
    return check_user_date(day, name)


def check_user_date(day: dt.date, name: str = "date", today: dt.date | None = None) -> dt.date:
    """``day`` when it lies from the calendar's start to a year after ``today``; else raise.

    Applied to every date given as text (a user's ``--date``, ``--start``, ``-p end``): a later
    date is a typo, and the calendar could not answer for it.
    """
    today = today or today_eastern()
    last = today + dt.timedelta(days=366)
    if not _WINDOW_START <= day <= last:
        raise CalendarError(
            f"{name} {day} is out of range: give a date from {_WINDOW_START} to {last} "
            "(the calendar's start to a year after today)"
        )
    return day


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
    i = bisect.bisect_left(sessions, day)
    return i < len(sessions) and sessions[i] == day


def previous_session(day: dt.date | str) -> dt.date:
    """The last session strictly before ``day``."""
    day = to_date(day)
    sessions = _all_sessions(day)
    i = bisect.bisect_left(sessions, day)
    if i == 0:
        raise CalendarError(f"no session before {day} in the calendar")
    return sessions[i - 1]


def next_session(day: dt.date | str) -> dt.date:
    """The first session strictly after ``day``."""
    day = to_date(day)
    sessions = _all_sessions(day)
    i = bisect.bisect_right(sessions, day)
    if i >= len(sessions):
        raise CalendarError(f"no session after {day} in the calendar")
    return sessions[i]


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
    lo = bisect.bisect_left(sessions, start)
    hi = bisect.bisect_right(sessions, end)
    return list(sessions[lo:hi])


def last_n_sessions(end: dt.date | str, n: int) -> list[dt.date]:
    """The ``n`` sessions ending at ``end`` (inclusive when ``end`` is a session)."""
    if n < 1:
        raise CalendarError(f"n={n}: ask for at least one session")
    end = to_date(end, "end")
    sessions = _all_sessions(end)
    hi = bisect.bisect_right(sessions, end)
    lo = max(0, hi - n)
    return list(sessions[lo:hi])


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
