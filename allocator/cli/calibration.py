"""``python -m allocator.cli.calibration``: the calibration check on a folder of CSV files.

    python -m allocator.cli.calibration --csv-dir DIR --start 2005-01-03 --end 2024-12-31

Reads ``SYMBOL.csv`` files through the project's CSV source, prints the regime and risk-band
shares of :mod:`allocator.strategy.calibration` and exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from allocator.strategy.calibration import (
    STRESS_MONTHS,
    distributions,
    format_table,
    target_failures,
)
from allocator.strategy.config import TradingConfig
from allocator.strategy.features import closes_frame


def read_csv_closes(csv_dir: Path, symbols: Sequence[str]) -> pd.DataFrame:
    """A closes frame read through the project's CSV source (validated ``SYMBOL.csv`` files)."""
    from allocator.shell.marketdata.csvsource import CsvSource

    source = CsvSource(csv_dir)
    return closes_frame({symbol: source.load(symbol) for symbol in symbols})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m allocator.cli.calibration",
        description="Regime and risk-band shares of the signal over a history (default config).",
    )
    parser.add_argument("--csv-dir", required=True, type=Path, help="folder of SYMBOL.csv files")
    parser.add_argument("--start", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--end", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--assets", nargs="+", help="symbols (default: the config's assets)")
    parser.add_argument("--months", nargs="*", default=list(STRESS_MONTHS), help="YYYY-MM")
    args = parser.parse_args(argv)
    config = TradingConfig() if not args.assets else TradingConfig(assets=tuple(args.assets))
    closes = read_csv_closes(args.csv_dir, config.assets)
    result = distributions(closes, config, args.start, args.end, args.months)
    print(f"{', '.join(config.assets)} from {args.start} to {args.end}, default config")
    print(format_table(result, config))
    failures = target_failures(result)
    for failure in failures:
        print(f"MISSED: {failure}")
    if not failures:
        print("all calibration targets met")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
