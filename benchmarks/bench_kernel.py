"""The research replay kernel against the reference backtest: one run, and a 200-config sweep.

    python -m benchmarks.bench_kernel [--csv-dir DIR] [--repeat 5]

- **cold**: the first 20-year replay of the ``default`` preset in a fresh Python process, in CPU
  seconds: compiling the kernel (an empty ``NUMBA_CACHE_DIR``), and loading it from numba's
  on-disk cache (``cache=True``: ``__pycache__`` beside the module); the market state table is
  timed apart;
- **warm**: the same replay in a process that has the kernel, best of ``--repeat``: the
  reference (:func:`allocator.backtest.engine.simulate`), the kernel with every frame
  (:meth:`Replayer.run`) and with daily arrays only (:meth:`Replayer.daily`);
- **sweep**: 200 configs (cash_deploy_rate x sell_percentage x allocation_neutral x
  regime_bullish_threshold on the ``default`` preset) over 2005-01-03..2024-12-31, each row as
  :func:`allocator.backtest.sweep.evaluate` gives it, serially in this process: the kernel
  (``engine="kernel"``, the replayer and its market states built inside the timing) against
  the reference (``engine="reference"``); the two tables must be identical. Targets: the
  kernel at least 30x faster, and at most 2 s.

The 3 assets are the real SPY/QQQ/DIA history when ``ALLOCATOR_MARKET_CSV_DIR`` (or
``../shared/data/market``) has it, read in place; else the seeded synthetic market, and the
output says so.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from allocator.backtest.engine import simulate
from allocator.backtest.prices import PriceTable
from allocator.backtest.schedule import ConfigSchedule
from allocator.research.cluster import run_points
from allocator.shell import calendar
from allocator.shell.marketdata.csvsource import CsvSource
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.strategy.config import preset
from benchmarks.bench_backtest import END, SYMBOLS, TWENTY_YEARS, default_csv_dir, load

ROOT = Path(__file__).resolve().parents[1]
#: 5 x 4 x 5 x 2 = 200 configs.
GRID = {
    "cash_deploy_rate": [0.0, 0.01, 0.03, 0.1, 0.3],
    "sell_percentage": [0.3, 0.5, 0.7, 1.0],
    "allocation_neutral": [0.0, 0.2, 0.5, 0.8, 1.0],
    "regime_bullish_threshold": [0.2, 0.4],
}
#: CPU seconds of the 200-config sweep on the kernel, and its speed-up over the reference.
TARGET_SECONDS, TARGET_RATIO = 2.0, 30.0


def bars_and_origin(csv_dir: Path | None) -> tuple[pd.DataFrame, str]:
    if csv_dir:
        return load(CsvSource(csv_dir), SYMBOLS, TWENTY_YEARS), f"real history from {csv_dir}"
    return load(SyntheticSource(), SYMBOLS, TWENTY_YEARS), "synthetic market (no real history)"


def best_cpu(call, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        call()
        best = min(best, time.process_time() - t0)
    return best


#: Run in a fresh process: imports the replayer first (numba with it), then :func:`first_replay`.
COLD_START = (
    "import time; t0 = time.process_time(); import allocator.research.replayer; "
    "t1 = time.process_time(); import json, sys; from benchmarks.bench_kernel import "
    "first_replay; r = first_replay(sys.argv[1] or None); r['import'] = t1 - t0; "
    "print(json.dumps(r))"
)


def first_replay(csv_dir: Path | None) -> dict[str, float]:
    """In this (fresh) process: CPU seconds of the market state table, and of the first 20-year
    replay (compiling the kernel or loading it from the cache, then running it)."""
    from allocator.research.replayer import Replayer

    bars, _ = bars_and_origin(csv_dir)
    sessions = calendar.sessions_between(TWENTY_YEARS, END)
    t1 = time.process_time()
    replayer = Replayer(bars)
    replayer.market.states(preset("default"))
    t2 = time.process_time()
    replayer.run(sessions, [preset("default")])
    t3 = time.process_time()
    return {"states": t2 - t1, "first": t3 - t2}


def cold_starts(csv_dir: Path | None) -> dict[str, dict[str, float]]:
    """:func:`first_replay` in a new process compiling the kernel, then loading it."""
    out = {}
    with tempfile.TemporaryDirectory() as empty:
        for label, extra in (("compile", {"NUMBA_CACHE_DIR": empty}), ("cache load", {})):
            done = subprocess.run(
                [sys.executable, "-c", COLD_START, str(csv_dir or "")],
                cwd=ROOT,
                env={**os.environ, **extra},
                capture_output=True,
                text=True,
                check=True,
            )
            out[label] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def sweep(bars: pd.DataFrame, engine: str) -> tuple[float, pd.DataFrame]:
    sessions = calendar.sessions_between(TWENTY_YEARS, END)
    points = [dict(zip(GRID, combo, strict=True)) for combo in itertools.product(*GRID.values())]
    t0 = time.process_time()
    rows = run_points(None, bars, sessions, preset("default"), points, engine=engine)
    return time.process_time() - t0, pd.DataFrame(rows)


def verdict(kernel: float, reference: float) -> str:
    ratio = reference / kernel
    fast = "OK" if ratio >= TARGET_RATIO else "UNDER"
    small = "OK" if kernel <= TARGET_SECONDS else "OVER"
    return (
        f"{ratio:.1f}x faster (target >= {TARGET_RATIO:g}x) {fast}; "
        f"{kernel:.2f} s CPU (target <= {TARGET_SECONDS:g} s) {small}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv-dir", type=Path, default=default_csv_dir())
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    bars, origin = bars_and_origin(args.csv_dir)
    from allocator.research.replayer import Replayer

    sessions = calendar.sessions_between(TWENTY_YEARS, END)
    config = preset("default")
    replayer = Replayer(bars)
    replayer.run(sessions, [config])  # compiled or loaded from the cache, states built
    print(f"== Research replay kernel ({origin}, {TWENTY_YEARS}..{END}, preset default)")
    cold = cold_starts(args.csv_dir)
    for label, figures in cold.items():
        print(
            f"cold, {label}: first 20-year replay {figures['first']:.2f} s CPU in a new process "
            f"(+ importing the replayer and numba {figures['import']:.2f} s, market state table "
            f"{figures['states']:.2f} s)"
        )
    prices = PriceTable.from_bars(bars)
    schedule = ConfigSchedule.constant(config)
    warm = {
        "reference simulate": best_cpu(lambda: simulate(prices, sessions, schedule), 3),
        "kernel, every frame (run)": best_cpu(
            lambda: replayer.run(sessions, [config]), args.repeat
        ),
        "kernel, daily arrays (daily)": best_cpu(
            lambda: replayer.daily(sessions, [config]), args.repeat
        ),
    }
    for label, seconds in warm.items():
        print(f"warm, {label}: {seconds * 1000:.1f} ms CPU")
    kernel_s, kernel_table = sweep(bars, "kernel")
    reference_s, reference_table = sweep(bars, "reference")
    same = kernel_table.equals(reference_table)
    print(
        f"sweep of {len(kernel_table)} configs x 20 y: kernel {kernel_s:.2f} s CPU, reference "
        f"{reference_s:.1f} s CPU; {verdict(kernel_s, reference_s)}; tables identical: {same}"
    )
    print(
        f"results.md: kernel 20 y default run {warm['kernel, daily arrays (daily)'] * 1000:.1f} ms"
        f" warm ({cold['compile']['first']:.1f} s compiling, {cold['cache load']['first']:.2f} s"
        f" from the cache); 200-config sweep {kernel_s:.2f} s vs {reference_s:.1f} s reference"
        f" ({reference_s / kernel_s:.0f}x)"
    )
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
