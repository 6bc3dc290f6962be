"""A run under supervision: its time limit, its kernel tied to it, abandoned runs, digests.

- :class:`JobTimer` stops a run's kernel (and what the kernel started) when the whole job runs
  longer than ``ALLOCATOR_JOB_TIMEOUT`` (default 30 minutes); the per-cell limit stays
  ``ALLOCATOR_CELL_TIMEOUT``.
- :func:`runner_environment` and :data:`KERNEL_START_LINES` tie the kernel to its runner
  (:mod:`allocator.shell.guard`): when the runner dies, the kernel dies before committing.
- :func:`repair_abandoned` marks ``running`` rows whose runner is gone as ``abandoned``: their
  lock (:mod:`allocator.shell.persistence.runlock`) is free, which only the holder's death or
  its end can do. Their partial notebook is kept, made read-only, digested and rendered with
  the status on top.
- :func:`file_digest` is the SHA-256 stored with every archived notebook, and
  :func:`verify_runs` compares the archive with it (``allocator runs --verify``), and each
  sidecar file with the digest its notebook glued (:mod:`.sidecar`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from allocator.notebook.sidecar import sidecar_problems
from allocator.shell.digest import sha256_of
from allocator.shell.guard import ENV_RUNNER_PID

log = logging.getLogger(__name__)

#: The setting :class:`JobTimer`'s limit comes from (read by :func:`.kernel.job_timeout`).
ENV_JOB_TIMEOUT = "ALLOCATOR_JOB_TIMEOUT"
#: Run in every job's kernel before the notebook's first cell.
KERNEL_START_LINES = "import allocator.shell.guard as _guard; _guard.attach(); del _guard"


@contextlib.contextmanager
def runner_environment() -> Iterator[None]:
    """``ALLOCATOR_RUNNER_PID`` = this process for the kernels started in the block."""
    before = os.environ.get(ENV_RUNNER_PID)
    os.environ[ENV_RUNNER_PID] = str(os.getpid())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV_RUNNER_PID, None)
        else:
            os.environ[ENV_RUNNER_PID] = before


def _kernels_since(started: float) -> list:
    import psutil

    found = []
    for child in psutil.Process().children(recursive=False):
        with contextlib.suppress(psutil.Error):
            if child.create_time() >= started - 1 and "ipykernel" in " ".join(child.cmdline()):
                found.append(child)
    return found


class JobTimer:
    """Kill the kernels this process started in the block once ``seconds`` have passed.

    The notebook then ends with a dead kernel (papermill saves what ran); :attr:`fired` tells
    the runner to report the job's time limit rather than a crash. Past the limit, a kernel that
    was still starting (not yet a process) is killed as soon as it appears, until the block ends.
    """

    #: Seconds between looks for a kernel to stop, once the limit has passed.
    POLL = 0.2

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._started = 0.0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def message(self) -> str:
        return (
            f"JobTimeout: the job ran longer than {self.seconds:g} s ({ENV_JOB_TIMEOUT}); "
            f"its kernel was stopped"
        )

    def _kill_kernels(self) -> None:
        import psutil

        for kernel in _kernels_since(self._started):
            with contextlib.suppress(psutil.Error):
                for process in [*kernel.children(recursive=True), kernel]:
                    process.kill()

    def _watch(self) -> None:
        if self._done.wait(self.seconds):
            return
        self.fired = True
        log.error(self.message())
        while not self._done.is_set():
            self._kill_kernels()
            self._done.wait(self.POLL)

    def __enter__(self) -> JobTimer:
        self._started = time.time()
        self._thread = threading.Thread(target=self._watch, name="job-timer", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


def file_digest(path: Path) -> str | None:
    """The SHA-256 of ``path`` in hex, or None when it cannot be read."""
    try:
        return sha256_of(path)
    except OSError:
        return None


def make_read_only(path: Path) -> None:
    # On a file system without permissions the unique name still protects the file.
    with contextlib.suppress(OSError):
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


@dataclass(frozen=True)
class ArchiveProblem:
    """An archived notebook that no longer matches its run's record."""

    run_id: int
    job: str
    trade_date: dt.date | None
    path: str
    problem: str  # "deleted", "changed", "sidecar deleted" or "sidecar changed"

    def line(self) -> str:
        return f"run {self.run_id} {self.job} {self.trade_date}: {self.problem}: {self.path}"


def verify_run(notebook_path: str | None, sha256: str | None) -> str | None:
    """None when the archive matches ``sha256``, else ``deleted``/``changed``; None unrecorded."""
    found = archive_problem(notebook_path, sha256)
    return None if found is None else found[0]


def archive_problem(notebook_path: str | None, sha256: str | None) -> tuple[str, str] | None:
    """``(problem, path)`` of the first file of a run not as it was, or None (also unrecorded).

    The notebook is checked against ``sha256`` (``deleted``/``changed``); an intact notebook's
    sidecars against the digests it glued (``sidecar deleted``/``sidecar changed``, with the
    sidecar's path): one byte appended to a Parquet table is a changed run.
    """
    if not notebook_path or not sha256:
        return None
    actual = file_digest(Path(notebook_path))
    if actual is None:
        return "deleted", notebook_path
    if actual != sha256:
        return "changed", notebook_path
    sidecars = sidecar_problems(Path(notebook_path))
    if sidecars:
        problem, path = sidecars[0]
        return f"sidecar {problem}", str(path)
    return None


def verify_runs(engine: sa.Engine) -> tuple[int, list[ArchiveProblem]]:
    """(runs checked, the ones whose archived notebook or a sidecar was changed or deleted)."""
    from allocator.shell.persistence.jobruns import list_runs

    checked, problems = 0, []
    for run in list_runs(engine):
        if not run.notebook_path or not run.sha256:
            continue
        checked += 1
        found = archive_problem(run.notebook_path, run.sha256)
        if found:
            problem, path = found
            problems.append(ArchiveProblem(run.id, run.job, run.trade_date, path, problem))
    return checked, problems


def _render_partial(run, error: str) -> None:
    """Render an abandoned run's partial notebook with its status on top (best effort)."""
    from allocator.notebook.archive import RunPaths
    from allocator.notebook.render import RunHeader, render_or_remove

    if not (run.notebook_path and run.html_path and run.md_path):
        return
    notebook = Path(run.notebook_path)
    if not notebook.is_file() or not notebook.stat().st_size:
        return
    paths = RunPaths(notebook, Path(run.html_path), Path(run.md_path))
    header = RunHeader(
        run.job,
        run.trade_date,
        "abandoned",
        run.started_at,
        None,
        run.git_commit,
        run.parameters or {},
        error,
    )
    for problem in render_or_remove(notebook, paths, header):  # whole reports, or none
        log.warning(
            "run %s: the partial notebook %s cannot be rendered: %s", run.id, notebook, problem
        )


def abandon(engine: sa.Engine, run) -> bool:
    """Mark ``run`` (a ``running`` row whose runner is gone) abandoned; False if it moved on."""
    from allocator.shell.persistence import jobruns

    who = f"PID {run.pid} on {run.host}" if run.pid else "its process"
    error = (
        f"abandoned: the runner ({who}) is gone; its partial notebook is kept read-only, "
        f"and nothing it did not commit was kept"
    )
    _render_partial(run, error)
    digest = None
    if run.notebook_path and Path(run.notebook_path).is_file():
        make_read_only(Path(run.notebook_path))
        digest = file_digest(Path(run.notebook_path))
    return jobruns.mark_abandoned(engine, run.id, error, sha256=digest)


def repair_abandoned(
    engine: sa.Engine, *, holding: tuple[str, dt.date] | None = None, settings=None
) -> list:
    """Mark every ``running`` run whose runner is gone as ``abandoned``; returns them.

    A runner holds its job and date's lock until its row is finished, so a ``running`` row
    whose lock is free has lost its runner. ``holding`` is the (job, date) whose lock the
    caller holds: a ``running`` row of that pair is not the caller's, so it is abandoned too.
    With ``settings``, each one is alerted (``ALERT_WEBHOOK_URL``, :mod:`allocator.shell.alerts`).
    """
    from allocator.shell.persistence import jobruns
    from allocator.shell.persistence.runlock import lock_is_free

    marked = []
    for run in jobruns.list_runs(engine, status="running"):
        if run.trade_date is None:
            continue
        mine = holding is not None and (run.job, run.trade_date) == holding
        if not mine and not lock_is_free(engine, run.job, run.trade_date):
            continue
        if abandon(engine, run):
            log.warning(
                "run %s (%s %s) was abandoned by its runner", run.id, run.job, run.trade_date
            )
            marked.append(jobruns.get_run(engine, run.id))
    if settings is not None:
        from allocator.shell.alerts import alert_abandoned_run

        for run in marked:
            alert_abandoned_run(
                settings, run.job, run.trade_date, run.id, run.started_at, run.error
            )
    return marked
