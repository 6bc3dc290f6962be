"""The ``allocator`` command: database, config, backfill, and (via cli_run) jobs and cron.

Exit codes: 0 success; 1 the work failed (a symbol, a job); 2 a bad argument or setting, reported
on one line before anything is changed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from allocator import __version__
from allocator.cli.bounds import MAX_DAYS, whole_number
from allocator.exceptions import (
    AllocatorError,
    CalendarError,
    ConfigValidationError,
    JobError,
    SettingsError,
)
from allocator.shell.settings import get_settings
from allocator.strategy.config import PRESET_NAMES

log = logging.getLogger("allocator")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _engine(settings):
    from allocator.shell.persistence import make_engine

    return make_engine(settings.database_url)


def _migrated_engine(settings):
    from allocator.shell.persistence.migrate import require_current

    engine = _engine(settings)
    require_current(engine)
    return engine


def cmd_db_upgrade(args) -> int:
    from allocator.shell.persistence.migrate import upgrade

    settings = get_settings()
    before, after = upgrade(_engine(settings), args.revision)
    state = "already at" if before == after else f"upgraded {before or 'empty database'} ->"
    print(f"database {settings.masked_database_url}: {state} revision {after}")
    return EXIT_OK


def cmd_db_current(args) -> int:
    from allocator.shell.persistence.migrate import current_revision, head_revision

    settings = get_settings()
    current = current_revision(_engine(settings))
    head = head_revision()
    note = "up to date" if current == head else "run `allocator db upgrade`"
    print(f"database {settings.masked_database_url}: revision {current} (head {head}, {note})")
    return EXIT_OK


def cmd_config_seed(args) -> int:
    from allocator.shell.persistence.configs import format_version, seed_default_config
    from allocator.strategy.config import preset

    config = preset(args.preset)
    engine = _migrated_engine(get_settings())
    with engine.begin() as conn:
        inserted, version = seed_default_config(conn, config, preset_name=args.preset)
    print(
        f"seeded the trading config of preset {args.preset!r}"
        if inserted
        else "a trading config exists; left it as it is"
    )
    print(format_version(version))
    return EXIT_OK


def cmd_config_show(args) -> int:
    from allocator.shell.calendar import to_date
    from allocator.shell.persistence.configs import (
        active_version,
        all_versions,
        format_version,
        version_for_date,
    )

    engine = _migrated_engine(get_settings())
    with engine.connect() as conn:
        if args.all:
            versions = all_versions(conn)
        elif args.date:
            versions = [version_for_date(conn, to_date(args.date, "--date"))]
        else:
            versions = [active_version(conn)]
    print("\n\n".join(format_version(v) for v in versions))
    return EXIT_OK


def cmd_backfill(args) -> int:
    from allocator.jobs.backfill import backfill, resolve_range
    from allocator.jobs.ingest import checked_symbols
    from allocator.shell.marketdata import make_source

    settings = get_settings()
    if args.replace_synthetic and args.source == "synthetic":
        raise JobError(
            "--replace-synthetic replaces synthetic bars by real ones: give a real --source"
        )
    start, end = resolve_range(days=args.days, start=args.start, end=args.end)
    symbols = checked_symbols(args.symbols, "--symbols") if args.symbols else None
    source = make_source(
        args.source, settings=settings, csv_dir=args.csv_dir, outputsize=args.outputsize
    )
    engine = _migrated_engine(settings)
    print(f"backfill {start}..{end} from {args.source} into {settings.masked_database_url}")
    report = backfill(
        engine,
        source,
        start,
        end,
        symbols,
        on_revision=args.on_revision,
        replace_synthetic=args.replace_synthetic,
    )
    # Each failure's message was logged once as it happened (stderr); the table and the summary
    # line name the symbols, failed or not attempted.
    print(report.summary().drop(columns=["error"]).to_string(index=False))
    print(report.summary_line())
    return EXIT_FAILED if report.failed else EXIT_OK


def _add_backfill_parser(sub) -> None:
    bf = sub.add_parser("backfill", help="load daily bars into price_history (idempotent)")
    bf.add_argument(
        "--source",
        choices=("alphavantage", "tiingo", "csv", "synthetic"),
        default="alphavantage",
        help="tiingo: years of history on a free key (TIINGO_API_KEY), one request per symbol",
    )
    bf.add_argument("--csv-dir", help="folder of SYMBOL.csv files (with --source csv)")
    bf.add_argument(
        "--days",
        type=whole_number(1, MAX_DAYS),
        help=f"the last N sessions (1..{MAX_DAYS:,}), ending at the latest close",
    )
    bf.add_argument("--start", help="first date, YYYY-MM-DD")
    bf.add_argument("--end", help="last date, YYYY-MM-DD (default: the latest complete session)")
    bf.add_argument(
        "--symbols",
        nargs="+",
        help="default: the active config's assets; each a letter then up to 15 letters, digits, "
        "'.' or '-' (SPY, BRK.B)",
    )
    bf.add_argument(
        "--outputsize",
        choices=("compact", "full"),
        default="compact",
        help="Alpha Vantage: compact = last 100 bars (free); full = all history (premium key)",
    )
    bf.add_argument(
        "--on-revision",
        choices=("update", "keep", "replace"),
        default="update",
        help="a stored bar the source now reports differently: update (store a revision of the "
        "same source), keep (keep the stored bar), replace (also overwrite another source's bar)",
    )
    bf.add_argument(
        "--replace-synthetic",
        action="store_true",
        help="a database holding synthetic bars (the demo's made-up market) refuses a real "
        "source: delete every synthetic bar first, then store the real ones",
    )
    bf.set_defaults(func=cmd_backfill)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="allocator",
        description="Capital Allocator: daily ETF allocation run as notebook jobs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = sub.add_parser("db", help="create or migrate the database at DATABASE_URL")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = db_sub.add_parser("upgrade", help="migrate to the newest schema (creates tables)")
    up.add_argument("revision", nargs="?", default="head", help="target revision (default head)")
    up.set_defaults(func=cmd_db_upgrade)
    db_sub.add_parser("current", help="show the schema revision").set_defaults(func=cmd_db_current)
    from allocator.cli.database import add_backup_parsers

    add_backup_parsers(db_sub)

    cfg = sub.add_parser("config", help="the trading config versions")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = cfg_sub.add_parser("show", help="print the active version (or --date / --all)")
    show.add_argument("--date", help="show the version active on this date (YYYY-MM-DD)")
    show.add_argument("--all", action="store_true", help="show every version, oldest first")
    show.set_defaults(func=cmd_config_show)
    seed = cfg_sub.add_parser("seed", help="insert the first config once (idempotent)")
    seed.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        default="default",
        help="default: the product default; seed: the design document's table, read literally",
    )
    seed.set_defaults(func=cmd_config_seed)

    _add_backfill_parser(sub)

    from allocator.cli.sweep import add_sweep_parser

    add_sweep_parser(sub)
    from allocator.cli.serve import add_serve_parser

    add_serve_parser(sub)
    from allocator.cli.health import add_health_parser

    add_health_parser(sub)
    from allocator.cli.broker import add_broker_parser

    add_broker_parser(sub)
    try:
        from allocator.cli import run as cli_run
    except ImportError:  # pragma: no cover - the job runner ships with the package
        cli_run = None
    if cli_run is not None:
        cli_run.add_run_parser(sub)
        cli_run.add_crontab_parser(sub)
        cli_run.add_runs_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from allocator.shell.logs import configure_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"allocator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings, logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except (SettingsError, CalendarError, ConfigValidationError, JobError) as exc:
        print(f"allocator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AllocatorError as exc:
        print(f"allocator: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("allocator: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        line = failure_line(exc, settings.database_url)
        if line is None:
            raise
        print(f"allocator: {line}", file=sys.stderr)
        return EXIT_FAILED


def failure_line(exc: Exception, database_url: str) -> str | None:
    """One line for a database or a file that refused a write (None: a bug, shown in full).

    A read-only, locked or full database (SQLAlchemy's 20-60 lines) or a folder that cannot
    be written (no space, no permission) is the operator's to fix, not a bug: say what and where.
    """
    sa = sys.modules.get("sqlalchemy")
    if sa is not None and isinstance(exc, sa.exc.DBAPIError):
        from allocator.shell.persistence.engine import describe_database_error

        return describe_database_error(database_url, exc)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"cannot write {where}{exc.strerror or exc}; check its permissions and free space"
    return None
