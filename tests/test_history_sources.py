"""History is never silently replaced by another source, and synthetic bars never join real ones."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from allocator.cli.commands import main
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
    assert code == 1
    assert "the database holds bars from csv: the synthetic market would mix" in (
        capsys.readouterr().err
    )
    from allocator.shell.persistence import make_engine

    engine = make_engine(database_url)
    assert stored(engine) == (765.72, "csv")
    engine.dispose()
