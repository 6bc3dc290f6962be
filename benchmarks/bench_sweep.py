"""Sweep speed: 200 configs over 20 years on a 2-worker local Dask cluster, against serial, with
the reference engine (the production backtest; the replay kernel's figures are
``bench_kernel``'s, and it never starts a local cluster).

    python -m benchmarks.bench_sweep [--workers 2] [--csv-dir DIR]

Uses the real history in ``../shared/data/market`` when present (``ALLOCATOR_MARKET_CSV_DIR``
overrides; never copied into the repository), else the synthetic market. Prints the wall time of
the serial run and of the cluster run, the speed-up, and each one's cost per config against one
backtest of the same period, and checks that both give the same table.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from allocator.jobs.sweep import run_sweep
from benchmarks.bench_backtest import default_csv_dir

START, END = "2005-01-03", "2024-12-31"


#: 10 x 2 x 10 = 200 configs.
GRID = {
    "cash_deploy_rate": [0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.25, 0.5],
    "sell_trigger": ["every_session", "spell_start"],
    "sell_percentage": [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--csv-dir", default=default_csv_dir())
    args = parser.parse_args(argv)
    source = (
        {"data_source": "csv", "csv_dir": str(args.csv_dir)}
        if args.csv_dir
        else {"data_source": "synthetic"}
    )
    grid = GRID
    one = {k: v[:1] for k, v in grid.items()}
    print(f"== Sweep speed ({source['data_source']}, {START}..{END})")
    t0 = time.perf_counter()
    source["engine"] = "reference"
    single = run_sweep(one, START, END, base="seed", serial=True, **source)
    one_backtest = time.perf_counter() - t0
    serial = run_sweep(grid, START, END, base="seed", serial=True, **source)
    cluster = run_sweep(grid, START, END, base="seed", workers=args.workers, **source)
    same = serial.table.equals(cluster.table)
    n = len(serial.table)
    rows = [
        ("one backtest (load + run)", one_backtest, single.seconds, 1.0),
        (f"{n} configs, serial", serial.seconds, serial.seconds / n, 1.0),
        (
            f"{n} configs, {cluster.workers}-worker LocalCluster",
            cluster.seconds,
            cluster.seconds / n,
            serial.seconds / cluster.seconds,
        ),
    ]
    table = pd.DataFrame(rows, columns=["run", "wall s", "s per config", "speed-up"])
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    print(
        f"per config on the cluster: {cluster.seconds / n / single.seconds:.2f}x one backtest "
        f"({single.seconds:.3f} s); tables identical: {same}"
    )
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
