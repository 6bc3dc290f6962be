import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from allocator.cli.commands import main
from allocator.exceptions import CalendarError
from allocator.jobs.backfill import resolve_range
from allocator.shell.calendar import EASTERN, latest_complete_session
from allocator.shell.persistence import make_engine
from allocator.shell.persistence.schema import price_history

D = dt.date
ROOT = Path(__file__).resolve().parents[1]
#: After the latest complete session, yet within the year ahead that dates may reach.
SOON = (dt.date.today() + dt.timedelta(days=30)).isoformat()
GOOD = "date,open,high,low,close,volume\n2025-01-02,1,2,0.5,1.5,10\n2025-01-03,1.5,2,1,1.8,20\n"


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
    assert "ERROR allocator.jobs.ingest: QQQ: " in captured.err
    assert "close -1.8 on 2025-01-03 is not above zero" in captured.err
    assert "FAILED QQQ (see the errors above)" in captured.out
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
        (["--start", "2025-01-02", "--end", SOON], "latest complete session"),
        (["--start", "2025-01-02", "--end", "2099-01-02"], "--end 2099-01-02 is out of range"),
        (["--start", "1985-01-02"], "--start 1985-01-02 is out of range"),
        (["--start", "9" * 5000], "is not a date: use YYYY-MM-DD"),
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


def _backfill_process(database_url: str, csv_dir: Path, *args: str):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "allocator",
            "backfill",
            "--source",
            "csv",
            "--csv-dir",
            str(csv_dir),
        ]
        + ["--start", "2025-01-01", "--end", "2025-01-31", *args],
        env={**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    "symbols, message",
    [
        (["SPY", "../TRAV/SPY", "QQQ"], "--symbols: '../TRAV/SPY' is not a ticker symbol"),
        (["SPY", "ABCDEFGHIJKLMNOPQ", "QQQ"], "--symbols: 'ABCDEFGHIJKLMNOPQ' is not a ticker"),
        (["SPY", "/etc/passwd"], "'/ETC/PASSWD' is not a ticker symbol"),
    ],
)
def test_bad_symbols_are_refused_before_anything_is_read_or_stored(
    database_url, monkeypatch, tmp_path, symbols, message
):
    csv_dir, outside = tmp_path / "csv", tmp_path / "TRAV"
    csv_dir.mkdir()
    outside.mkdir()
    for folder in (csv_dir, outside):
        (folder / "SPY.csv").write_text(GOOD)
        (folder / "QQQ.csv").write_text(GOOD)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["db", "upgrade"]) == 0

    done = _backfill_process(database_url, csv_dir, "--symbols", *symbols)

    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert _counts(database_url) == {}  # not even SPY, given before the bad symbol


def test_bars_out_of_range_are_refused_naming_symbol_date_and_values(
    database_url, monkeypatch, capsys, tmp_path
):
    (tmp_path / "SPY.csv").write_text(GOOD.replace("1.5,2,1,1.8,20", "1.5,2,1,2.5,20"))
    (tmp_path / "QQQ.csv").write_text(GOOD.replace("1,2,0.5,1.5,10", "1,2,0.5,1e308,10"))
    (tmp_path / "DIA.csv").write_text(GOOD)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["db", "upgrade"]) == 0
    argv = ["backfill", "--source", "csv", "--csv-dir", str(tmp_path), "--start", "2025-01-01"]

    assert main([*argv, "--end", "2025-01-31"]) == 1

    err = capsys.readouterr().err
    assert "SPY: " in err and "close 2.5 on 2025-01-03 is outside low 1.0..high 2.0" in err
    assert "QQQ: " in err and "close 1e+308 on 2025-01-02 is not below 1e+07" in err
    assert _counts(database_url) == {"DIA": 2}  # the others go on; nothing of SPY or QQQ


def test_a_tiny_price_or_a_fractional_volume_refuses_the_symbol_on_both_databases(
    database_url, monkeypatch, capsys, tmp_path
):
    (tmp_path / "SPY.csv").write_text(GOOD.replace("1.5,2,1,1.8,20", "1.5,2,1,1.8,12.5"))
    (tmp_path / "QQQ.csv").write_text(GOOD.replace("1,2,0.5,1.5,10", "1e-300,2,1e-300,1.5,10"))
    (tmp_path / "DIA.csv").write_text(GOOD)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["db", "upgrade"]) == 0
    argv = ["backfill", "--source", "csv", "--csv-dir", str(tmp_path), "--start", "2025-01-01"]

    assert main([*argv, "--end", "2025-01-31"]) == 1

    err = capsys.readouterr().err
    assert "SPY: " in err and "volume 12.5 on 2025-01-03 is not a whole number of shares" in err
    assert "QQQ: " in err and "open 1e-300 on 2025-01-02 is below the smallest price 0.0001" in err
    assert _counts(database_url) == {"DIA": 2}  # nothing of SPY (not even 12 shares) or QQQ


@pytest.mark.parametrize(
    "text, end, message",
    [
        ("date,open,high,low,close,volume\n", "2025-01-31", "holds no bars (a header only)"),
        (GOOD, "2024-12-31", "has no bars from 2024-12-02 to 2024-12-31"),
    ],
)
def test_a_file_without_bars_in_range_is_an_error_naming_it(
    database_url, monkeypatch, capsys, tmp_path, text, end, message
):
    (tmp_path / "SPY.csv").write_text(text)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["db", "upgrade"]) == 0
    argv = ["backfill", "--source", "csv", "--csv-dir", str(tmp_path), "--symbols", "SPY"]

    assert main([*argv, "--start", "2024-12-02", "--end", end]) == 1

    err = capsys.readouterr().err
    assert f"SPY: {tmp_path / 'SPY.csv'}" in err and message in err
    assert _counts(database_url) == {}
