"""Every command on a read-only, locked or full database answers one line, and writes nothing half.

Real ``allocator`` processes against databases that refuse writes the ways operators meet them:
an SQLite file opened ``mode=ro`` or made immutable (``chattr +i``, which stops root too), a
PostgreSQL database with ``default_transaction_read_only``, an SQLite file on a full file system
(a 1 MB tmpfs), and an SQLite file another process holds locked.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from allocator.shell.persistence import make_engine
from allocator.shell.persistence.migrate import upgrade
from allocator.shell.persistence.schema import price_history, trading_config

SYMBOLS = ("SPY", "QQQ", "DIA")
FIRST, LAST = dt.date(2026, 1, 2), dt.date(2026, 8, 21)


def _csvs(folder: Path, rows: int = 160) -> Path:
    """SPY, QQQ and DIA files of ``rows`` made-up sessions ending ``LAST``."""
    from allocator.shell import calendar

    folder.mkdir(exist_ok=True)
    days = calendar.sessions_between(dt.date(1990, 1, 2), LAST)[-rows:]
    for symbol in SYMBOLS:
        lines = [f"{d},100.0,101.0,99.0,100.5,1000" for d in days]
        (folder / f"{symbol}.csv").write_text(
            "date,open,high,low,close,volume\n" + "\n".join(lines)
        )
    return folder


def _allocator(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "allocator", *args],
        env={**os.environ, "ALLOCATOR_DOTENV": "off", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_line(done: subprocess.CompletedProcess, *expected: str) -> str:
    """The failure's line: last on stderr, the only one starting ``allocator:``, no traceback."""
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and lines, done.stderr
    assert [line for line in lines if line.startswith("allocator:")] == lines[-1:], done.stderr
    assert all(part in lines[-1] for part in expected), lines[-1]
    return lines[-1]


def _migrate(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def _counts(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    with engine.connect() as conn:
        bars = conn.execute(sa.select(sa.func.count()).select_from(price_history)).scalar_one()
        configs = conn.execute(sa.select(sa.func.count()).select_from(trading_config)).scalar_one()
    engine.dispose()
    return bars, configs


@contextlib.contextmanager
def _read_only(url: str, how: str):
    """``url`` made read-only ``how``; the URL to use. Undone afterwards."""
    engine = make_engine(url)
    if how == "postgresql":
        name = engine.url.database
        with engine.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
            conn.commit()
        engine.dispose()
        try:
            yield url
        finally:
            with engine.connect() as conn:
                conn.execute(sa.text("SET TRANSACTION READ WRITE"))
                conn.execute(
                    sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')
                )
                conn.commit()
            engine.dispose()
        return
    path = engine.url.database
    engine.dispose()
    if how == "mode=ro":
        yield f"sqlite:///file:{path}?mode=ro&uri=true"
        return
    if os.geteuid() != 0 or not shutil.which("chattr"):
        pytest.skip("chattr +i needs root")
    if subprocess.run(["chattr", "+i", path], capture_output=True).returncode:
        pytest.skip("this file system has no immutable flag")
    try:
        yield url
    finally:
        subprocess.run(["chattr", "-i", path], check=True)


def _ways(database_url: str) -> list[str]:
    return ["mode=ro", "chattr"] if database_url.startswith("sqlite") else ["postgresql"]


def test_commands_on_a_read_only_database_answer_one_line_and_change_nothing(
    database_url, tmp_path
):
    folder = _csvs(tmp_path / "history")
    backfill = ["backfill", "--source", "csv", "--csv-dir", str(folder), "--start", str(FIRST)]
    backfill += ["--end", str(LAST)]
    _migrate(database_url)  # no config, no bars
    for how in _ways(database_url):
        with _read_only(database_url, how) as url:
            env = {"DATABASE_URL": url}
            for args in (backfill, ["config", "seed"]):
                _one_line(
                    _allocator(env, *args), "cannot write to the database", "make it writable"
                )
        assert _counts(database_url) == (0, 0), how


def test_upgrading_a_read_only_empty_database_answers_one_line(database_url):
    if not database_url.startswith("sqlite"):
        make_engine(database_url).dispose()
    for how in _ways(database_url):
        with _read_only(database_url, how) as url:
            _one_line(_allocator({"DATABASE_URL": url}, "db", "upgrade"), "cannot write to the")


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB tmpfs (root only): a file system that fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount)], check=True)  # a straggler holds a file


def test_a_backfill_into_a_full_database_answers_one_line_and_keeps_whole_symbols(
    small_disk, tmp_path
):
    url = f"sqlite:///{small_disk / 'full.sqlite3'}"
    _migrate(url)
    folder = _csvs(tmp_path / "history", rows=6000)

    done = _allocator(
        {"DATABASE_URL": url},
        *("backfill", "--source", "csv", "--csv-dir", str(folder), "--end", str(LAST)),
        *("--start", "1990-01-02"),
    )

    line = _one_line(done, "cannot write to the database", "database or disk is full")
    assert "free space on its disk" in line and "stored nothing" in line
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = dict(
            conn.execute(
                sa.select(price_history.c.symbol, sa.func.count()).group_by(price_history.c.symbol)
            ).all()
        )
    engine.dispose()
    assert set(stored.values()) <= {6000}, stored  # a symbol is stored whole or not at all
    assert len(stored) < len(SYMBOLS)


@pytest.fixture
def full_postgres(tmp_path):
    """A PostgreSQL database in a tablespace on a 24 MB tmpfs with 300 KB left (root, a local
    server and a superuser: else skipped)."""
    import pwd
    import uuid

    from sqlalchemy.engine import make_url

    from tests.conftest import _require_pg, pg_server_url

    _require_pg()
    server = make_url(pg_server_url())
    if os.geteuid() != 0 or (server.host or "localhost") not in ("127.0.0.1", "localhost"):
        pytest.skip("a tablespace on a tmpfs needs root and the server on this machine")
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user to own the tablespace")
    # Not under tmp_path: the server's user must reach it (pytest's folders are private).
    mount = Path(tempfile.mkdtemp(prefix="allocator-pgdisk-", dir="/tmp"))
    options = f"size=24m,mode=0700,uid={owner.pw_uid},gid={owner.pw_gid}"
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)]).returncode:
        mount.rmdir()
        pytest.skip("cannot mount a tmpfs here")
    name = f"alloc_full_{uuid.uuid4().hex[:10]}"
    admin = make_engine(server.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            try:
                conn.execute(sa.text(f"CREATE TABLESPACE {name} LOCATION '{mount}'"))
            except sa.exc.DBAPIError as exc:
                pytest.skip(f"cannot create a tablespace: {exc.orig}")
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TABLESPACE {name}'))
        url = server.set(database=name).render_as_string(hide_password=False)
        _migrate(url)
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        (mount / "ballast").write_bytes(b"\0" * (free - 300 * 1024))
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(sa.text(f"DROP TABLESPACE IF EXISTS {name}"))
        admin.dispose()
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount)], check=True)
        mount.rmdir()


def test_a_backfill_into_a_full_postgresql_database_answers_one_line(full_postgres, tmp_path):
    folder = _csvs(tmp_path / "history", rows=6000)

    done = _allocator(
        {"DATABASE_URL": full_postgres},
        *("backfill", "--source", "csv", "--csv-dir", str(folder), "--end", str(LAST)),
        *("--start", "1990-01-02"),
    )

    line = _one_line(done, "cannot write to the database", "could not extend file")
    assert "free space on its disk" in line and "stored nothing" in line
    assert _counts(full_postgres)[0] in (0, 6000, 12000)  # whole symbols only


def test_a_backfill_on_a_locked_database_answers_one_line(tmp_path, monkeypatch, capsys):
    """Another process holds SQLite's write lock longer than the busy timeout allows."""
    from allocator.cli.commands import main
    from allocator.shell.persistence import engine as engine_module

    path = tmp_path / "locked.sqlite3"
    _migrate(f"sqlite:///{path}")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")

    def short_wait(dbapi_connection, record) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=200")

    monkeypatch.setattr(engine_module, "_on_sqlite_connect", short_wait)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(30, holder.rollback)
    release.start()
    try:
        folder = _csvs(tmp_path / "history")
        code = main(
            ["backfill", "--source", "csv", "--csv-dir", str(folder), "--start", str(FIRST)]
            + ["--end", str(LAST)]
        )
    finally:
        release.cancel()
        holder.rollback()
        holder.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("allocator: cannot write to the database"), err
    assert "database is locked; another process holds it" in err[-1]
    assert _counts(f"sqlite:///{path}") == (0, 0)
