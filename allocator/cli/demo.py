"""``make demo``: the production day, offline, on a SQLite database of its own.

Steps (each prints what it did): migrate the database, seed the config, backfill offline history
up to the session before the demo date, then run that date's jobs in production order through the
notebook runner, then a backtest over the stored history, and say where everything is.

The demo's database is ``var/demo.sqlite3`` (``--database-url`` names another), never
``DATABASE_URL``: that one is left for real work. A database holds one kind of history, and the
demo's is the synthetic market's made-up prices; real history backfilled into the same database
would be refused (:func:`allocator.jobs.ingest.refuse_mixed_history`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator

from allocator.cli.commands import main as allocator_main
from allocator.shell import calendar
from allocator.shell.calendar import latest_complete_session
from allocator.shell.settings import PROJECT_ROOT, get_settings, mask_url


def default_demo_database_url() -> str:
    """``sqlite:///<checkout>/var/demo.sqlite3``: the demo's own database."""
    return f"sqlite:///{PROJECT_ROOT / 'var' / 'demo.sqlite3'}"


@contextlib.contextmanager
def demo_database(url: str) -> Iterator[None]:
    """``DATABASE_URL`` is ``url`` for the block (and the kernels it starts), then as it was."""
    before = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = before


#: Sessions of history loaded before the demo date: the features need a year, the backtest more.
HISTORY_SESSIONS = 800
#: The backtest starts once the signal has a full year (lookback_days) of history behind it.
BACKTEST_WARMUP = 260


def step(title: str, argv: list[str]) -> None:
    print(f"\n== {title}\n$ allocator {' '.join(argv)}", flush=True)
    code = allocator_main(argv)
    if code != 0:
        print(f"demo: step failed (exit {code}): allocator {' '.join(argv)}", file=sys.stderr)
        raise SystemExit(code)


def print_outcome(settings, day) -> None:
    """What the day's jobs decided and did, read back from the database and the archive."""
    import scrapbook as sb

    from allocator.shell.persistence import ledger
    from allocator.shell.persistence.migrate import migrated_engine
    from allocator.shell.persistence.signals import get_signal

    with migrated_engine(settings) as engine, engine.connect() as conn:
        signal = get_signal(conn, day)
        trades = ledger.trades_frame(conn, day, day)
        book = ledger.load_book(conn)
    print(f"\n== What happened on {day}")
    fu = signal.features_used
    print(
        f"signal   {signal.action} (regime {fu['regime']:+.3f}, risk {fu['risk']:.1f}): "
        f"{fu.get('reason', '')}"
    )
    shown = trades[["symbol", "action", "status", "quantity", "price", "amount"]]
    print(
        "trades   "
        + ("none" if shown.empty else "\n         ".join(shown.to_string(index=False).splitlines()))
    )
    holdings = ", ".join(f"{s} {q:g}" for s, q in sorted(book.holdings().items())) or "nothing"
    print(f"book     cash {book.cash:,.2f}; holdings {holdings}")
    backtests = sorted(settings.runs_dir.rglob("backtest_*.ipynb"))
    if backtests:
        m = sb.read_notebook(str(backtests[-1])).scraps["metrics"].data
        print(
            f"backtest {m['start']}..{m['end']}: TWR {m['twr']:+.2%}, CAGR {m['cagr']:+.2%}, "
            f"Sharpe {m['sharpe']:.2f}, max drawdown {m['max_drawdown']:.2%}, "
            f"{m['n_trades']} trades, final value {m['final_value']:,.0f} "
            f"for {m['total_deposits']:,.0f} deposited"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m allocator.cli.demo", description=__doc__)
    parser.add_argument("--source", default="synthetic", choices=("synthetic", "csv"))
    parser.add_argument("--csv-dir", help="with --source csv: folder of SYMBOL.csv files")
    parser.add_argument("--date", help="demo trade date (default: the latest complete session)")
    parser.add_argument(
        "--database-url",
        help="the demo's own database (default var/demo.sqlite3); never DATABASE_URL's",
    )
    args = parser.parse_args(argv)
    work = get_settings().masked_database_url
    with demo_database(args.database_url or default_demo_database_url()):
        return run_demo(args, work)


def run_demo(args: argparse.Namespace, work: str) -> int:
    """The demo's steps on the database ``DATABASE_URL`` now names; ``work`` is the user's."""
    settings = get_settings()
    day = calendar.require_session(args.date) if args.date else latest_complete_session()
    history = calendar.last_n_sessions(calendar.previous_session(day), HISTORY_SESSIONS)
    source = ["--source", args.source] + (["--csv-dir", args.csv_dir] if args.csv_dir else [])
    params = ["-p", "source", args.source] + (
        ["-p", "csv_dir", args.csv_dir] if args.csv_dir else []
    )

    print(f"Capital Allocator demo for trade date {day} on {settings.masked_database_url}")
    print(
        "The demo keeps its made-up market in a database of its own; "
        f"DATABASE_URL ({work}) is left for real work."
    )
    step("1. create or migrate the database", ["db", "upgrade"])
    step("2. seed the default trading config (once)", ["config", "seed"])
    step(
        f"3. backfill {len(history)} sessions of offline history",
        ["backfill", *source, "--start", str(history[0]), "--end", str(history[-1])],
    )
    step(
        f"4. signal job (6:00 AM ET): decide {day} from the bars before it",
        ["run", "signal", "--date", str(day)],
    )
    step(
        "5. execute job (9:30 AM ET): deposit and record the orders; the open is not stored yet, "
        "so they wait as pending",
        ["run", "execute", "--date", str(day)],
    )
    step(
        f"6. fetch job (4:35 PM ET): store the bars of {day}, fill the pending orders at its open",
        ["run", "fetch", "--date", str(day), *params],
    )
    start = history[BACKTEST_WARMUP]
    step(
        f"7. backtest {start}..{day} with the same decision and fill functions",
        ["run", "backtest", "-p", "start", str(start), "-p", "end", str(day)],
    )

    print_outcome(settings, day)
    print("\n== Done. Where things are:")
    print(f"  database        {settings.masked_database_url} (the demo's own)")
    print(f"  look at it      DATABASE_URL={mask_url(settings.database_url)} allocator runs")
    print(f"  real work       DATABASE_URL={work} (see README, History)")
    print(f"  audit notebooks {settings.runs_dir}/{day:%Y/%m/%d}/")
    print(f"  reports         {settings.reports_dir}/index.html")
    print("  next            make lab (notebooks), allocator runs, allocator crontab, make test")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
