"""``-p`` values read by type (symbol lists, dates, JSON overrides) and refused before a kernel.

The unit tests read the real notebooks' ``parameters`` cells through :func:`plan_run`; the
process tests run ``python -m allocator run`` and require exit 2, one line on stderr, and
nothing written (no archive, no ``job_runs`` row).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from allocator.exceptions import CalendarError, JobError
from allocator.notebook import runner
from allocator.notebook.parameters import coerce_parameters
from allocator.shell.calendar import check_user_date, to_date, today_eastern
from allocator.shell.persistence import make_engine
from allocator.shell.persistence.migrate import upgrade
from allocator.shell.persistence.schema import job_runs

ROOT = Path(__file__).resolve().parents[1]
SESSION = "2025-01-03"


def _plan(job: str, pairs: list[tuple[str, str]]):
    return runner.plan_run(job, date=SESSION, parameters=runner.parse_parameters(pairs))


@pytest.mark.parametrize(
    "job, pairs, expected",
    [
        ("fetch", [("symbols", "SPY")], {"symbols": ["SPY"]}),
        ("fetch", [("symbols", "spy,QQQ")], {"symbols": ["SPY", "QQQ"]}),
        ("fetch", [("symbols", "SPY QQQ, DIA")], {"symbols": ["SPY", "QQQ", "DIA"]}),
        ("fetch", [("symbols", "BRK.B")], {"symbols": ["BRK.B"]}),
        ("backtest", [("start", "2005-01-03"), ("end", "20241231")], {"end": "2024-12-31"}),
        ("backtest", [("end", "None")], {"end": None}),
        ("review", [("start", "2025-01-02")], {"start": "2025-01-02"}),
        (
            "backtest",
            [("overrides", '{"daily_capital": 500, "assets": "spy qqq"}')],
            {"overrides": {"daily_capital": 500.0, "assets": ["SPY", "QQQ"]}},
        ),
        (
            "sweep",
            [("grid", '{"daily_capital": [10, 20]}')],
            {"grid": '{"daily_capital": [10, 20]}'},
        ),
    ],
)
def test_lists_dates_and_json_are_read_by_parameter(job, pairs, expected):
    plan = _plan(job, pairs)
    assert {k: plan.parameters[k] for k in expected} == expected


@pytest.mark.parametrize(
    "job, pairs, message",
    [
        ("fetch", [("symbols", "../TRAV/SPY")], "-p symbols: '../TRAV/SPY' is not a ticker symbol"),
        ("fetch", [("symbols", "SPY,ABCDEFGHIJKLMNOPQ")], "'ABCDEFGHIJKLMNOPQ' is not a ticker"),
        ("fetch", [("symbols", "SPY,spy")], "SPY is listed twice"),
        ("fetch", [("symbols", " , ")], "-p symbols is empty"),
        ("backtest", [("start", "2099-01-03")], "-p start 2099-01-03 is out of range"),
        ("backtest", [("end", "1989-12-29")], "-p end 1989-12-29 is out of range"),
        ("backtest", [("start", "2025-02-30")], "-p start '2025-02-30' is not a date"),
        ("backtest", [("start", "9" * 5000)], "parameter 'start' is 5,000 characters long"),
        ("backtest", [("start", "9" * 1000)], "-p start '9999999"),
        (
            "backtest",
            [("overrides", '{"daily_capital": 1e308}')],
            "trading_config.daily_capital: 1e+308 is out of range: "
            "allowed 0 < daily_capital <= 1,000,000,000",
        ),
        ("backtest", [("overrides", '{"daily_capital": 1e999}')], "inf is not a finite number"),
        (
            "backtest",
            [("overrides", '{"daily_capital": NaN}')],
            "daily_capital: nan is not a finite",
        ),
        ("backtest", [("overrides", '{"daily_capitol": 5}')], "daily_capitol: unknown parameter"),
        ("backtest", [("overrides", '{"sell_percentage": 0.1}')], "0.3 <= sell_percentage <= 1"),
        ("backtest", [("overrides", '{"assets": ["SPY", "../x"]}')], "'../X' is not a ticker"),
        ("backtest", [("overrides", "daily_capital=5")], "-p overrides is not JSON"),
        ("backtest", [("overrides", "[1, 2]")], "-p overrides must be a JSON object"),
        ("backtest", [("overrides", "[" * 999 + "]" * 999)], "-p overrides is not JSON"),
        ("sweep", [("grid", '{"daily_capital": [10, 1e308]}')], "daily_capital: 1e+308 is out"),
    ],
)
def test_bad_values_are_refused_on_one_line_before_a_kernel(job, pairs, message):
    with pytest.raises(JobError) as err:
        _plan(job, pairs)
    text = str(err.value)
    assert message in text and "\n" not in text and len(text) < 600, text


def test_a_far_future_or_ancient_date_is_refused_wherever_a_user_types_it():
    today = today_eastern()
    assert check_user_date(today + dt.timedelta(days=366), "--date", today) is not None
    with pytest.raises(CalendarError, match="--date .* is out of range"):
        check_user_date(today + dt.timedelta(days=367), "--date", today)
    with pytest.raises(CalendarError, match="out of range: give a date from 1990-01-01"):
        to_date("1989-12-31", "--start")
    with pytest.raises(JobError, match="--date 2099-01-02 is out of range"):
        runner.plan_run("signal", date="2099-01-02")
    assert to_date(dt.date(1900, 1, 1)) == dt.date(1900, 1, 1)  # computed dates are not users'


def test_a_list_or_dict_default_is_read_as_a_list_or_json():
    declared = {"names": {"default": "['a']"}, "options": {"default": "{}"}}
    out = coerce_parameters({"names": "a,b c", "options": '{"x": 1}'}, declared)
    assert out == {"names": ["a", "b", "c"], "options": {"x": 1}}


# --- real processes ------------------------------------------------------------------------------


def _allocator(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "allocator", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["fetch", "--source", "synthetic", "-p", "symbols", "../TRAV/SPY"], "not a ticker"),
        (["backtest", "-p", "overrides", '{"daily_capital":1e308}'], "daily_capital: 1e+308"),
        (["backtest", "-p", "start", "9" * 5000], "5,000 characters long"),
        (["backtest", "-p", "end", "2099-12-31"], "-p end 2099-12-31 is out of range"),
        (["signal", "--date", "2099-01-02"], "--date 2099-01-02 is out of range"),
        (["signal", "--date", "9" * 5000], "is not a date: use YYYY-MM-DD"),
    ],
)
def test_allocator_run_refuses_bad_values_with_exit_2_and_writes_nothing(
    database_url, tmp_path, args, message
):
    upgrade(make_engine(database_url))
    env = {"DATABASE_URL": database_url, "ALLOCATOR_DOTENV": "off"}
    done = _allocator(["run", *args], env, tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and len(lines[0]) < 600, done.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(job_runs)).scalar_one() == 0
    engine.dispose()


def test_a_number_default_wins_over_the_name():
    declared = {"symbols": {"default": "2"}, "start": {"default": "0"}}
    assert coerce_parameters({"symbols": 3, "start": 1}, declared) == {"symbols": 3, "start": 1}


# --- choices, folders and periods (issue 18, item 6) ---------------------------------------------


@pytest.mark.parametrize(
    "job, pairs, message",
    [
        ("fetch", [("source", "nosuch")], "-p source 'nosuch' is not one of alphavantage, tiingo"),
        ("backtest", [("config_source", "defualt")], "-p config_source 'defualt' is not one of"),
        ("backtest", [("data_source", "csvv")], "-p data_source 'csvv' is not one of database"),
        ("sweep", [("base", "agressive")], "-p base 'agressive' is not one of default, seed"),
        ("review", [("job", "fetchh")], "-p job 'fetchh' is not one of fetch, signal"),
        ("fetch", [("csv_dir", "/no/such/dir")], "-p csv_dir /no/such/dir is not a folder"),
        (
            "backtest",
            [("start", "2025-01-02"), ("end", "2024-01-02")],
            "-p start 2025-01-02 is after -p end 2024-01-02: give start on or before end",
        ),
        ("backtest", [("end", "2004-01-02")], "-p start 2005-01-03 is after -p end 2004-01-02"),
        (
            "review",
            [("start", "2025-03-01"), ("end", "2025-02-01")],
            "-p start 2025-03-01 is after",
        ),
        ("study", [("in_start", "2015-01-02"), ("data_source", "synthetic")], "-p in_start"),
        ("walkforward", [("out_start", "2015-01-02")], "unknown parameter 'out_start'"),
    ],
)
def test_choices_folders_and_periods_are_checked_before_a_kernel(job, pairs, message):
    with pytest.raises(JobError) as err:
        _plan(job, pairs)
    text = str(err.value)
    assert message in text and "\n" not in text and len(text) < 600, text


def test_every_choice_is_what_the_package_accepts():
    from allocator.notebook.jobspec import JOBS
    from allocator.notebook.parameters import CHOICES
    from allocator.research.replay import CONFIG_SOURCES, DATA_SOURCES
    from allocator.shell.marketdata import SOURCE_NAMES
    from allocator.strategy.config import PRESET_NAMES
    from allocator.tuning.acceptance import DESIGNS

    assert {
        "source": SOURCE_NAMES,
        "data_source": DATA_SOURCES,
        "config_source": CONFIG_SOURCES,
        "base": PRESET_NAMES,
        "job": tuple(JOBS),
        "design": tuple(DESIGNS),
    } == CHOICES


def test_every_parameter_whose_default_names_its_values_is_checked():
    """A ``# a | b | c`` comment after a default names the values: each such one is a choice."""
    import json
    import re

    from allocator.notebook.parameters import CHOICES

    listed = re.compile(r"^(\w+) = [^#\n]*#[ \t]*(\w+(?:[ \t]*\|[ \t]*\w+)+)", re.M)
    found = 0
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        cell = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))
        for name, values in listed.findall("".join(cell["source"])):
            named = {v.strip() for v in values.split("|")}
            assert name in CHOICES and named <= set(CHOICES[name]), (notebook.name, name, named)
            found += 1
    assert found >= 6  # source, config_source, base and data_source in four notebooks


def test_a_csv_source_needs_a_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("ALLOCATOR_MARKET_CSV_DIR", raising=False)
    with pytest.raises(JobError, match="source csv reads a folder of SYMBOL.csv files: give"):
        _plan("fetch", [("source", "csv")])
    monkeypatch.setenv("ALLOCATOR_MARKET_CSV_DIR", str(tmp_path / "gone"))
    with pytest.raises(JobError, match="ALLOCATOR_MARKET_CSV_DIR= .*gone is not a folder"):
        _plan("backtest", [("data_source", "csv")])
    monkeypatch.setenv("ALLOCATOR_MARKET_CSV_DIR", str(tmp_path))
    assert _plan("fetch", [("source", "csv")]).parameters["source"] == "csv"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "history").mkdir()
    plan = _plan("fetch", [("source", "csv"), ("csv_dir", "history")])
    assert plan.parameters["csv_dir"] == str(tmp_path / "history")  # the kernel runs elsewhere


@pytest.mark.parametrize(
    "args, message",
    [
        (["fetch", "--source", "nosuch"], "--source for job fetch 'nosuch' is not one of"),
        (["backtest", "--source", "csvv"], "--source for job backtest 'csvv' is not one of"),
        (["fetch", "--source", "csv", "--csv-dir", "/no/such/dir"], "/no/such/dir is not a folder"),
        (["backtest", "-p", "start", "2025-01-02", "-p", "end", "2024-01-02"], "is after -p end"),
        (["backtest", "-p", "config_source", "defualt"], "'defualt' is not one of history"),
    ],
)
def test_allocator_run_refuses_bad_choices_with_exit_2_and_writes_nothing(
    database_url, tmp_path, args, message
):
    test_allocator_run_refuses_bad_values_with_exit_2_and_writes_nothing(
        database_url, tmp_path, args, message
    )
