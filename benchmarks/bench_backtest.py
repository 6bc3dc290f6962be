"""Backtest speed in CPU seconds: 20 years of 3 real assets and of 50 synthetic ones, in-process.

    python -m benchmarks.bench_backtest [--csv-dir DIR] [--repeat 3]

Each figure is the best of ``--repeat`` calls of :func:`allocator.jobs.backtest.run_backtest`
(strategy, benchmarks and metrics), timed with ``time.process_time`` after one warm-up call, for
the ``seed`` and ``default`` presets; it is printed with its cost per session-asset and against
its target (issue 12): 20 y x 3 assets <= 0.5 s, 20 y x 50 assets <= 2 s. A 10-year run of the
50 assets shows whether the cost per session-asset stays flat (linear in sessions x assets).

The 3 assets are the real SPY/QQQ/DIA history beside the checkout in ``../shared/data/market``
on the development machine (``ALLOCATOR_MARKET_CSV_DIR`` overrides), read in place and never
copied into the repository; without it they come from the seeded synthetic market and the
output says so. The 50 assets always come from the synthetic market (SPY and 49 more symbols).
The 20-year metrics of the strategy beside its benchmarks close the report.
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
MANY = ("SPY", *(f"S{i:02d}" for i in range(1, 50)))
END = dt.date(2024, 12, 31)
TWENTY_YEARS = dt.date(2005, 1, 3)
TEN_YEARS = dt.date(2015, 1, 2)
#: CPU seconds per run_backtest the issue asks for, by number of assets (20 years).
TARGETS = {len(SYMBOLS): 0.5, len(MANY): 2.0}
PRESETS = ("seed", "default")


def default_csv_dir() -> Path | None:
    configured = os.environ.get("ALLOCATOR_MARKET_CSV_DIR")
    candidate = Path(configured) if configured else ROOT.parent / "shared" / "data" / "market"
    return candidate if (candidate / "SPY.csv").is_file() else None


def load(source, symbols: tuple[str, ...], start: dt.date) -> pd.DataFrame:
    """Bars of ``symbols`` from the signal's first needed date before ``start`` to the end."""
    schedule = ConfigSchedule.constant(preset("default").with_changes(assets=symbols))
    first = history_start(start, schedule)
    return pd.concat(
        [source.fetch(s, first, END).assign(symbol=s) for s in symbols], ignore_index=True
    )


def cpu_seconds(bars: pd.DataFrame, start: dt.date, schedule: ConfigSchedule, repeat: int):
    """(best CPU seconds of ``repeat`` run_backtest calls after one warm-up, the result)."""
    result = run_backtest(bars, start, END, schedule)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        result = run_backtest(bars, start, END, schedule)
        best = min(best, time.process_time() - t0)
    return best, result


def verdict(seconds: float, target: float | None) -> str:
    """``0.41 s CPU (target 0.5 s) OK, 0.82 of the target`` (or ``OVER``)."""
    if target is None:
        return f"{seconds:.2f} s CPU"
    word = "OK" if seconds <= target else "OVER"
    return f"{seconds:.2f} s CPU (target {target:g} s) {word}, {seconds / target:.2f} of the target"


def measure(cases, repeat: int) -> tuple[list[dict], dict]:
    rows, results = [], {}
    for label, bars, start, symbols, target in cases:
        for name in PRESETS:
            config = preset(name).with_changes(assets=symbols)
            schedule = ConfigSchedule.constant(config, f"preset {name}")
            seconds, result = cpu_seconds(bars, start, schedule, repeat)
            sessions = len(result.daily)
            rows.append(
                {
                    "case": label,
                    "preset": name,
                    "sessions": sessions,
                    "assets": len(symbols),
                    "CPU s": round(seconds, 3),
                    "µs per session-asset": round(seconds / (sessions * len(symbols)) * 1e6, 2),
                    "verdict": verdict(seconds, target),
                }
            )
            if len(symbols) == len(SYMBOLS) and start == TWENTY_YEARS:
                results[name] = result
    return rows, results


def print_metrics(results: dict) -> None:
    for name, result in results.items():
        print(f"\n== 20-year metrics, preset {name}, same daily deposits ({TWENTY_YEARS} .. {END})")
        table = result.comparison.drop(columns=["total_deposits", "n_trades"])
        with pd.option_context("display.float_format", "{:,.4f}".format, "display.width", 160):
            print(table.to_string())
        print(
            f"total deposits {result.metrics['total_deposits']:,.0f}; "
            f"strategy trades {result.metrics['n_trades']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-dir", type=Path, default=default_csv_dir())
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    t0 = time.process_time()
    if args.csv_dir:
        real = load(CsvSource(args.csv_dir), SYMBOLS, TWENTY_YEARS)
        origin = f"real history from {args.csv_dir}"
    else:
        real = load(SyntheticSource(), SYMBOLS, TWENTY_YEARS)
        origin = "synthetic market (no real history found: set ALLOCATOR_MARKET_CSV_DIR)"
    read = time.process_time() - t0
    many = load(SyntheticSource(), MANY, TWENTY_YEARS)

    print(f"== Backtest speed, CPU seconds per run_backtest (best of {args.repeat}, in process)")
    print(f"3 assets: {origin} (read in {read:.2f} s CPU); 50 assets: synthetic market")
    rows, results = measure(
        [
            ("20 y x 3", real, TWENTY_YEARS, SYMBOLS, TARGETS[len(SYMBOLS)]),
            ("20 y x 50", many, TWENTY_YEARS, MANY, TARGETS[len(MANY)]),
            ("10 y x 50", many, TEN_YEARS, MANY, None),
        ],
        args.repeat,
    )
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        print(pd.DataFrame(rows).to_string(index=False))
    per = {(r["case"], r["preset"]): r["µs per session-asset"] for r in rows}
    for name in PRESETS:
        ratio = per[("20 y x 50", name)] / per[("10 y x 50", name)]
        print(
            f"linear in sessions x assets (preset {name}): µs per session-asset, 20 y / 10 y "
            f"of 50 assets = {ratio:.2f} (1.00 is linear)"
        )
    print_metrics(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
