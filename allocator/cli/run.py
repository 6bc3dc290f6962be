"""The ``run``, ``runs`` and ``crontab`` subcommands of ``allocator`` (registered by ``cli.py``).

``allocator run JOB`` exit codes: 0 the job succeeded, or had nothing to do (market closed, not
the first session of the month: a skipped run is recorded); 1 the job failed (its notebook is
archived and rendered with the error on top, the reason is one line on stderr); 2 a bad argument
(unknown job or parameter, malformed date, a date that is not a session), refused before any
kernel starts and before anything is written; 75 the same job and date is already running
(the holder's PID, host and start time are named; cron may simply retry later).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from allocator.cli.bounds import MAX_RUNS_LIMIT, whole_number
from allocator.cli.serve import DEFAULT_PORT
from allocator.exceptions import JobError
from allocator.notebook.jobspec import JOBS

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: sysexits.h EX_TEMPFAIL: another run holds the job and date; try again later.
EXIT_LOCKED = 75


def _usage_error(exc: Exception) -> int:
    print(f"allocator: {exc}", file=sys.stderr)
    return EXIT_USAGE


def _refuse_malformed(args: argparse.Namespace) -> None:
    """Raise :class:`JobError` for an unknown job, a bad ``-p`` pair or a malformed ``--date``.

    Checked before the runner is imported (with SQLAlchemy, most of a usage error's cost); the
    runner checks them again, with the notebook's own parameters.
    """
    from allocator.exceptions import CalendarError
    from allocator.notebook.jobspec import get_job
    from allocator.notebook.parameters import parse_parameters
    from allocator.shell.calendar import to_date

    get_job(args.job)
    parse_parameters(args.parameters)
    if args.date is not None:
        try:
            to_date(args.date, "--date")
        except CalendarError as exc:
            raise JobError(str(exc)) from None


def cmd_run(args: argparse.Namespace) -> int:
    try:
        _refuse_malformed(args)
    except JobError as exc:
        return _usage_error(exc)
    from allocator.notebook.runner import parse_parameters, run_job
    from allocator.shell.persistence.runlock import RunLocked

    try:
        parameters = parse_parameters(args.parameters)
        if args.source is not None or args.csv_dir is not None:
            parameters = _with_source_options(args, parameters)
        result = run_job(
            args.job,
            date=args.date,
            parameters=parameters,
            notebooks_dir=Path(args.notebooks_dir) if args.notebooks_dir else None,
        )
    except JobError as exc:
        return _usage_error(exc)
    except RunLocked as exc:
        print(f"allocator: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except OSError as exc:  # the archive or reports folder cannot be written
        print(f"allocator: run {args.job}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if result.status == "failed":
        print(f"allocator: {result.summary_line()}", file=sys.stderr)
        return EXIT_FAILED
    if result.status == "skipped" and result.error and result.error.startswith("market closed"):
        print(f"market closed: {result.job} {result.trade_date} skipped")
    else:
        print(result.summary_line())
    if result.status == "succeeded" and result.job == "backtest" and result.paths is not None:
        from allocator.notebook.runner import backtest_headline

        headline = backtest_headline(result.paths.notebook)
        if headline:
            print(headline)
    return EXIT_OK


def _with_source_options(args: argparse.Namespace, parameters: dict) -> dict:
    """``--source``/``--csv-dir`` as the parameters the job's notebook declares for them."""
    from allocator.notebook.jobspec import get_job
    from allocator.notebook.parameters import declared_parameters, source_options
    from allocator.notebook.runner import notebooks_dir_default

    spec = get_job(args.job)
    folder = Path(args.notebooks_dir) if args.notebooks_dir else notebooks_dir_default()
    notebook = folder / spec.notebook
    if not notebook.is_file():
        raise JobError(f"job {spec.name}: notebook {notebook} does not exist")
    return source_options(
        spec,
        declared_parameters(notebook),
        parameters,
        source=args.source,
        csv_dir=args.csv_dir,
    )


def add_run_parser(subparsers) -> argparse.ArgumentParser:
    jobs = ", ".join(f"{spec.name} ({spec.frequency})" for spec in JOBS.values())
    run = subparsers.add_parser(
        "run",
        help="execute a job notebook with papermill, archive and render it, record the run",
        description=(
            f"Execute notebooks/JOB.ipynb for one trade date. Jobs: {jobs}. The executed notebook "
            "is archived under runs/YYYY/MM/DD/, rendered to reports/ (HTML and Markdown) and "
            "recorded in job_runs; reports/index.html lists every run. Exit 0 succeeded or "
            "skipped, 1 failed, 2 bad argument, 75 the same job and date is already running. "
            "Timeouts: ALLOCATOR_START_TIMEOUT (kernel start, default 120 s), "
            "ALLOCATOR_CELL_TIMEOUT (per cell, default 900 s), ALLOCATOR_JOB_TIMEOUT (the whole "
            "job, default 1800 s)."
        ),
    )
    run.add_argument("job", metavar="JOB", help=f"one of {', '.join(JOBS)}")
    run.add_argument(
        "--date",
        metavar="YYYY-MM-DD",
        help="trade date (default: today in New York; a daily job skips a day without a session)",
    )
    run.add_argument(
        "-p",
        "--parameter",
        dest="parameters",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        default=[],
        help="a notebook parameter (repeatable); VALUE is read by the type of the parameter's "
        "default: True/False (yes/no, 1/0), a number, or text; symbols is a list (SPY,QQQ), "
        "start/end a date (YYYY-MM-DD), overrides a JSON object; anything else is refused. "
        "Secrets are never parameters: they come from the environment.",
    )
    run.add_argument(
        "--source",
        metavar="SOURCE",
        help="market data source: -p source for fetch (alphavantage, tiingo, csv, synthetic), "
        "-p data_source for the jobs that replay history (database, csv, synthetic)",
    )
    run.add_argument(
        "--csv-dir",
        metavar="DIR",
        help="folder of SYMBOL.csv files for --source csv (-p csv_dir; default "
        "ALLOCATOR_MARKET_CSV_DIR)",
    )
    run.add_argument(
        "--notebooks-dir",
        metavar="DIR",
        help="folder of JOB.ipynb (default: ALLOCATOR_NOTEBOOKS_DIR, else notebooks/)",
    )
    run.set_defaults(func=cmd_run)
    return run


def cmd_runs(args: argparse.Namespace) -> int:
    from allocator.exceptions import CalendarError
    from allocator.shell.calendar import to_date
    from allocator.shell.persistence import make_engine
    from allocator.shell.persistence.jobruns import STATUSES, list_runs
    from allocator.shell.persistence.migrate import require_current
    from allocator.shell.settings import get_settings

    try:
        since = to_date(args.since, "--since") if args.since else None
    except CalendarError as exc:
        return _usage_error(exc)
    if args.status and args.status not in STATUSES:
        return _usage_error(JobError(f"--status {args.status!r}: use one of {', '.join(STATUSES)}"))
    if args.job and args.job not in JOBS:
        return _usage_error(JobError(f"--job {args.job!r}: use one of {', '.join(JOBS)}"))
    engine = make_engine(get_settings().database_url)
    require_current(engine)
    if args.repair:
        return _repair(engine)
    if args.verify:
        return _verify(engine)
    runs = list_runs(engine, job=args.job, status=args.status, since=since, limit=args.limit)
    if not runs:
        print("no runs recorded")
        return EXIT_OK
    print(f"{'id':>5}  {'trade date':10}  {'job':8}  {'status':9}  {'started (UTC)':19}  duration")
    for run in runs:
        seconds = f"{run.duration.total_seconds():7.1f} s" if run.duration else ""
        line = (
            f"{run.id:>5}  {str(run.trade_date or ''):10}  {run.job:8}  {run.status:9}  "
            f"{run.started_at:%Y-%m-%d %H:%M:%S}  {seconds}"
        )
        if run.error:
            line += f"  {run.error}"
        print(line)
    return EXIT_OK


def _repair(engine) -> int:
    """``runs --repair``: mark runs whose runner is gone as abandoned."""
    from allocator.notebook.supervision import repair_abandoned
    from allocator.shell.settings import get_settings

    marked = repair_abandoned(engine, settings=get_settings())
    for run in marked:
        print(f"run {run.id} {run.job} {run.trade_date}: {run.error}")
    print(f"{len(marked)} abandoned run(s) marked" if marked else "no abandoned runs")
    return EXIT_OK


def _verify(engine) -> int:
    """``runs --verify``: archived notebooks changed or deleted since their run; exit 1 if any."""
    from allocator.notebook.supervision import verify_runs

    checked, problems = verify_runs(engine)
    for problem in problems:
        print(problem.line())
    print(
        f"{checked} archived notebook(s) checked against their SHA-256: "
        + (f"{len(problems)} changed or deleted" if problems else "all intact")
    )
    return EXIT_FAILED if problems else EXIT_OK


def add_runs_parser(subparsers) -> argparse.ArgumentParser:
    runs = subparsers.add_parser(
        "runs",
        help="list recorded job runs, newest first (or --repair, --verify)",
        description="List recorded job runs. --repair marks runs whose runner process is gone "
        "as abandoned (their partial notebook is kept, read-only). --verify checks every "
        "archived notebook against the SHA-256 recorded when its run finished: exit 1 when one "
        "was changed or deleted.",
    )
    runs.add_argument("--job", help=f"only this job ({', '.join(JOBS)})")
    runs.add_argument("--since", metavar="YYYY-MM-DD", help="only trade dates from this date")
    runs.add_argument("--status", help="running, succeeded, failed, skipped or abandoned")
    action = runs.add_mutually_exclusive_group()
    action.add_argument(
        "--repair", action="store_true", help="mark runs whose runner is gone as abandoned"
    )
    action.add_argument(
        "--verify", action="store_true", help="list archived notebooks changed or deleted"
    )
    runs.add_argument(
        "--limit",
        type=whole_number(1, MAX_RUNS_LIMIT),
        default=20,
        help=f"at most N runs, 1..{MAX_RUNS_LIMIT:,} (default 20)",
    )
    runs.set_defaults(func=cmd_runs)
    return runs


def cmd_crontab(args: argparse.Namespace) -> int:
    from allocator.notebook.crontab import crontab_text, logrotate_text
    from allocator.shell.settings import get_settings

    settings = get_settings()
    log_dir = Path(args.log_dir) if args.log_dir else settings.log_dir
    if args.logrotate:
        print(logrotate_text(log_dir), end="")
        return EXIT_OK
    try:
        text = crontab_text(
            settings,
            log_dir=log_dir,
            mail=args.mail,
            backup_dir=Path(args.backup_dir) if args.backup_dir else None,
            web_port=args.web_port if args.with_web else None,
        )
    except JobError as exc:
        return _usage_error(exc)
    print(text, end="")
    return EXIT_OK


def add_crontab_parser(subparsers) -> argparse.ArgumentParser:
    cron = subparsers.add_parser(
        "crontab",
        help="print the production cron schedule for this checkout (or --logrotate)",
        description=(
            "Print the crontab for this checkout: absolute paths, this virtualenv's interpreter, "
            "times in Eastern Time (CRON_TZ), one log file per job, a suggested database backup. "
            "It prints only; install it with `crontab FILE`."
        ),
    )
    cron.add_argument(
        "--log-dir", metavar="DIR", help="job log folder (default ALLOCATOR_LOG_DIR or var/log)"
    )
    cron.add_argument("--mail", metavar="ADDRESS", help="mail ADDRESS when a job fails")
    cron.add_argument(
        "--backup-dir",
        metavar="DIR",
        help="database backup folder (default ALLOCATOR_BACKUP_DIR or var/backup)",
    )
    cron.add_argument(
        "--with-web",
        action="store_true",
        help="add the web app's watchdog: every 5 minutes, start `allocator serve` if "
        "/api/health does not answer",
    )
    cron.add_argument(
        "--web-port",
        type=whole_number(1, 65_535),
        default=DEFAULT_PORT,
        metavar="PORT",
        help=f"the web app's port for --with-web, 1..65535 (default {DEFAULT_PORT})",
    )
    cron.add_argument(
        "--logrotate",
        action="store_true",
        help="print the logrotate snippet for the log folder instead",
    )
    cron.set_defaults(func=cmd_crontab)
    return cron
