"""Run a job notebook with papermill, archive it, render it and record the run.

The flow of :func:`run_job`, one step per function:

1. :func:`plan_run` checks everything a user can get wrong - the job name, the date, the
   parameters (against the notebook's ``parameters`` cell, :mod:`.parameters`), the kernel -
   before any kernel starts, and decides whether the job has anything to do on that date
   (market closed, not the first session of the month). Nothing is written when it raises.
2. :func:`record_skipped_run` records a skipped run in ``job_runs`` and that is all.
3. Otherwise :func:`start_run` claims the artifact paths (:mod:`.archive`) and writes a
   ``running`` row, and :func:`execute_run` runs the notebook (:mod:`.kernel`) in a fresh
   kernel with a start timeout, a per-cell timeout and a whole-job timeout, so a hung kernel
   cannot hang cron. The whole run holds its job and date's lock (:mod:`.supervision`).
4. Whatever happened, :func:`finalize_run` archives the executed notebook (papermill saves it
   before raising), renders it (:mod:`.render`) with any error on top, finishes the row as
   ``succeeded`` or ``failed`` and regenerates ``reports/index.html``. Every file is written
   atomically (:mod:`allocator.shell.atomic`; papermill's saves too, :func:`.archive.
   atomic_saves`): when one cannot be written (a full disk), the run is ``failed`` with one line
   naming the file and the cause, and the row records only files that exist, whole
   (:mod:`.artifacts`). A ``succeeded`` run's notebook and reports all exist.

Secrets never become parameters: the kernel is a subprocess that inherits this process's
environment, and the notebook reads ``DATABASE_URL`` and the API key through
``get_settings()``. Only ``trade_date`` and the ``-p`` values are injected, and
a parameter that looks like a secret is refused. As a last line of defence, any secret value that
still reaches the archived notebook is replaced by ``***`` and the run's ``error`` says so.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from allocator.exceptions import AllocatorError, CalendarError, DatabaseError, JobError
from allocator.notebook.archive import RunPaths, atomic_saves, reserve_run_paths
from allocator.notebook.artifacts import keep_notebook
from allocator.notebook.jobspec import JobSpec, get_job, skip_reason
from allocator.notebook.kernel import (
    execute_notebook,
    git_commit,
    one_line,
    require_kernel,
    timeouts,
)
from allocator.notebook.kernel import (
    job_timeout as default_job_timeout,
)

# TRADE_DATE, parse_value and parse_parameters are re-exported: the CLI and tests read them here.
from allocator.notebook.parameters import TRADE_DATE as TRADE_DATE
from allocator.notebook.parameters import checked_parameters, declared_parameters
from allocator.notebook.parameters import parse_parameters as parse_parameters
from allocator.notebook.parameters import parse_value as parse_value
from allocator.notebook.replay_sources import check_replay_sources
from allocator.notebook.sidecar import run_environment, sidecars_of
from allocator.notebook.supervision import (
    JobTimer,
    file_digest,
    make_read_only,
    runner_environment,
)
from allocator.shell.atomic import write_error_line
from allocator.shell.calendar import is_session, to_date, today_eastern
from allocator.shell.persistence.runlock import run_lock
from allocator.shell.settings import PROJECT_ROOT, Settings, get_settings

log = logging.getLogger(__name__)

ENV_NOTEBOOKS_DIR = "ALLOCATOR_NOTEBOOKS_DIR"
#: The error a run records when it stops before the notebook returns (Ctrl-C, a kill).
INTERRUPTED = "interrupted before the notebook finished"


# ---------------------------------------------------------------------------------------------
# Where the notebooks are, how long a kernel may take, which kernel


def notebooks_dir_default() -> Path:
    raw = os.environ.get(ENV_NOTEBOOKS_DIR)
    return Path(raw).expanduser().resolve() if raw else PROJECT_ROOT / "notebooks"


# ---------------------------------------------------------------------------------------------
# Planning: everything decided before a kernel starts


@dataclass(frozen=True)
class RunPlan:
    """A checked request: what to run, on which date, with which parameters, or why to skip."""

    spec: JobSpec
    trade_date: dt.date
    notebook: Path
    #: Injected into the notebook (``trade_date`` first when the notebook declares it).
    parameters: dict[str, object]
    #: Recorded in ``job_runs`` (everything the user passed, plus the trade date).
    recorded: dict[str, object]
    skip: str | None = None
    #: Said in the report's header (e.g. a backtest over bars of several sources, when asked).
    notes: tuple[str, ...] = ()


def plan_run(
    job: str,
    *,
    date: str | dt.date | None = None,
    parameters: Mapping[str, object] | None = None,
    notebooks_dir: Path | None = None,
    now: dt.datetime | None = None,
    secrets: list[str] | None = None,
) -> RunPlan:
    """Check a run request; raises :class:`JobError` on any bad argument. Starts no kernel.

    ``now`` (timezone-aware) fixes "today" for the default date; tests inject it.
    """
    spec = get_job(job)
    given = dict(parameters or {})
    notebook = Path(notebooks_dir or notebooks_dir_default()) / spec.notebook
    if not notebook.is_file():
        raise JobError(f"job {spec.name}: notebook {notebook} does not exist")
    declared = declared_parameters(notebook)
    given = checked_parameters(spec, given, declared, secrets or [])

    if date is None:
        trade_date = today_eastern(now)
        explicit = False
    else:
        try:
            trade_date = to_date(date, "--date")
        except CalendarError as exc:
            raise JobError(str(exc)) from None
        explicit = True

    skip = None
    if spec.needs_session:
        try:
            session = is_session(trade_date)
        except CalendarError as exc:
            raise JobError(str(exc)) from None
        if not session and explicit:
            raise JobError(
                f"--date {trade_date} ({trade_date:%A}) is not an NYSE session; "
                f"job {spec.name} runs on sessions only"
            )
        if not session:
            skip = f"market closed: {trade_date} ({trade_date:%A}) is not an NYSE session"
        else:
            skip = skip_reason(spec, trade_date, force=bool(given.get("force", False)))

    injected: dict[str, object] = {}
    if TRADE_DATE in declared:
        injected[TRADE_DATE] = trade_date.isoformat()
    injected.update({k: v for k, v in given.items() if k in declared})
    recorded = {TRADE_DATE: trade_date.isoformat(), **given}
    return RunPlan(spec, trade_date, notebook, injected, recorded, skip)


# ---------------------------------------------------------------------------------------------
# Execution


# ---------------------------------------------------------------------------------------------
# The whole run


@dataclass(frozen=True)
class RunResult:
    """What one ``allocator run`` did."""

    run_id: int
    job: str
    trade_date: dt.date
    status: str
    error: str | None = None
    paths: RunPaths | None = None
    seconds: float = 0.0
    parameters: dict = field(default_factory=dict)
    #: What went wrong after the run was recorded (the runs index could not be written).
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "skipped")

    def summary_line(self) -> str:
        """One line; it names a file only if it exists (the report, else the notebook)."""
        head = f"{self.job} {self.trade_date} {self.status}"
        after = "".join(f"; {note}" for note in self.notes)
        if self.status == "skipped":
            return f"{head}: {self.error}{after}"
        where = ""
        if self.paths is not None:
            shown = next((p for p in (self.paths.html, self.paths.notebook) if p.is_file()), None)
            where = (
                f"; {'report' if shown == self.paths.html else 'notebook'} {shown}" if shown else ""
            )
        if self.status == "failed":
            return f"{head} after {self.seconds:.1f} s: {self.error}{where}{after}"
        return f"{head} in {self.seconds:.1f} s{where}{after}"


def backtest_headline(notebook: Path) -> str | None:
    """The headline of an archived backtest, from its glued ``metrics``; None without them.

    E.g. ``TWR 81.8 %, CAGR 6.2 %, Sharpe 0.66, max drawdown -19.1 %, exposure 60.1 %, final
    value $3,664,029``: what ``allocator run backtest`` prints after the run's summary line; then,
    from the glued ``comparison``, whether it beats the SPY + cash mix at its own exposure.
    """
    import scrapbook as sb

    from allocator.backtest.benchmarks import SPY_MIX
    from allocator.notebook.formats import metrics_headline, versus_mix

    try:
        scraps = sb.read_notebook(str(notebook)).scraps
    except Exception:  # noqa: BLE001 - no headline is better than a failing command
        log.debug("cannot read the scraps of %s", notebook, exc_info=True)
        return None
    metrics = scraps["metrics"].data if "metrics" in scraps else None
    if not isinstance(metrics, dict):
        return None
    comparison = scraps["comparison"].data if "comparison" in scraps else {}
    if not (isinstance(comparison, dict) and SPY_MIX in comparison and "strategy" in comparison):
        return metrics_headline(metrics)
    mix = versus_mix("The strategy", comparison["strategy"], comparison[SPY_MIX])
    return f"{metrics_headline(metrics)}\n{mix}"


def _engine_for(settings: Settings) -> sa.Engine:
    from allocator.shell.persistence import make_engine
    from allocator.shell.persistence.migrate import require_current

    engine = make_engine(settings.database_url)
    require_current(engine)
    return engine


def _write_index(engine: sa.Engine, settings: Settings) -> tuple[str, ...]:
    """Regenerate ``reports/index.html``; a one-line note when it cannot be written.

    The index is a convenience, rebuilt from the archive by the next run: the run itself is
    recorded either way, and the old page stays whole (it is replaced atomically).
    """
    from allocator.notebook.index import INDEX_NAME, write_index

    try:
        write_index(engine, settings.reports_dir, runs_dir=settings.runs_dir)
    except Exception as exc:  # noqa: BLE001 - see above; said on the run's one line
        note = write_error_line(exc, f"regenerating {settings.reports_dir / INDEX_NAME}")
        log.debug("index not regenerated: %s", note)
        return (f"index not regenerated: {note}",)
    return ()


def record_skipped_run(engine: sa.Engine, settings: Settings, plan: RunPlan) -> RunResult:
    """Record a run that has nothing to do (``plan.skip``) in ``job_runs``; starts no kernel.

    Parameters
    ----------
    engine, settings
        The database holding ``job_runs``, and where ``reports/index.html`` is regenerated.
    plan
        A plan from :func:`plan_run` whose ``skip`` is set.

    Returns
    -------
    RunResult
        Status ``skipped``, with the reason as its ``error`` and no artifact paths.
    """
    from allocator.shell.persistence import jobruns

    run_id = jobruns.insert_skipped(
        engine,
        plan.spec.name,
        plan.trade_date,
        plan.skip,
        parameters=plan.recorded,
        git_commit=git_commit(),
    )
    notes = _write_index(engine, settings)
    return RunResult(
        run_id,
        plan.spec.name,
        plan.trade_date,
        "skipped",
        plan.skip,
        None,
        0.0,
        plan.recorded,
        notes,
    )


@dataclass(frozen=True)
class StartedRun:
    """A run whose artifact paths are claimed and whose ``running`` row is in ``job_runs``."""

    run_id: int
    plan: RunPlan
    paths: RunPaths
    #: The checkout's commit, as recorded in the row (see :func:`git_commit`).
    commit: str | None
    started_at: dt.datetime
    #: ``time.monotonic()`` at the start: the run's duration is measured on this clock.
    clock: float


def claim_paths(settings: Settings, plan: RunPlan, started_at: dt.datetime) -> RunPaths:
    """Reserve the run's artifact paths; an unwritable folder is a one-line :class:`JobError`.

    A full disk is no bad argument: it is an :class:`AllocatorError` (exit 1) saying so.
    """
    try:
        return reserve_run_paths(
            settings.runs_dir, settings.reports_dir, plan.spec.name, plan.trade_date, started_at
        )
    except OSError as exc:
        where = exc.filename or settings.runs_dir
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise AllocatorError(
                f"cannot write {where}: {exc.strerror}; free space on the archive's disk"
            ) from None
        raise JobError(
            f"cannot write {where}: {exc.strerror or exc}; make the archive folders "
            f"(ALLOCATOR_RUNS_DIR, ALLOCATOR_REPORTS_DIR) writable by this user"
        ) from None


def database_write_error(engine: sa.Engine, exc: sa.exc.DBAPIError) -> DatabaseError:
    """A one-line error for a database this run cannot write (read-only file, no space...)."""
    from allocator.shell.persistence.engine import describe_database_error

    url = engine.url.render_as_string(hide_password=False)
    return DatabaseError(describe_database_error(url, exc))


def start_run(engine: sa.Engine, settings: Settings, plan: RunPlan) -> StartedRun:
    """Claim the run's artifact paths and insert its ``running`` row in ``job_runs``.

    Parameters
    ----------
    engine, settings
        The database holding ``job_runs``, and the ``runs/`` and ``reports/`` folders.
    plan
        A plan from :func:`plan_run` that is not skipped.

    Returns
    -------
    StartedRun
        The row's id, the reserved paths and the start time, for :func:`finalize_run`.
    """
    from allocator.shell.persistence import jobruns

    commit = git_commit()
    started_at = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    paths = claim_paths(settings, plan, started_at)
    try:
        run_id = jobruns.insert_running(
            engine,
            plan.spec.name,
            plan.trade_date,
            parameters=plan.recorded,
            git_commit=commit,
            notebook_path=paths.notebook,
            html_path=paths.html,
            md_path=paths.markdown,
            started_at=started_at,
            pid=os.getpid(),
            host=socket.gethostname(),
        )
    except BaseException as exc:
        paths.notebook.unlink(missing_ok=True)  # leave no empty artifact behind
        if isinstance(exc, sa.exc.DBAPIError):
            raise database_write_error(engine, exc) from None
        raise
    log.debug("run %s: %s %s -> %s", run_id, plan.spec.name, plan.trade_date, paths.notebook)
    return StartedRun(run_id, plan, paths, commit, started_at, clock)


def execute_run(
    run: StartedRun,
    *,
    kernel_name: str,
    start_timeout: float,
    cell_timeout: float,
    job_timeout: float | None = None,
) -> str | None:
    """Execute a started run's notebook into its archive path with :func:`execute_notebook`.

    Returns None on success or the error's summary, as :func:`execute_notebook` does. The
    kernel learns where its notebook is archived, for its sidecar files (:mod:`.sidecar`), and
    which process runs it (:mod:`allocator.shell.guard`); it is stopped after ``job_timeout``
    seconds (default ``ALLOCATOR_JOB_TIMEOUT``).
    """
    timer = JobTimer(job_timeout or default_job_timeout())
    saves = atomic_saves(run.paths.notebook)
    with run_environment(run.paths.notebook), runner_environment(), timer, saves:
        error = execute_notebook(
            run.plan.notebook,
            run.paths.notebook,
            run.plan.parameters,
            kernel_name=kernel_name,
            cwd=run.plan.notebook.parent,
            start_timeout=start_timeout,
            cell_timeout=cell_timeout,
        )
    return timer.message() if timer.fired else error


def finalize_run(
    engine: sa.Engine,
    settings: Settings,
    run: StartedRun,
    error: str | None,
    secrets: list[str],
) -> RunResult:
    """Redact, render and lock the archive, finish the ``job_runs`` row and regenerate the index.

    Parameters
    ----------
    engine, settings
        The database holding ``job_runs``, and where ``reports/index.html`` is regenerated.
    run
        The run from :func:`start_run`.
    error
        None when the notebook succeeded, else the error's summary (masked here).
    secrets
        The secret values to keep out of the archive, the reports and the row.

    Returns
    -------
    RunResult
        Status ``succeeded`` or ``failed``; its ``error`` also carries any redaction or
        rendering note.
    """
    from allocator.notebook.render import RunHeader, render_or_remove
    from allocator.shell.persistence import jobruns

    error = one_line(error, secrets) if error is not None else None
    paths, plan = run.paths, run.plan
    kept, failures, notes = keep_notebook(paths.notebook, secrets, error)
    finished = dt.datetime.now(dt.UTC)
    status = "failed" if error or failures else "succeeded"
    shown = "; ".join([e for e in [error, *failures] if e]) or None
    header = RunHeader(
        plan.spec.name,
        plan.trade_date,
        status,
        run.started_at,
        finished,
        run.commit,
        plan.recorded,
        shown,
        plan.notes,
    )
    if kept:
        failures += [one_line(f, secrets) for f in render_or_remove(paths.notebook, paths, header)]
        for path in (paths.notebook, *sidecars_of(paths.notebook)):
            make_read_only(path)
    status = "failed" if error or failures else "succeeded"
    full_error = "; ".join([e for e in [error, *failures, *notes] if e]) or None
    columns = {"notebook_path": paths.notebook, "html_path": paths.html, "md_path": paths.markdown}
    jobruns.finish_run(
        engine,
        run.run_id,
        status,
        error=full_error,
        finished_at=finished,
        sha256=file_digest(paths.notebook) if kept else None,
        unrecorded=[column for column, path in columns.items() if not path.is_file()],
    )
    index_notes = _write_index(engine, settings)
    seconds = time.monotonic() - run.clock
    return RunResult(
        run.run_id,
        plan.spec.name,
        plan.trade_date,
        status,
        full_error,
        paths,
        seconds,
        plan.recorded,
        index_notes,
    )


def run_job(
    job: str,
    *,
    date: str | dt.date | None = None,
    parameters: Mapping[str, object] | None = None,
    notebooks_dir: Path | None = None,
    now: dt.datetime | None = None,
    settings: Settings | None = None,
    engine: sa.Engine | None = None,
) -> RunResult:
    """Run ``job`` for ``date`` (default: today in New York) and record it; see the module doc.

    Raises :class:`JobError` (bad argument), :class:`SettingsError` (kernel missing, bad timeout)
    or :class:`DatabaseError` before anything is written, and :class:`RunLocked` when another
    process runs the same job and date; returns a failed :class:`RunResult` when the notebook
    itself fails.
    """
    settings = settings or get_settings()
    secrets = settings.secret_values()
    plan = plan_run(
        job, date=date, parameters=parameters, notebooks_dir=notebooks_dir, now=now, secrets=secrets
    )
    limits = (*timeouts(), default_job_timeout())  # start, cell, whole job: checked up front
    if plan.skip is None:
        require_kernel(settings.kernel_name)
    engine = engine or _engine_for(settings)
    plan = check_replay_sources(engine, plan)
    if plan.skip is not None:
        result = record_skipped_run(engine, settings, plan)
    else:
        with run_lock(engine, plan.spec.name, plan.trade_date):
            result = _locked_run(engine, settings, plan, secrets, limits)
    log.debug(result.summary_line())
    return result


def _locked_run(
    engine: sa.Engine,
    settings: Settings,
    plan: RunPlan,
    secrets: list[str],
    limits: tuple[float, float, float],
) -> RunResult:
    """Start, execute and finalize a run while holding its job and date's lock."""
    from allocator.notebook.supervision import repair_abandoned

    repair_abandoned(engine, holding=(plan.spec.name, plan.trade_date), settings=settings)
    run = start_run(engine, settings, plan)
    error: str | None = INTERRUPTED
    try:
        error = execute_run(
            run,
            kernel_name=settings.kernel_name,
            start_timeout=limits[0],
            cell_timeout=limits[1],
            job_timeout=limits[2],
        )
    finally:
        # Also on KeyboardInterrupt: the row must not stay "running" forever.
        result = finalize_run(engine, settings, run, error, secrets)
    if result.status == "failed":
        from allocator.shell.alerts import alert_failed_run

        shown = next((p for p in (run.paths.html, run.paths.notebook) if p.is_file()), "")
        alert_failed_run(settings, plan.spec.name, plan.trade_date, result.error, str(shown))
    return result
