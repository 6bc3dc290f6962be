"""A backtest over bars of more than one source is refused unless asked, and then says so.

The database here is the one issue 18 found: the demo's synthetic bars, then a CSV import
whose bars end earlier, so the period reads real bars first and synthetic ones after.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from allocator.cli.commands import main
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.shell.persistence.prices import upsert_bars
from allocator.shell.persistence.schema import job_runs
from tests.helpers import seed, vendor_history

pytestmark = pytest.mark.notebook

SYMBOLS = ("SPY", "QQQ", "DIA")
HISTORY = dt.date(2023, 6, 1)
SWITCH = dt.date(2024, 9, 30)  # the CSV's last bar: synthetic bars after it
START, END = "2024-09-03", "2024-10-31"


def _mixed(engine) -> None:
    """The CSV's bars up to ``SWITCH``, synthetic ones after: a database from before the rule."""
    seed(engine, HISTORY, HISTORY - dt.timedelta(days=1))  # the config only
    source = SyntheticSource()
    end = dt.date.fromisoformat(END)
    with engine.begin() as conn:
        for symbol in SYMBOLS:
            bars = source.fetch(symbol, HISTORY, end)
            upsert_bars(conn, symbol, bars[bars["date"] <= SWITCH], "csv")
            upsert_bars(conn, symbol, bars[bars["date"] > SWITCH], "synthetic")


@pytest.fixture
def backtest_env(tmp_path, monkeypatch, database_url, engine):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return tmp_path, engine


def _backtest(*extra: str) -> int:
    return main(["run", "backtest", "-p", "start", START, "-p", "end", END, *extra])


def test_a_backtest_over_two_sources_is_refused_on_one_line_and_writes_nothing(backtest_env, capfd):
    tmp_path, engine = backtest_env
    _mixed(engine)

    assert _backtest() == 2

    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"backtest {START}..{END}: its bars come from 2 sources, csv (DIA, QQQ, SPY" in err[0]
    assert "synthetic (DIA, QQQ, SPY 2024-10-01..2024-10-31" in err[0]
    assert "pass -p mixed_sources True to run it anyway" in err[0]
    assert not (tmp_path / "runs").exists()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(job_runs)).scalar_one() == 0


def test_a_backtest_asked_to_mix_sources_says_so_in_its_report(backtest_env, capfd):
    tmp_path, engine = backtest_env
    _mixed(engine)

    assert _backtest("-p", "mixed_sources", "True") == 0

    (report,) = (tmp_path / "reports").rglob("backtest_*.html")
    page = report.read_text()
    assert '<div class="note-banner"><strong>Note.</strong> The bars of this backtest' in page
    assert page.index("come from 2 sources: csv (") < page.index('<h1 id="Backtest"')
    assert "come from 2 sources" in report.with_suffix(".md").read_text()
    assert _backtest("-p", "mixed_sources", "maybe") == 2
    assert "'mixed_sources' must be True or False" in capfd.readouterr().err


def test_a_backtest_over_one_source_has_no_note(backtest_env):
    tmp_path, engine = backtest_env
    seed(engine, HISTORY, dt.date.fromisoformat(END), source=vendor_history("csv"))

    assert _backtest() == 0

    (report,) = (tmp_path / "reports").rglob("backtest_*.html")
    assert "note-banner" not in report.read_text().split("<style>")[-1].split("</style>")[-1]
