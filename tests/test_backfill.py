import datetime as dt

import pytest
import sqlalchemy as sa

from allocator.cli.commands import main
from allocator.exceptions import CalendarError
from allocator.jobs.backfill import resolve_range
from allocator.shell.calendar import EASTERN, latest_complete_session
from allocator.shell.persistence import make_engine
from allocator.shell.persistence.schema import price_history

D = dt.date


def _counts(url):
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(price_history.c.symbol, sa.func.count()).group_by(price_history.c.symbol)
        ).all()
    engine.dispose()
    return dict(rows)


def test_backfill_twice_leaves_the_same_rows(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["db", "upgrade"]) == 0
    assert main(["backfill", "--source", "synthetic", "--days", "400"]) == 0
    first = _counts(database_url)
    assert first == {"SPY": 400, "QQQ": 400, "DIA": 400}
    assert main(["backfill", "--source", "synthetic", "--days", "400"]) == 0
    assert _counts(database_url) == first
    out = capsys.readouterr().out
    assert "1200 bars inserted" in out and "0 bars inserted" in out


def test_one_failing_symbol_loses_none_of_the_others(database_url, monkeypatch, capsys, tmp_path):
    good = "date,open,high,low,close,volume\n2025-01-02,1,2,0.5,1.5,10\n2025-01-03,1.5,2,1,1.8,20\n"
    (tmp_path / "SPY.csv").write_text(good)
    (tmp_path / "QQQ.csv").write_text(good.replace("1.8,20", "-1.8,20"))
    (tmp_path / "DIA.csv").write_text(good)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["db", "upgrade"]) == 0
    code = main(
        [
            "backfill",
            "--source",
            "csv",
            "--csv-dir",
            str(tmp_path),
            "--start",
            "2025-01-01",
            "--end",
            "2025-01-31",
        ]
    )
    assert code == 1
    captured = capsys.readouterr()
    assert "FAILED QQQ" in captured.err
    assert "close -1.8 on 2025-01-03 is not above zero" in captured.err
    # QQQ stored nothing, not even its good row
    assert _counts(database_url) == {"SPY": 2, "DIA": 2}


def test_not_migrated_database_is_explained(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["backfill", "--source", "synthetic", "--days", "5"]) == 1
    assert "allocator db upgrade" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--days", "5", "--start", "2025-01-02"], "either --days or --start"),
        (["--start", "2025-02-01", "--end", "2025-01-01"], "is before --start"),
        (["--start", "2025-1-32"], "is not a date"),
        ([], "give --days N or --start"),
        (["--days", "0"], "positive number"),
        (["--start", "2025-01-02", "--end", "2099-01-02"], "latest complete session"),
    ],
)
def test_bad_ranges_are_usage_errors(argv, message, monkeypatch, capsys):
    assert main(["backfill", "--source", "synthetic", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.strip().count("\n") == 0


def test_latest_complete_session_respects_the_close():
    def at(y, m, d, hh, mm):
        return dt.datetime(y, m, d, hh, mm, tzinfo=EASTERN)

    assert latest_complete_session(at(2025, 1, 8, 15, 59)) == D(2025, 1, 7)
    assert latest_complete_session(at(2025, 1, 8, 16, 0)) == D(2025, 1, 8)
    assert latest_complete_session(at(2025, 1, 9, 18, 0)) == D(2025, 1, 8)  # closed day
    assert resolve_range(days=3, now=at(2025, 1, 13, 9, 0)) == (D(2025, 1, 7), D(2025, 1, 10))
    with pytest.raises(CalendarError):
        resolve_range(start="2025-01-02", end="2025-01-13", now=at(2025, 1, 13, 9, 0))


def test_a_source_ending_before_the_end_is_warned_about(
    database_url, monkeypatch, capsys, caplog, tmp_path
):
    bars = "date,open,high,low,close,volume\n2025-01-02,1,2,0.5,1.5,10\n2025-01-03,1.5,2,1,1.8,20\n"
    longer = bars + "2025-01-31,1.5,2,1,1.9,30\n"
    (tmp_path / "SPY.csv").write_text(longer)
    (tmp_path / "QQQ.csv").write_text(bars)
    (tmp_path / "DIA.csv").write_text(longer)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["db", "upgrade"]) == 0
    argv = ["backfill", "--source", "csv", "--csv-dir", str(tmp_path), "--start", "2025-01-01"]

    with caplog.at_level("WARNING", logger="allocator.jobs.ingest"):
        assert main([*argv, "--end", "2025-02-01"]) == 0  # a Saturday: the last session is 31st

    out = capsys.readouterr().out
    assert "WARNING the source ends before 2025-01-31: QQQ 2025-01-03" in out
    assert "SPY 2025" not in out.splitlines()[-1]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [
        "QQQ: the source's last bar is 2025-01-03, before 2025-01-31, the last session asked "
        "for: the stored history ends there"
    ]

    caplog.clear()
    with caplog.at_level("WARNING", logger="allocator.jobs.ingest"):
        assert main([*argv, "--end", "2025-01-03"]) == 0
    assert "WARNING" not in capsys.readouterr().out
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
