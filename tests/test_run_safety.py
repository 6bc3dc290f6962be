"""Runs are safe together and after a crash: real `allocator run` processes on both databases.

``tests/notebooks/hold.ipynb`` stands in for a job that is still working: it writes its kernel's
PID to a file, then waits for a "go" file, then (with ``commit``) records a deposit in the book.
That makes every race here deterministic: the test acts while the first run is provably inside
its kernel.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import sqlalchemy as sa

from allocator.cli.commands import main
from allocator.notebook import runner
from allocator.shell.persistence import ledger
from allocator.shell.persistence.jobruns import get_run, list_runs
from allocator.shell.persistence.runlock import RunLocked, lock_is_free, run_lock
from allocator.shell.persistence.schema import job_runs

pytestmark = pytest.mark.notebook

TEST_NOTEBOOKS = Path(__file__).parent / "notebooks"
SESSION = "2026-11-25"
DAY = dt.date(2026, 11, 25)


@pytest.fixture
def hold_env(tmp_path, monkeypatch, database_url, engine):
    """A job environment whose fetch job is ``hold.ipynb`` and whose probe job is ``probe``."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(TEST_NOTEBOOKS / "hold.ipynb", notebooks / "fetch.ipynb")
    shutil.copy(TEST_NOTEBOOKS / "probe.ipynb", notebooks / "signal.ipynb")
    variables = {
        "DATABASE_URL": database_url,
        "ALLOCATOR_RUNS_DIR": str(tmp_path / "runs"),
        "ALLOCATOR_REPORTS_DIR": str(tmp_path / "reports"),
        "ALLOCATOR_NOTEBOOKS_DIR": str(notebooks),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return SimpleNamespace(
        engine=engine,
        url=database_url,
        tmp=tmp_path,
        runs=tmp_path / "runs",
        env={**os.environ, **variables},
        ready=tmp_path / "ready",
        go=tmp_path / "go",
    )


def _start(env, *extra: str, job: str = "fetch") -> subprocess.Popen:
    command = [sys.executable, "-m", "allocator", "run", job, "--date", SESSION]
    command += ["-p", "ready_file", str(env.ready), "-p", "go_file", str(env.go), *extra]
    return subprocess.Popen(
        command, env=env.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_for(condition, what: str, limit: float = 180.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def _kernel_pid(env) -> int:
    _wait_for(lambda: env.ready.exists() and env.ready.read_text().strip(), "the kernel")
    return int(env.ready.read_text())


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_second_run_of_the_same_job_and_date_exits_75_naming_the_holder(hold_env):
    first = _start(hold_env)
    _kernel_pid(hold_env)
    second = subprocess.run(
        [sys.executable, "-m", "allocator", "run", "fetch", "--date", SESSION],
        env=hold_env.env,
        capture_output=True,
        text=True,
    )
    hold_env.go.touch()
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 75, second.stderr
    message = second.stderr.strip()
    assert len(message.splitlines()) == 1
    assert f"fetch {SESSION} is already running" in message
    assert f"PID {first.pid} on {socket.gethostname()}, started 20" in message
    # The refused run wrote nothing: one row, one archived notebook.
    assert [r.status for r in list_runs(hold_env.engine)] == ["succeeded"]
    assert len(list(hold_env.runs.rglob("*.ipynb"))) == 1


def test_a_killed_runner_takes_its_kernel_along_and_the_run_is_marked_abandoned(hold_env):
    runner_process = _start(hold_env, "-p", "commit", "True")
    kernel = _kernel_pid(hold_env)
    runner_process.send_signal(signal.SIGKILL)
    runner_process.wait(timeout=60)
    _wait_for(lambda: _gone(kernel), "the kernel to die with its runner")
    hold_env.go.touch()  # would let the kernel commit its deposit, were it alive
    with hold_env.engine.connect() as conn:
        assert ledger.cash_entries(conn) == []
    (row,) = list_runs(hold_env.engine)
    assert row.status == "running" and row.pid == runner_process.pid

    assert main(["runs", "--repair"]) == 0
    row = get_run(hold_env.engine, row.id)
    assert row.status == "abandoned"
    assert f"PID {runner_process.pid}" in row.error
    partial = Path(row.notebook_path)
    assert partial.is_file()
    assert not partial.stat().st_mode & 0o222  # read-only, even for root's tools
    assert row.sha256 and Path(row.html_path).is_file()  # rendered, flagged on top
    assert "abandoned" in Path(row.html_path).read_text()
    assert main(["runs", "--repair"]) == 0  # nothing left to repair
    assert get_run(hold_env.engine, row.id).status == "abandoned"

    # The lock died with the runner: the job runs again for the same date.
    parameters = {"ready_file": str(hold_env.ready), "go_file": str(hold_env.go)}
    result = runner.run_job("fetch", date=SESSION, parameters=parameters)
    assert result.status == "succeeded"


def _dead_runners_row(engine, job: str, hour: int) -> None:
    """A ``running`` row of ``job`` on DAY whose runner (on another host) is long gone."""
    with engine.begin() as conn:
        conn.execute(
            job_runs.insert().values(
                job=job,
                trade_date=DAY,
                status="running",
                started_at=dt.datetime(2026, 11, 25, hour, tzinfo=dt.UTC),
                pid=999_999_999,
                host="elsewhere",
            )
        )


def test_the_next_run_marks_a_dead_runners_row_abandoned(hold_env):
    _dead_runners_row(hold_env.engine, "signal", hour=11)
    result = runner.run_job("signal", date=SESSION)
    assert result.status == "succeeded"
    statuses = {r.id: r.status for r in list_runs(hold_env.engine)}
    assert sorted(statuses.values()) == ["abandoned", "succeeded"]


def test_a_run_longer_than_the_job_timeout_is_stopped(hold_env, monkeypatch):
    # long enough for a kernel to start on a loaded 2-core machine (3 s was not, under the suite)
    monkeypatch.setenv("ALLOCATOR_JOB_TIMEOUT", "10")
    parameters = {"ready_file": str(hold_env.ready), "go_file": str(hold_env.go)}  # never "go"
    result = runner.run_job("fetch", date=SESSION, parameters=parameters)
    assert result.status == "failed"
    assert "JobTimeout: the job ran longer than 10 s (ALLOCATOR_JOB_TIMEOUT)" in result.error
    assert _gone(int(hold_env.ready.read_text()))
    assert result.paths.notebook.stat().st_size > 0  # what ran is archived


def test_a_kernel_still_starting_at_the_time_limit_is_stopped_when_it_appears(
    hold_env, monkeypatch
):
    """The limit passes before papermill has even started the kernel: it is killed on sight,
    so it never reaches the cell that, after waiting 20 s, would record a deposit."""
    monkeypatch.setenv("ALLOCATOR_JOB_TIMEOUT", "0.01")
    parameters = {
        "ready_file": str(hold_env.ready),
        "go_file": str(hold_env.go),  # never created
        "wait_seconds": 20.0,
        "commit": True,
    }
    result = runner.run_job("fetch", date=SESSION, parameters=parameters)
    assert result.status == "failed"
    assert "JobTimeout: the job ran longer than 0.01 s" in result.error
    with hold_env.engine.connect() as conn:
        assert ledger.cash_entries(conn) == []


def test_a_bad_job_timeout_is_refused(hold_env, monkeypatch):
    monkeypatch.setenv("ALLOCATOR_JOB_TIMEOUT", "soon")
    from allocator.exceptions import SettingsError

    with pytest.raises(SettingsError, match="ALLOCATOR_JOB_TIMEOUT='soon'"):
        runner.run_job("signal", date=SESSION)
    assert list_runs(hold_env.engine) == []  # refused before anything is written
    assert not hold_env.runs.exists()


def test_the_lock_is_exclusive_and_released(hold_env):
    with run_lock(hold_env.engine, "signal", DAY):
        assert not lock_is_free(hold_env.engine, "signal", DAY)
        assert lock_is_free(hold_env.engine, "signal", DAY + dt.timedelta(days=1))
        with (
            pytest.raises(RunLocked, match=f"PID {os.getpid()}"),
            run_lock(hold_env.engine, "signal", DAY),
        ):
            pass
    assert lock_is_free(hold_env.engine, "signal", DAY)


def test_locks_of_two_databases_are_apart_and_each_names_its_own_holder(hold_env, tmp_path):
    """Two databases on one server (or two SQLite files) lock the same job and date apart."""
    from allocator.shell.persistence import make_engine
    from tests.conftest import create_database_url

    backend = "sqlite" if hold_env.url.startswith("sqlite") else "postgresql"
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    url, drop = create_database_url(backend, other_dir)
    other = make_engine(url)
    try:
        with run_lock(other, "fetch", DAY):  # another database's run of the same job and date
            held = subprocess.Popen(
                [sys.executable, "-c", _HOLD_LOCK, hold_env.url],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert held.stdout.readline().strip() == "locked"
            refused = pytest.raises(RunLocked, match=f"held by PID {held.pid} on ")
            with refused, run_lock(hold_env.engine, "fetch", DAY):
                pass
            held.kill()
            held.wait(timeout=60)
    finally:
        other.dispose()
        drop()


#: Take the fetch lock of 2026-11-25 on the database at argv[1], say so, and hold it.
_HOLD_LOCK = """
import datetime as dt, sys, time
from allocator.shell.persistence import make_engine
from allocator.shell.persistence.runlock import run_lock
with run_lock(make_engine(sys.argv[1]), "fetch", dt.date(2026, 11, 25)):
    print("locked", flush=True)
    time.sleep(600)
"""


def test_verify_lists_changed_and_deleted_archives(hold_env, capsys):
    first = runner.run_job("signal", date=SESSION)
    second = runner.run_job("signal", date=SESSION)
    assert get_run(hold_env.engine, first.run_id).sha256
    assert main(["runs", "--verify"]) == 0
    assert "2 archived notebook(s) checked against their SHA-256: all intact" in (
        capsys.readouterr().out
    )

    edited = first.paths.notebook
    edited.chmod(0o644)
    edited.write_text(edited.read_text().replace('"probe"', '"edited"'))
    second.paths.notebook.chmod(0o644)
    second.paths.notebook.unlink()
    assert main(["runs", "--verify"]) == 1
    out = capsys.readouterr().out
    assert f"run {first.run_id} signal {SESSION}: changed: {edited}" in out
    assert f"run {second.run_id} signal {SESSION}: deleted: {second.paths.notebook}" in out


def _read_only_url(url: str, engine) -> str:
    if url.startswith("sqlite"):
        path = engine.url.database
        return f"sqlite:///file:{path}?mode=ro&uri=true"
    with engine.connect() as conn:
        name = engine.url.database
        conn.execute(sa.text(f"ALTER DATABASE {name} SET default_transaction_read_only = on"))
        conn.commit()
    return url


def test_a_read_only_database_gives_one_line_and_leaves_no_file(hold_env):
    env = {**hold_env.env, "DATABASE_URL": _read_only_url(hold_env.url, hold_env.engine)}
    hold_env.engine.dispose()
    done = subprocess.run(
        [sys.executable, "-m", "allocator", "run", "signal", "--date", SESSION],
        env=env,
        capture_output=True,
        text=True,
    )
    if not hold_env.url.startswith("sqlite"):
        with hold_env.engine.connect() as conn:
            conn.execute(sa.text("SET TRANSACTION READ WRITE"))
            conn.execute(
                sa.text(
                    f"ALTER DATABASE {hold_env.engine.url.database} "
                    f"SET default_transaction_read_only = off"
                )
            )
            conn.commit()
    assert done.returncode == 1, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "cannot write to the database" in done.stderr
    assert list(hold_env.runs.rglob("*")) == [] or not any(
        p.is_file() for p in hold_env.runs.rglob("*")
    )


def test_an_unwritable_archive_folder_gives_one_line_and_leaves_no_file(hold_env):
    blocker = hold_env.tmp / "reports-is-a-file"
    blocker.write_text("not a folder")
    env = {**hold_env.env, "ALLOCATOR_REPORTS_DIR": str(blocker / "reports")}
    done = subprocess.run(
        [sys.executable, "-m", "allocator", "run", "signal", "--date", SESSION],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"cannot write {blocker}" in done.stderr
    assert not any(p.is_file() for p in hold_env.runs.rglob("*"))
    assert list_runs(hold_env.engine) == []


def test_review_marks_a_changed_archive_unverified(hold_env):
    from allocator.notebook import review

    kept = runner.run_job("signal", date=SESSION)
    edited = runner.run_job("signal", date=SESSION)
    edited.paths.notebook.chmod(0o644)
    text = edited.paths.notebook.read_text()
    edited.paths.notebook.write_text(text.replace('"probe"', '"edited"'))

    table = review.runs_table(review.Window(DAY, DAY), "signal").set_index("notebook")
    by_name = {Path(name).name: row for name, row in table.iterrows()}
    assert by_name[kept.paths.notebook.name]["verified"] is True
    assert by_name[kept.paths.notebook.name]["status"] == "succeeded"
    changed = by_name[edited.paths.notebook.name]
    assert changed["verified"] is False and changed["status"] == "unverified"
    assert "changed after its run recorded its SHA-256" in changed["error"]
    assert list(review.failures(table.reset_index())["status"]) == ["unverified"]


def test_a_failed_job_and_an_abandoned_run_are_alerted(hold_env, monkeypatch, tmp_path):
    from tests.test_alerts import WebhookReceiver

    shutil.copy(TEST_NOTEBOOKS / "failing.ipynb", tmp_path / "notebooks" / "execute.ipynb")
    _dead_runners_row(hold_env.engine, "fetch", hour=21)
    with WebhookReceiver() as receiver:
        monkeypatch.setenv("ALERT_WEBHOOK_URL", receiver.url)
        result = runner.run_job("execute", date=SESSION)
    assert result.status == "failed"
    texts = [post[2]["text"] for post in receiver.posts]
    assert len(texts) == 2, texts
    assert "of `fetch` for 2026-11-25" in texts[0] and "abandoned" in texts[0]
    assert "`allocator run execute` failed for 2026-11-25" in texts[1]
    assert str(result.paths.html) in texts[1]


def test_runs_started_together_do_not_disturb_one_another(hold_env):
    """Each run's kernel sockets live in its own private folder (they once collided)."""
    dates = ["2026-11-23", "2026-11-24", SESSION]
    readies = [hold_env.tmp / f"ready-{d}" for d in dates]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "allocator", "run", "fetch", "--date", day]
            + ["-p", "ready_file", str(ready), "-p", "go_file", str(hold_env.go)],
            env=hold_env.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for day, ready in zip(dates, readies, strict=True)
    ]
    for ready in readies:  # all three kernels are up at the same time
        _wait_for(ready.exists, f"the kernel of {ready.name}")
    hold_env.go.touch()
    outcomes = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outcomes
    assert sorted(r.status for r in list_runs(hold_env.engine)) == ["succeeded"] * 3
    notebooks = hold_env.tmp / "notebooks"
    assert sorted(p.name for p in notebooks.iterdir()) == ["fetch.ipynb", "signal.ipynb"]
