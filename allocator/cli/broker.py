"""``allocator broker``: the book against the broker (``ALLOCATOR_BROKER=alpaca``).

    allocator broker reconcile [--date YYYY-MM-DD]
    allocator broker slippage [--since YYYY-MM-DD]

``reconcile`` does what the fetch job does after storing the bars: it records the broker's
fills of the orders dated up to the date (default: the latest complete NYSE session), cancels
what is left after their close, compares positions and cash use with the account, stores the
result for ``allocator health``, and prints it. Exit 0 when the book agrees (or orders are
still open during their session), 1 on a mismatch or a broker failure, 2 on a bad argument or
setting (``ALLOCATOR_BROKER`` not ``alpaca``, a missing key, a live endpoint without
``ALLOCATOR_BROKER_LIVE=yes``).

``slippage`` prints every fill's slippage against the official open, by month (the costs the
``slippage_bps`` and ``commission_per_order`` parameters model in a backtest).
"""

from __future__ import annotations

import argparse

from allocator.shell.settings import get_settings

EXIT_OK, EXIT_FAILED = 0, 1


def cmd_reconcile(args: argparse.Namespace) -> int:
    from allocator.exceptions import SettingsError
    from allocator.jobs.health import resolve_date
    from allocator.jobs.reconciliation import MISMATCH, reconcile
    from allocator.shell.broker import make_broker
    from allocator.shell.persistence.migrate import migrated_engine

    settings = get_settings()
    broker = make_broker(settings)
    if broker is None:
        raise SettingsError(
            "ALLOCATOR_BROKER is simulated: there is no broker to reconcile with (set "
            "ALLOCATOR_BROKER=alpaca and the APCA_* keys)"
        )
    day = resolve_date(args.date)
    with migrated_engine(settings) as engine:
        result = reconcile(engine, broker, day)
    if broker.live:
        print("LIVE ACCOUNT")
    print(result.summary_line())
    return EXIT_FAILED if result.status == MISMATCH else EXIT_OK


def summary_lines(summary) -> list[str]:
    """The monthly summary as aligned text lines (dollars with cents, basis points)."""
    lines = [
        f"{'month':<8} {'fills':>5} {'traded':>14} {'slippage $':>12} {'bps':>7} {'fees $':>9}"
    ]
    for r in summary.itertuples(index=False):
        lines.append(
            f"{r.month:<8} {r.fills:>5} {r.traded_usd:>14,.2f} {r.slippage_usd:>12,.2f} "
            f"{r.slippage_bps:>7.2f} {r.commission_usd:>9,.2f}"
        )
    return lines


def cmd_slippage(args: argparse.Namespace) -> int:
    from allocator.portfolio.slippage import monthly_summary
    from allocator.shell import calendar
    from allocator.shell.persistence import broker as orders_db
    from allocator.shell.persistence.migrate import migrated_engine

    settings = get_settings()
    since = calendar.to_date(args.since, "--since") if args.since else None
    with migrated_engine(settings) as engine, engine.connect() as conn:
        summary = monthly_summary(orders_db.fills_with_opens(conn, since))
    print(f"slippage against the official open ({settings.broker_label} broker now)")
    if summary.empty:
        print("no fills yet")
        return EXIT_OK
    print("\n".join(summary_lines(summary)))
    return EXIT_OK


def add_broker_parser(sub) -> argparse.ArgumentParser:
    broker = sub.add_parser("broker", help="reconcile the book with the broker; fill slippage")
    actions = broker.add_subparsers(dest="broker_command", required=True, metavar="ACTION")
    rec = actions.add_parser(
        "reconcile", help="record the broker's fills and compare positions and cash with it"
    )
    rec.add_argument(
        "--date", help="trade date YYYY-MM-DD (default: the latest complete NYSE session)"
    )
    rec.set_defaults(func=cmd_reconcile)
    slip = actions.add_parser("slippage", help="every fill against the official open, by month")
    slip.add_argument("--since", help="first trade date YYYY-MM-DD (default: every fill)")
    slip.set_defaults(func=cmd_slippage)
    return broker
