"""A database's run locks follow its identity, not the spelling of its path or URL.

A SQLite database opened by another path (a hard link in another folder, a symlink, ``..``) and a
PostgreSQL database reached by another URL spelling take the same locks: two executes of one date
through two spellings once both "succeeded". In process and with real runs, on both databases.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy.engine import make_url

from allocator.shell.persistence import make_engine
from allocator.shell.persistence.runlock import RunLocked, run_lock, sqlite_lock_dir
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


def _other_spelling(run_env) -> str:
    """The same database by another path (SQLite: a hard link elsewhere) or URL (PostgreSQL)."""
    url = make_url(run_env.url)
    if url.get_backend_name() == "sqlite":
        linked = run_env.tmp / "elsewhere" / "linked.sqlite3"
        linked.parent.mkdir()
        os.link(url.database, linked)
        return f"sqlite:///{linked}"
    return url.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def test_locks_follow_the_database_not_the_spelling_of_its_path(run_env):
    other_url = _other_spelling(run_env)
    assert other_url != run_env.url
    other = make_engine(other_url)
    try:
        held = pytest.raises(RunLocked, match=f"execute {DAY} is already running")
        with run_lock(run_env.engine, "execute", DAY), held, run_lock(other, "execute", DAY):
            pass
        if run_env.url.startswith("sqlite"):
            symlink = run_env.tmp / "symlinked.sqlite3"
            symlink.symlink_to(make_url(run_env.url).database)
            dotted = f"sqlite:///{run_env.tmp}/elsewhere/../test.sqlite3"
            folders = {sqlite_lock_dir(make_engine(u)) for u in (f"sqlite:///{symlink}", dotted)}
            assert folders == {sqlite_lock_dir(run_env.engine)} == {sqlite_lock_dir(other)}
    finally:
        other.dispose()

    first = _start(run_env)  # a real run through one spelling, a second through the other
    _kernel_pid(run_env)
    second = subprocess.run(
        [sys.executable, "-m", "allocator", "run", "fetch", "--date", SESSION],
        env={**run_env.env, "DATABASE_URL": other_url},
        capture_output=True,
        text=True,
    )
    run_env.go.touch()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 75, second.stderr
    assert f"fetch {SESSION} is already running: held by PID {first.pid}" in second.stderr
