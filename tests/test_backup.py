"""`allocator db backup` / `db restore`: a real round trip on SQLite and PostgreSQL, via the CLI.

Every backup here is written by the real command in a child process (pg_dump, SQLite's online
backup API) and restored by it (pg_restore + psql, SQLite's backup API); the tables are compared
row for row with what they held at the backup.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from allocator.shell.persistence import backup as backup_module
from allocator.shell.persistence import make_engine
from allocator.shell.persistence.backup import (
    BackupError,
    backup_database,
    prune_backups,
    stamp_of,
)
from allocator.shell.persistence.configs import open_version, seed_default_config
from allocator.shell.persistence.jobruns import finish_run, insert_running
from allocator.shell.persistence.ledger import record_deposit
from allocator.shell.persistence.migrate import head_revision, upgrade
from allocator.shell.persistence.prices import upsert_bars
from allocator.shell.persistence.signals import save_signal
from allocator.strategy.config import TradingConfig
from tests.conftest import create_database_url

DAY = dt.date(2025, 3, 3)
BACKUP_LINE = re.compile(
    r"^backup of \S+: (?P<path>\S+) \((?P<size>[\d,]+) bytes, sha256 (?P<sha>\w+)\)$"
)


def allocator(
    url: str, *args: str, env: dict | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """Run the real CLI in a child process against ``url``."""
    child_env = {**os.environ, "DATABASE_URL": url, "ALLOCATOR_DOTENV": "off", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "allocator", *args],
        env=child_env,
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


def backup_via_cli(url: str, folder: Path) -> Path:
    result = allocator(url, "db", "backup", "--to", str(folder))
    assert result.returncode == 0, result.stderr
    match = BACKUP_LINE.match(result.stdout.splitlines()[0])
    assert match, result.stdout
    path = Path(match["path"])
    assert int(match["size"].replace(",", "")) == path.stat().st_size
    assert match["sha"] == hashlib.sha256(path.read_bytes()).hexdigest()
    return path


def bars(day: dt.date, close: float) -> pd.DataFrame:
    return pd.DataFrame(
        [{"date": day, "open": close - 1, "high": close + 2, "low": close - 2, "close": close}]
    ).assign(volume=1_000_000)


def write_book(engine: sa.Engine, day: dt.date, *, first: bool) -> None:
    """Rows in prices, config versions, the ledger, signals and job runs (a day's work)."""
    with engine.begin() as conn:
        for symbol, close in (("SPY", 500.25), ("QQQ", 430.5)):
            upsert_bars(conn, symbol, bars(day, close + day.day), "csv", sessions=[day])
        if first:
            _, version = seed_default_config(conn)
        else:
            version = open_version(
                conn, TradingConfig(daily_capital=2000.0), day, created_by="test", notes="raised"
            )
        record_deposit(conn, day, 1000.0)
        save_signal(
            conn,
            day,
            action="BUY",
            confidence_score=0.75,
            allocations={"SPY": 600.0, "QQQ": 400.0},
            features_used={"regime": 0.4, "note": "ünïcode"},
            config_id=version.id,
        )
    run_id = insert_running(
        engine,
        "signal",
        day,
        parameters={"date": str(day)},
        git_commit="abc123",
        notebook_path=Path("/runs/x.ipynb"),
        html_path=None,
        md_path=None,
    )
    finish_run(engine, run_id, "succeeded")


def snapshot(url: str) -> dict[str, list]:
    """Every row of every table (the bookkeeping ones included), in a stable order."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {
                name: sorted(
                    (
                        tuple(row)
                        for row in conn.execute(sa.select(sa.text("*")).select_from(sa.table(name)))
                    ),
                    key=repr,
                )
                for name in sorted(names)
            }
    finally:
        engine.dispose()


def migrated(url: str) -> str:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_restores_every_table_row_for_row(database_url, tmp_path):
    url = migrated(database_url)
    engine = make_engine(url)
    write_book(engine, DAY, first=True)
    at_backup = snapshot(url)
    assert all(at_backup[t] for t in ("price_history", "trading_config", "cash_ledger"))
    assert all(at_backup[t] for t in ("daily_signals", "job_runs", "alembic_version"))

    path = backup_via_cli(url, tmp_path / "backups")
    check = subprocess.run(
        ["sha256sum", "--check", f"{path.name}.sha256"], cwd=path.parent, capture_output=True
    )
    assert check.returncode == 0, check.stdout  # the checksum file is sha256sum's own format

    write_book(engine, DAY + dt.timedelta(days=1), first=False)
    engine.dispose()
    after = snapshot(url)
    assert after != at_backup

    refused = allocator(url, "db", "restore", str(path))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "is not empty" in refused.stderr
    assert "add --force" in refused.stderr
    assert snapshot(url) == after, "a refused restore changed the database"

    restored = allocator(url, "db", "restore", str(path), "--force")
    assert restored.returncode == 0, restored.stderr
    assert f"revision {head_revision()} (head {head_revision()}, up to date)" in restored.stdout
    assert snapshot(url) == at_backup

    current = allocator(url, "db", "current")
    assert current.returncode == 0 and f"revision {head_revision()}" in current.stdout
    # The restored sequences continue after the restored rows: the next job run gets a new id.
    engine = make_engine(url)
    new_id = insert_running(
        engine,
        "fetch",
        DAY,
        parameters={},
        git_commit=None,
        notebook_path=None,
        html_path=None,
        md_path=None,
    )
    engine.dispose()
    assert new_id > max(row[0] for row in at_backup["job_runs"])


def test_a_lost_database_is_restored_into_a_new_one_without_force(database_url, tmp_path):
    url = migrated(database_url)
    engine = make_engine(url)
    write_book(engine, DAY, first=True)
    engine.dispose()
    path = backup_via_cli(url, tmp_path / "backups")
    at_backup = snapshot(url)

    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        targets = [(f"sqlite:///{tmp_path / 'new' / 'db.sqlite3'}", lambda: None)]
    else:
        targets = [create_database_url(backend, tmp_path) for _ in range(2)]
    try:
        # A brand-new database, and one just migrated (bookkeeping rows only): no --force needed.
        fresh, _ = targets[0]
        for target in [fresh] + [migrated(t) for t, _ in targets[1:]]:
            result = allocator(target, "db", "restore", str(path))
            assert result.returncode == 0, result.stderr
            assert snapshot(target) == at_backup
    finally:
        for _, drop in targets:
            drop()


def test_a_damaged_or_missing_checksum_is_refused(database_url, tmp_path):
    url = migrated(database_url)
    engine = make_engine(url)
    write_book(engine, DAY, first=True)
    engine.dispose()
    path = backup_via_cli(url, tmp_path / "backups")
    before = snapshot(url)

    with path.open("ab") as handle:
        handle.write(b"\0")
    damaged = allocator(url, "db", "restore", str(path), "--force")
    assert damaged.returncode == 1
    assert damaged.stderr.count("\n") == 1 and "does not match its checksum" in damaged.stderr

    Path(f"{path}.sha256").unlink()
    missing = allocator(url, "db", "restore", str(path), "--force")
    assert missing.returncode == 1
    assert f"{path.name}.sha256 is missing" in missing.stderr and "sha256sum" in missing.stderr
    assert snapshot(url) == before


def test_wrong_files_are_refused_as_usage_errors(database_url, tmp_path):
    url = migrated(database_url)
    backend = make_url(url).get_backend_name()
    other = "sqlite" if backend == "postgresql" else "postgresql"
    foreign = tmp_path / "other.bin"
    foreign.write_bytes(backup_module.MAGIC[other] + b"\0" * 64)
    text = tmp_path / "backup.sql"
    text.write_text("CREATE TABLE x (id int);\n")
    for path in (foreign, text):
        (tmp_path / f"{path.name}.sha256").write_text(
            f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n"
        )

    cases = {
        tmp_path / "nope.dump": "does not exist",
        text: "is not a backup made by `allocator db backup`",
        foreign: f"is a {other} backup but DATABASE_URL",
    }
    for path, message in cases.items():
        result = allocator(url, "db", "restore", str(path), "--force")
        assert result.returncode == 2, (path, result.stderr)
        assert result.stderr.count("\n") == 1 and message in result.stderr
    assert allocator(url, "db", "restore").returncode == 2  # argparse: FILE is required


def test_retention_deletes_only_this_tools_old_backups(database_url, tmp_path):
    url = migrated(database_url)
    folder = tmp_path / "backups"
    folder.mkdir()
    now = dt.datetime.now(dt.UTC)

    def own(age_days: float, suffix: str) -> Path:
        stamp = (now - dt.timedelta(days=age_days)).strftime("%Y%m%dT%H%M%SZ")
        return folder / f"capital_allocator_{stamp}{suffix}"

    old = [own(45, ".dump"), own(45, ".dump.sha256"), own(31, "_1.sqlite3")]
    kept = [
        own(29, ".sqlite3"),
        own(29, ".sqlite3.sha256"),
        folder / "capital_allocator_20200101.sql",  # the design document's naming: not ours
        folder / "capital_allocator_20200101T000000Z.dump.bak",
        folder / "notes_20200101T000000Z.dump",
    ]
    for path in old + kept:
        path.write_text("x")

    made = backup_via_cli(url, folder)
    result = allocator(url, "db", "backup", "--to", str(folder))
    assert result.returncode == 0

    assert not any(path.exists() for path in old)
    assert all(path.exists() for path in kept)
    assert made.exists() and Path(f"{made}.sha256").exists()
    # The second run reported nothing to remove: the first one had already done it.
    assert "removed" not in result.stdout


def test_the_backup_just_made_is_never_pruned(tmp_path):
    made = tmp_path / "capital_allocator_20200101T000000Z.sqlite3"
    older = tmp_path / "capital_allocator_20191201T000000Z.sqlite3"
    for path in (made, Path(f"{made}.sha256"), older):
        path.write_text("x")
    far_future = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

    assert prune_backups(tmp_path, far_future, keep=made) == [older]
    assert made.exists() and Path(f"{made}.sha256").exists()
    assert stamp_of(made) == dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def test_backups_and_their_folders_are_private_whatever_the_umask(database_url, tmp_path):
    url = migrated(database_url)
    folder = tmp_path / "new" / "backups"
    result = allocator(url, "db", "backup", "--to", str(folder), preexec_fn=lambda: os.umask(0))
    assert result.returncode == 0, result.stderr
    (backup,) = [p for p in folder.iterdir() if not p.name.endswith(".sha256")]

    assert mode(tmp_path / "new") == 0o700 and mode(folder) == 0o700
    assert mode(backup) == 0o600 and mode(Path(f"{backup}.sha256")) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == [backup.name, f"{backup.name}.sha256"]


def test_a_new_sqlite_database_is_private(tmp_path):
    previous = os.umask(0)
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'db.sqlite3'}")
        upgrade(engine)
        engine.dispose()
    finally:
        os.umask(previous)
    assert mode(tmp_path / "var") == 0o700
    assert mode(tmp_path / "var" / "db.sqlite3") == 0o600


def test_the_password_reaches_pg_dump_only_through_its_environment(tmp_path):
    server_url, drop = create_database_url("postgresql", tmp_path)
    try:
        url = make_url(migrated(server_url)).set(password="S3cretPw").render_as_string(False)
        shim = tmp_path / "bin"
        shim.mkdir()
        (shim / "pg_dump").write_text(
            "#!/bin/sh\n"
            'printf "%s\\n" "$0" "$@" > "$RECORD/argv"\n'
            'printf "%s" "$PGPASSWORD" > "$RECORD/password"\n'
            'exec "$REAL_PG_DUMP" "$@"\n'
        )
        (shim / "pg_dump").chmod(0o755)
        env = {
            "PATH": f"{shim}:{os.environ['PATH']}",
            "RECORD": str(tmp_path),
            "REAL_PG_DUMP": backup_module.find_pg_binary("pg_dump"),
        }
        result = allocator(url, "db", "backup", "--to", str(tmp_path / "b"), env=env)
        assert result.returncode == 0, result.stderr

        assert (tmp_path / "argv").read_text().startswith(f"{shim / 'pg_dump'}\n")
        assert "S3cretPw" not in (tmp_path / "argv").read_text()
        assert (tmp_path / "password").read_text() == "S3cretPw"
        assert "S3cretPw" not in result.stdout + result.stderr
        assert "postgres:***@" in result.stdout

        missing = make_url(url).set(database="no_such_database_here").render_as_string(False)
        failed = allocator(missing, "db", "backup", "--to", str(tmp_path / "f"))
        assert failed.returncode == 1
        assert failed.stderr.count("\n") == 1 and "pg_dump of postgresql://" in failed.stderr
        assert "no_such_database_here" in failed.stderr and "S3cretPw" not in failed.stderr
        assert list((tmp_path / "f").iterdir()) == [], "a failed backup left a file behind"
    finally:
        drop()


def test_a_missing_client_program_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(backup_module, "PG_BIN_DIRS", (str(tmp_path / "none"),))
    with pytest.raises(BackupError, match=r"^pg_dump not found on PATH.*postgresql-client"):
        backup_database("postgresql://u:pw@127.0.0.1/db", tmp_path / "b")


def test_sqlite_backup_is_consistent_while_a_job_writes(tmp_path):
    """A writer commits ten job runs per transaction; every backup holds whole transactions.

    Each transaction writes about 500 kB, so a plain file copy taken meanwhile tears (a count
    that is not a multiple of ten, or a file that fails the integrity check).
    """
    url = migrated(f"sqlite:///{tmp_path / 'busy.sqlite3'}")
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(stop)], stderr=subprocess.PIPE, text=True
    )
    try:
        engine = make_engine(url)
        while not _count_runs(engine) and writer.poll() is None:  # the writer is under way
            time.sleep(0.05)
        engine.dispose()
        folder = tmp_path / "backups"
        for _ in range(3):
            backup_via_cli(url, folder)
    finally:
        stop.touch()
        _, errors = writer.communicate(timeout=60)
    assert writer.returncode == 0, errors
    counts = []
    for path in sorted(folder.glob("*.sqlite3")):
        engine = make_engine(f"sqlite:///{path}")
        counts.append(_count_runs(engine))
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        engine.dispose()
    assert counts and all(n > 0 and n % 10 == 0 for n in counts), counts


def _count_runs(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM job_runs")).scalar_one()


WRITER = """
import datetime as dt, sys, time
from pathlib import Path
from allocator.shell.persistence import make_engine
from allocator.shell.persistence.schema import job_runs

engine = make_engine(sys.argv[1])
stop = Path(sys.argv[2])
for _ in range(300):  # at most 150 MB; the pauses let the backups in
    if stop.exists():
        break
    time.sleep(0.02)
    with engine.begin() as conn:
        now = dt.datetime.now(dt.UTC)
        conn.execute(job_runs.insert(), [
            {"job": "fetch", "status": "failed", "started_at": now, "error": "x" * 50_000}
            for _ in range(10)
        ])
"""
