"""Every number given on the command line is a whole number within its range, or refused."""

from __future__ import annotations

import argparse

import pytest

from allocator.cli.bounds import MAX_RUNS_LIMIT, whole_number
from allocator.cli.commands import main


@pytest.mark.parametrize(
    ("argv", "option", "shown", "allowed"),
    [
        (["runs", "--limit", "99999999999999999999"], "--limit", "99999999999999999999", "10,000"),
        (["runs", "--limit", "-5"], "--limit", "-5", "10,000"),
        (["runs", "--limit", "0"], "--limit", "0", "10,000"),
        (["runs", "--limit", str(MAX_RUNS_LIMIT + 1)], "--limit", "10001", "10,000"),
        (["backfill", "--days", "9" * 4001], "--days", "999", "10,000"),
        (["backfill", "--days", "0"], "--days", "0", "10,000"),
        (["serve", "--port", "70000"], "--port", "70000", "65,535"),
        (["sweep", "--workers", "-1"], "--workers", "-1", "256"),
    ],
)
def test_a_number_out_of_range_is_a_one_line_usage_error(capsys, argv, option, shown, allowed):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert f"argument {option}: {shown}" in last
    assert f"is out of range: give a whole number from 1 to {allowed}" in last
    assert "Traceback" not in err and len(last) < 200


@pytest.mark.parametrize("text", ["abc", "1.5", "1e3", "--5", "5\n", "²", ""])
def test_anything_but_digits_is_not_a_whole_number(text):
    with pytest.raises(argparse.ArgumentTypeError, match="is not a whole number: give one from 1"):
        whole_number(1, 10)(text)


def test_the_bounds_themselves_are_accepted():
    parse = whole_number(1, MAX_RUNS_LIMIT)
    assert [parse("1"), parse("+7"), parse(str(MAX_RUNS_LIMIT))] == [1, 7, MAX_RUNS_LIMIT]
