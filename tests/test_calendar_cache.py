"""The NYSE session cache: the same sessions as pandas_market_calendars, from a file.

:func:`allocator.shell.calendar.nyse_sessions` computes the sessions once with
pandas_market_calendars and keeps them in ``ALLOCATOR_CACHE_DIR``; every later process reads the
file instead of importing pandas and the calendar library. These tests use a cache folder of
their own and compare against the library itself.
"""

import datetime as dt
import os
import subprocess
import sys

import pandas_market_calendars as mcal
import pytest

from allocator.shell import calendar

LAST_YEAR = 2040


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder of this test's own; the in-process cache is emptied around it."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(calendar.ENV_CACHE_DIR, str(folder))
    calendar.nyse_sessions.cache_clear()
    yield folder
    calendar.nyse_sessions.cache_clear()


def library_sessions(until_year: int) -> list[dt.date]:
    nyse = mcal.get_calendar("NYSE")
    days = nyse.valid_days(start_date="1990-01-01", end_date=f"{until_year}-12-31")
    return [day.date() for day in days]


def test_cached_sessions_equal_pandas_market_calendars_1990_to_2040(cache):
    expected = library_sessions(LAST_YEAR)

    computed = calendar.nyse_sessions(LAST_YEAR)
    [written] = cache.glob("nyse-sessions-1990-2040-*.txt")
    calendar.nyse_sessions.cache_clear()
    read_back = calendar.nyse_sessions(LAST_YEAR)

    assert list(computed) == expected
    assert list(read_back) == expected
    assert written.read_text().splitlines()[1] == "1990-01-02"
    assert calendar.sessions_between(dt.date(1990, 1, 1), dt.date(2040, 12, 31)) == expected


def test_the_cache_file_is_named_for_the_library_versions(cache):
    from importlib.metadata import version

    calendar.nyse_sessions(2030)

    [written] = cache.glob("*.txt")
    assert f"pmc{version('pandas_market_calendars')}" in written.name
    assert f"pandas{version('pandas')}" in written.name


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # a truncated file
        lambda text: text.replace("2025-01-09", "2025-01-09\n2025-01-08"),  # out of order
        lambda text: "not a calendar\n",
        lambda text: text.replace("2001-09-10", "2001-09-11"),  # a duplicated day
    ],
)
def test_a_damaged_cache_is_recomputed_and_rewritten(cache, damage):
    expected = calendar.nyse_sessions(2030)
    [path] = cache.glob("*.txt")
    good = path.read_text()
    path.write_text(damage(good))
    calendar.nyse_sessions.cache_clear()

    assert calendar.nyse_sessions(2030) == expected
    assert path.read_text() == good


def test_an_unwritable_cache_folder_only_costs_time(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache folder cannot be created under a file")
    monkeypatch.setenv(calendar.ENV_CACHE_DIR, str(blocker / "cache"))
    calendar.nyse_sessions.cache_clear()
    try:
        assert calendar.is_session(dt.date(2025, 1, 6))
        assert not calendar.is_session(dt.date(2025, 1, 9))
    finally:
        calendar.nyse_sessions.cache_clear()
    assert blocker.is_file()


def test_a_process_with_the_cache_imports_neither_pandas_nor_the_calendar_library(cache):
    calendar.nyse_sessions(dt.date.today().year + 2)  # what is_session below will ask for
    probe = (
        "import sys\n"
        "from allocator.shell import calendar\n"
        "assert calendar.is_session('2025-01-06') and not calendar.is_session('2025-01-09')\n"
        "assert calendar.previous_session('2025-01-10').isoformat() == '2025-01-08'\n"
        "print(sorted({'pandas', 'numpy', 'pandas_market_calendars'} & set(sys.modules)))\n"
    )
    env = dict(os.environ, **{calendar.ENV_CACHE_DIR: str(cache)})
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stderr
