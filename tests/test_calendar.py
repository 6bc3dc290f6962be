import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from allocator.exceptions import CalendarError
from allocator.shell import calendar

D = dt.date


@pytest.mark.parametrize(
    "day, open_",
    [
        (D(2025, 1, 9), False),  # national day of mourning (President Carter)
        (D(2025, 7, 4), False),  # Independence Day
        (D(2025, 7, 3), True),  # early close is still a session
        (D(2025, 12, 25), False),
        (D(2025, 11, 27), False),  # Thanksgiving
        (D(2025, 11, 28), True),
        (D(2025, 4, 18), False),  # Good Friday
        (D(2012, 10, 29), False),  # Hurricane Sandy
        (D(2001, 9, 11), False),
        (D(2025, 1, 4), False),  # Saturday
        (D(2025, 1, 6), True),
    ],
)
def test_is_session(day, open_):
    assert calendar.is_session(day) is open_


def test_previous_and_next_session_skip_closures():
    assert calendar.previous_session(D(2025, 1, 10)) == D(2025, 1, 8)
    assert calendar.next_session(D(2025, 1, 8)) == D(2025, 1, 10)
    assert calendar.next_session(D(2025, 7, 3)) == D(2025, 7, 7)
    assert calendar.previous_session("2025-07-07") == D(2025, 7, 3)


def test_sessions_between_is_closed_and_ordered():
    days = calendar.sessions_between(D(2025, 1, 6), D(2025, 1, 10))
    assert days == [D(2025, 1, 6), D(2025, 1, 7), D(2025, 1, 8), D(2025, 1, 10)]
    assert calendar.last_n_sessions(D(2025, 1, 10), 2) == [D(2025, 1, 8), D(2025, 1, 10)]


def test_first_session_of_month():
    assert calendar.first_session_of_month(2025, 1) == D(2025, 1, 2)
    assert calendar.first_session_of_month(2024, 9) == D(2024, 9, 3)  # after Labor Day
    assert calendar.is_first_session_of_month(D(2025, 9, 2))
    assert not calendar.is_first_session_of_month(D(2025, 9, 3))


def test_today_is_taken_in_new_york_not_utc():
    # 02:00 UTC on a Saturday is still Friday evening in New York.
    now = dt.datetime(2025, 1, 11, 2, 0, tzinfo=ZoneInfo("UTC"))
    assert calendar.today_eastern(now) == D(2025, 1, 10)


def test_require_session_explains_and_suggests():
    with pytest.raises(
        CalendarError,
        match=r"2025-07-04 \(Friday\) is not an NYSE session.*2025-07-03 and 2025-07-07",
    ):
        calendar.require_session(D(2025, 7, 4))


@pytest.mark.parametrize("bad", ["2025-13-01", "yesterday", "2025/01/02"])
def test_malformed_dates_are_refused(bad):
    with pytest.raises(CalendarError, match="YYYY-MM-DD"):
        calendar.to_date(bad)
