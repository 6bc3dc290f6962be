"""History is never silently replaced by another source, and synthetic bars never join real ones.

One kind of history per database: the synthetic market is refused on real history, and a real
source on synthetic history (unless ``--replace-synthetic`` deletes it first), one after the
other or both at once.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from allocator.cli.commands import main
from allocator.exceptions import MixedHistoryError
from allocator.jobs.fetch import fetch_bars
from allocator.shell import calendar
from allocator.shell.marketdata.csvsource import CsvSource
from allocator.shell.persistence import make_engine
from allocator.shell.persistence.prices import upsert_bars
from allocator.shell.persistence.schema import price_history

DAY = dt.date(2026, 8, 21)


def bar(close: float) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "date": DAY,
                "open": close,
                "high": close + 1,
                "low": close - 1,
                "close": close,
                "volume": 100,
            }
        ]
    )


def stored(engine) -> tuple[float, str]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(price_history.c.close, price_history.c.source)).one()
    return row.close, row.source


@pytest.mark.parametrize(
    "policy, expected",
    [("update", (765.72, "csv")), ("keep", (765.72, "csv")), ("replace", (238.58, "tiingo"))],
)
def test_another_source_replaces_a_bar_only_when_asked(engine, caplog, policy, expected):
    with engine.begin() as conn:
        upsert_bars(conn, "SPY", bar(765.72), "csv", sessions=[DAY])
    with engine.begin() as conn:
        result = upsert_bars(conn, "SPY", bar(238.58), "tiingo", sessions=[DAY], on_revision=policy)
    assert stored(engine) == expected
    assert result.revisions[0]["old_source"] == "csv" and result.revisions[0]["new_close"] == 238.58
    assert "tiingo reports the bar differently (close 765.72 -> 238.58" in caplog.text
    if policy == "update":
        assert "kept the csv bar (pass --on-revision replace to take tiingo's)" in caplog.text


def test_a_revision_of_the_same_source_is_stored_by_default(engine):
    with engine.begin() as conn:
        upsert_bars(conn, "SPY", bar(765.72), "csv", sessions=[DAY])
    with engine.begin() as conn:
        upsert_bars(conn, "SPY", bar(766.0), "csv", sessions=[DAY])
    assert stored(engine) == (766.0, "csv")


def test_synthetic_bars_are_refused_over_real_history(database_url, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    (tmp_path / "SPY.csv").write_text(
        "date,open,high,low,close,volume\n2026-08-21,765.0,767.0,760.0,765.72,1000\n"
    )
    assert main(["db", "upgrade"]) == 0
    code = main(
        [
            "backfill",
            "--source",
            "csv",
            "--csv-dir",
            str(tmp_path),
            "--symbols",
            "SPY",
            "--start",
            "2026-08-21",
            "--end",
            "2026-08-21",
        ]
    )
    assert code == 0
    capsys.readouterr()
    code = main(["backfill", "--source", "synthetic", "--days", "400", "--symbols", "SPY"])
    assert code == 2
    assert "the database holds bars from csv: the synthetic market would mix" in (
        capsys.readouterr().err
    )
    from allocator.shell.persistence import make_engine

    engine = make_engine(database_url)
    assert stored(engine) == (765.72, "csv")
    engine.dispose()


SYMBOLS = ("SPY", "QQQ", "DIA")
CSV_DAYS = calendar.sessions_between(dt.date(2026, 8, 3), DAY)


def write_csvs(folder: Path) -> Path:
    """SPY, QQQ and DIA files of a few real-looking sessions ending ``DAY``."""
    folder.mkdir(exist_ok=True)
    for symbol in SYMBOLS:
        rows = [f"{d},100.0,101.0,99.0,100.5,1000" for d in CSV_DAYS]
        (folder / f"{symbol}.csv").write_text("date,open,high,low,close,volume\n" + "\n".join(rows))
    return folder


def sources_and_count(url: str) -> tuple[set[str], int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        found = conn.execute(sa.select(price_history.c.source)).scalars().all()
    engine.dispose()
    return set(found), len(found)


def test_a_real_source_refuses_synthetic_history_unless_it_replaces_it(
    database_url, monkeypatch, tmp_path, capsys
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    folder = write_csvs(tmp_path / "history")
    real = ["backfill", "--source", "csv", "--csv-dir", str(folder), "--start", "2026-08-03"]
    real += ["--end", str(DAY)]
    assert main(["db", "upgrade"]) == 0
    assert main(["backfill", "--source", "synthetic", "--days", "300"]) == 0
    before = sources_and_count(database_url)
    capsys.readouterr()

    assert main(real) == 2

    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("allocator: SPY, QQQ, DIA: the stored bars are synthetic"), err
    assert "use a new DATABASE_URL" in err[0] and "--replace-synthetic" in err[0]
    assert sources_and_count(database_url) == before == ({"synthetic"}, 300 * 3)

    assert main([*real, "--replace-synthetic"]) == 0
    assert sources_and_count(database_url) == ({"csv"}, len(CSV_DAYS) * 3)
    capsys.readouterr()
    assert main(["backfill", "--source", "synthetic", "--days", "5", "--replace-synthetic"]) == 2
    assert "give a real --source" in capsys.readouterr().err


def test_the_fetch_job_refuses_to_store_real_bars_over_synthetic_ones(engine, tmp_path):
    from tests.helpers import seed

    seed(engine, dt.date(2026, 7, 1), DAY)
    with pytest.raises(MixedHistoryError, match="SPY, QQQ, DIA: the stored bars are synthetic"):
        fetch_bars(engine, DAY, CsvSource(write_csvs(tmp_path / "history")), list(SYMBOLS))
    with engine.connect() as conn:
        assert set(conn.execute(sa.select(price_history.c.source)).scalars()) == {"synthetic"}


def test_synthetic_and_real_backfills_at_once_leave_one_kind_of_history(database_url, tmp_path):
    """Both orders happen: whichever takes the prices lock first stores, the other is refused."""
    folder = write_csvs(tmp_path / "history")
    env = {**os.environ, "DATABASE_URL": database_url, "ALLOCATOR_DOTENV": "off"}
    command = [sys.executable, "-m", "allocator", "backfill"]
    subprocess.run([*command[:-1], "db", "upgrade"], env=env, check=True, capture_output=True)
    engine = make_engine(database_url)
    winners = set()
    for _ in range(3):
        synthetic = [*command, "--source", "synthetic", "--days", "300"]
        real = [*command, "--source", "csv", "--csv-dir", str(folder), "--start", "2026-08-03"]
        real += ["--end", str(DAY)]
        both = [
            subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for c in (synthetic, real)
        ]
        done = [(p.wait(timeout=300), p.stderr.read()) for p in both]
        sources, _ = sources_and_count(database_url)
        assert len(sources) == 1, (sources, done)
        assert sorted(code for code, _ in done) == [0, 2], done
        winners |= sources
        with engine.begin() as conn:
            conn.execute(price_history.delete())
    engine.dispose()
    assert winners <= {"synthetic", "csv"}
