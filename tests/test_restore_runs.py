"""A restore and the runs coordinate: real processes on SQLite and PostgreSQL.

``allocator db restore`` takes the database's lock exclusively, which every run holds shared: it
refuses (exit 75) or waits (``--wait``) while a run is live, and a run does not start while it
works. A run whose ``job_runs`` row vanished under it reports failure. The hold notebook
(``tests/notebooks/hold.ipynb``, see test_run_safety.py) keeps a run inside its kernel until the
test says go.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from allocator.shell.persistence import ledger
from allocator.shell.persistence.jobruns import list_runs
from allocator.shell.persistence.runlock import (
    RestoreInProgress,
    restore_lock,
    run_lock,
)
from allocator.shell.persistence.schema import job_runs
from tests.test_run_safety import (
    DAY,
    SESSION,
    _kernel_pid,
    _start,
    hold_env,  # noqa: F401 - the fixture, shared
)

pytestmark = pytest.mark.notebook


@pytest.fixture
def run_env(hold_env):  # noqa: F811 - the imported fixture, by name
    """test_run_safety's job environment: fetch is ``hold.ipynb``, signal is ``probe.ipynb``."""
    return hold_env


def _allocator(env: dict, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "allocator", *args],
        env=env,
        capture_output=True,
        text=True,
        **kwargs,
    )


def _backup(run_env) -> Path:
    done = _allocator(run_env.env, "db", "backup", "--to", str(run_env.tmp / "backups"))
    assert done.returncode == 0, done.stderr
    (path,) = (run_env.tmp / "backups").glob("capital_allocator_*[!6]")  # not the .sha256
    return path


def test_a_restore_refuses_then_waits_for_a_live_run(run_env):
    backup = _backup(run_env)  # an empty, migrated database
    job = _start(run_env, "-p", "commit", "True")
    _kernel_pid(run_env)
    (live,) = list_runs(run_env.engine)

    refused = _allocator(run_env.env, "db", "restore", str(backup), "--force")
    assert refused.returncode == 75, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "the database is in use by live runs" in refused.stderr
    assert f"fetch {SESSION} (run {live.id}, PID {job.pid} on {socket.gethostname()})" in (
        refused.stderr
    )
    assert "--wait SECONDS" in refused.stderr

    waiting = subprocess.Popen(
        [sys.executable, "-m", "allocator", "db", "restore", str(backup), "--force"]
        + ["--wait", "600"],
        env=run_env.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_env.go.touch()  # the job deposits and finishes; only then may the restore replace it
    out, err = job.communicate(timeout=300)
    assert job.returncode == 0, err
    assert f"fetch {SESSION} succeeded" in out
    restored_out, restored_err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, restored_err
    # It replaced the job's finished row and its deposit: it ran after the job, not under it.
    assert "replacing 2 rows" in restored_out
    run_env.engine.dispose()
    assert list_runs(run_env.engine) == []
    with run_env.engine.connect() as conn:
        assert ledger.cash_entries(conn) == []


def test_no_run_starts_while_a_restore_holds_the_database(run_env):
    with restore_lock(run_env.engine):
        in_restore = pytest.raises(RestoreInProgress, match="a database restore is in progress")
        with in_restore, run_lock(run_env.engine, "signal", DAY):
            pass
        refused = _allocator(run_env.env, "run", "signal", "--date", SESSION)
    assert refused.returncode == 75, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert (
        f"signal {SESSION} cannot start: a database restore is in progress (PID {os.getpid()} on "
        in refused.stderr
    )
    assert list_runs(run_env.engine) == []  # refused before anything was written
    with run_lock(run_env.engine, "signal", DAY):  # released with the restore
        pass


def test_a_run_whose_row_vanished_under_it_reports_failure(run_env):
    job = _start(run_env)
    _kernel_pid(run_env)
    (row,) = list_runs(run_env.engine)
    with run_env.engine.begin() as conn:  # what a restore without the lock did
        conn.execute(sa.delete(job_runs).where(job_runs.c.id == row.id))
    run_env.go.touch()
    out, err = job.communicate(timeout=300)
    assert job.returncode == 1, (out, err)
    assert "succeeded" not in out
    assert f"run {row.id} failed: its job_runs row is gone" in err
    assert len(err.strip().splitlines()) == 1, err
