"""``allocator health``: the design document's daily, weekly and monthly checks for one date.

    allocator health [--date YYYY-MM-DD] [--json] [--no-alert] [--sessions-only]

The date defaults to the latest complete NYSE session. It prints a table of checks (or, with
``--json``, a JSON document: date, overall status, checks) and exits 0 when nothing failed
(warnings included), 1 when a check failed, 2 on a bad argument. A failed check is posted to
``ALERT_WEBHOOK_URL`` when it is set (not with ``--no-alert``); an alert that cannot be delivered
is logged and changes nothing else. Nothing is written to the database.
"""

from __future__ import annotations

import argparse

from allocator.shell.settings import get_settings

EXIT_OK, EXIT_FAILED = 0, 1


def cmd_health(args: argparse.Namespace) -> int:
    from allocator.exceptions import DatabaseError
    from allocator.jobs.health import FAIL, alert_failures, health_report, resolve_date
    from allocator.shell.alerts import alert_failed_checks
    from allocator.shell.persistence.migrate import migrated_engine

    settings = get_settings()
    if args.sessions_only and args.date is None:
        from allocator.shell.calendar import is_session, today_eastern

        today = today_eastern()
        if not is_session(today):
            print(
                f"market closed: {today} ({today:%A}) is not an NYSE session; nothing new to check"
            )
            return EXIT_OK
    day = resolve_date(args.date)
    try:
        with migrated_engine(settings) as engine:
            report = health_report(engine, day, settings.reports_dir)
    except DatabaseError as exc:
        # No check can run: that is itself the failure to alert about.
        if not args.no_alert:
            alert_failed_checks(settings, day, [("database", str(exc))])
        raise
    if args.json:
        print(report.to_json())
    else:
        print(f"health of {day} ({settings.masked_database_url}): {report.status}")
        print(report.table())
    if report.failed and not args.no_alert:
        alert_failures(settings, report)
    return EXIT_FAILED if report.status == FAIL else EXIT_OK


def add_health_parser(sub) -> argparse.ArgumentParser:
    health = sub.add_parser(
        "health", help="check a trade date's jobs, signal, orders, prices, week and month"
    )
    health.add_argument(
        "--date", help="trade date YYYY-MM-DD (default: the latest complete NYSE session)"
    )
    health.add_argument("--json", action="store_true", help="print a JSON document, not a table")
    health.add_argument(
        "--no-alert",
        action="store_true",
        help="do not post failed checks to ALERT_WEBHOOK_URL (e.g. when checking by hand)",
    )
    health.add_argument(
        "--sessions-only",
        action="store_true",
        help="on a day without an NYSE session, check nothing and exit 0 (the crontab uses it, so "
        "a holiday does not check, and alert, the previous session again)",
    )
    health.set_defaults(func=cmd_health)
    return health
