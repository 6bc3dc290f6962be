"""Backtest speed: 5, 10 and 20 years of SPY/QQQ/DIA through the CSV source, in-process.

    python -m benchmarks.bench_backtest [--csv-dir DIR] [--repeat 3]

The real history lives beside the checkout in ``../shared/data/market`` on the development
machine (``ALLOCATOR_MARKET_CSV_DIR`` overrides); it is never copied into the repository. Without
it the benchmark runs on the seeded synthetic market and says so. Prints the time to read the
CSV files, the backtest time per period (best of ``--repeat``), the cost per session (flat when
the cost grows linearly), and the 20-year metrics of the strategy beside its benchmarks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from pathlib import Path

import pandas as pd

from allocator.backtest.schedule import ConfigSchedule
from allocator.jobs.backtest import history_start, run_backtest
from allocator.shell.marketdata.csvsource import CsvSource
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.strategy.config import preset

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ("SPY", "QQQ", "DIA")
END = dt.date(2024, 12, 31)
PERIODS = {
    "5 years": dt.date(2020, 1, 2),
    "10 years": dt.date(2015, 1, 2),
    "20 years": dt.date(2005, 1, 3),
}


def default_csv_dir() -> Path | None:
    configured = os.environ.get("ALLOCATOR_MARKET_CSV_DIR")
    candidate = Path(configured) if configured else ROOT.parent / "shared" / "data" / "market"
    return candidate if (candidate / "SPY.csv").is_file() else None


def load(source, schedule: ConfigSchedule) -> pd.DataFrame:
    first = history_start(min(PERIODS.values()), schedule)
    return pd.concat(
        [source.fetch(s, first, END).assign(symbol=s) for s in SYMBOLS], ignore_index=True
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-dir", type=Path, default=default_csv_dir())
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    schedule = ConfigSchedule.constant(preset("default"), "preset default")
    if args.csv_dir:
        started = time.perf_counter()
        bars = load(CsvSource(args.csv_dir), schedule)
        read = time.perf_counter() - started
        origin = f"real history from {args.csv_dir}"
    else:
        started = time.perf_counter()
        bars = load(SyntheticSource(), schedule)
        read = time.perf_counter() - started
        origin = "synthetic market (no real history found: set ALLOCATOR_MARKET_CSV_DIR)"

    print(f"== Backtest speed ({origin})")
    print(f"read bars: {read:.3f} s ({len(bars)} bars)")
    rows, results = [], {}
    for name in ("seed", "default"):
        schedule = ConfigSchedule.constant(preset(name), f"preset {name}")
        for label, start in PERIODS.items():
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                results[name] = run_backtest(bars, start, END, schedule)
                times.append(time.perf_counter() - t0)
            n = len(results[name].daily)
            best = min(times)
            rows.append(
                {
                    "preset": name,
                    "period": label,
                    "sessions": n,
                    "best s": round(best, 3),
                    "µs per session": round(best / n * 1e6, 1),
                }
            )
    print(pd.DataFrame(rows).to_string(index=False))
    twenty = rows[len(PERIODS) - 1]["best s"]
    print(
        f"20-year backtest in-process (preset seed): {twenty:.3f} s "
        f"(+ {read:.3f} s reading the CSV files); target < 2 s"
    )
    for name, result in results.items():
        print(
            f"\n== 20-year metrics, preset {name}, same daily deposits (2005-01-03 .. 2024-12-31)"
        )
        table = result.comparison.drop(columns=["total_deposits", "n_trades"])
        with pd.option_context("display.float_format", "{:,.4f}".format, "display.width", 160):
            print(table.to_string())
        print(
            f"total deposits {result.metrics['total_deposits']:,.0f}; "
            f"strategy trades {result.metrics['n_trades']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
