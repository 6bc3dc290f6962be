"""``allocator sweep``: a grid of config overrides backtested, from the shell.

    allocator sweep --grid '{"cash_deploy_rate": [0, 0.03, 0.1]}' --start 2005-01-03 \\
        --end 2014-12-31 [--base default|seed] [--data-source csv --csv-dir DIR] \\
        [--engine kernel|reference] [--scheduler tcp://HOST:8786] [--workers 2] [--serial] \\
        [--out results.parquet]

Where and how the points run is :mod:`allocator.research.cluster`'s choice: the replay kernel
in this process by default, Dask with a scheduler address (or with ``--engine reference``).

``--grid`` takes JSON text or ``@FILE`` (a JSON file). The results table is printed (best first
by Sharpe) and, with ``--out``, written as Parquet (``.parquet``) or CSV (``.csv``). The notebook
version, with heatmaps and an archived record, is ``allocator run sweep``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from allocator.cli.bounds import MAX_WORKERS, whole_number
from allocator.exceptions import JobError
from allocator.strategy.config import PRESET_NAMES

EXIT_OK = 0
#: ``allocator.research.cluster.ENGINES``, named here so that parsing imports nothing heavy.
ENGINES = ("kernel", "reference")


def read_grid(text: str) -> str:
    """The grid's JSON text: ``text`` itself, or the content of the file ``@PATH``."""
    if not text.startswith("@"):
        return text
    path = Path(text[1:]).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise JobError(f"--grid {text}: cannot read {path} ({exc.strerror})") from None


def cmd_sweep(args: argparse.Namespace) -> int:
    import pandas as pd

    from allocator.jobs.sweep import run_sweep, save_results

    result = run_sweep(
        read_grid(args.grid),
        args.start,
        args.end,
        base=args.base,
        data_source=args.data_source,
        csv_dir=args.csv_dir,
        scheduler=args.scheduler,
        workers=args.workers,
        serial=args.serial,
        progress=True,
        engine=args.engine,
    )
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(result.table.sort_values("sharpe", ascending=False).to_string(index=False))
    if args.out:
        out = Path(args.out)
        if out.suffix == ".csv":
            result.table.to_csv(out, index=False)
        else:
            save_results(result, out)
        print(f"results written to {out}")
    print(result.summary_line())
    return EXIT_OK


def add_sweep_parser(sub) -> argparse.ArgumentParser:
    sweep = sub.add_parser("sweep", help="backtest a grid of config overrides")
    sweep.add_argument("--grid", required=True, help="JSON {parameter: [values]} or @FILE")
    sweep.add_argument("--start", required=True, help="first trade date, YYYY-MM-DD")
    sweep.add_argument("--end", required=True, help="last trade date, YYYY-MM-DD")
    sweep.add_argument("--base", choices=PRESET_NAMES, default="default", help="preset to change")
    sweep.add_argument(
        "--data-source", choices=("database", "csv", "synthetic"), default="database"
    )
    sweep.add_argument("--csv-dir", help="folder of SYMBOL.csv (default ALLOCATOR_MARKET_CSV_DIR)")
    sweep.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler address (default DASK_SCHEDULER_ADDRESS, else this process; "
        "with --engine reference, a local cluster)",
    )
    sweep.add_argument(
        "--engine",
        choices=ENGINES,
        default="kernel",
        help="kernel: the research replay kernel (proven equal, about 40x faster); reference: "
        "the production backtest itself",
    )
    sweep.add_argument(
        "--workers",
        type=whole_number(1, MAX_WORKERS),
        default=2,
        help=f"local cluster processes (--engine reference), 1..{MAX_WORKERS} (default 2)",
    )
    sweep.add_argument("--serial", action="store_true", help="run in this process, no Dask")
    sweep.add_argument("--out", metavar="FILE", help="write the table (.parquet or .csv)")
    sweep.set_defaults(func=cmd_sweep)
    return sweep
