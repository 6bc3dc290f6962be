"""History a user already has: one ``SYMBOL.csv`` per symbol (date,open,high,low,close,volume).

Only files inside the folder are read: a symbol must follow the ticker rule (no ``/``, no
leading dot) and the file it names must resolve, links followed, inside the folder. A file with
no bars, or none in the range asked for, is an error naming the file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from allocator.exceptions import MalformedResponseError, MarketDataError
from allocator.shell.marketdata.base import BAR_COLUMNS, clip_to_range, validate_bars
from allocator.strategy.symbols import symbol_problem


class CsvSource:
    """Reads ``<csv_dir>/<SYMBOL>.csv`` (case of the file name may be upper or lower)."""

    name = "csv"

    def __init__(self, csv_dir: str | Path):
        self.csv_dir = Path(csv_dir).expanduser()
        if not self.csv_dir.is_dir():
            from allocator.exceptions import SettingsError

            raise SettingsError(
                f"--csv-dir {self.csv_dir} is not a folder: give the folder of SYMBOL.csv files"
            )
        self._cache: dict[str, pd.DataFrame] = {}

    def path_for(self, symbol: str) -> Path:
        """The symbol's file in the folder; never a path that resolves outside it."""
        problem = symbol_problem(symbol.upper())
        if problem:
            raise MarketDataError(symbol, problem)
        folder = self.csv_dir.resolve()
        for name in (f"{symbol}.csv", f"{symbol.upper()}.csv", f"{symbol.lower()}.csv"):
            candidate = self.csv_dir / name
            if candidate.is_file():
                if not candidate.resolve().is_relative_to(folder):
                    raise MarketDataError(
                        symbol,
                        f"{candidate} resolves to {candidate.resolve()}, outside {folder}: "
                        "copy the file into the --csv-dir folder",
                    )
                return candidate
        raise MarketDataError(symbol, f"no file {symbol.upper()}.csv in {self.csv_dir}")

    def load(self, symbol: str) -> pd.DataFrame:
        """Every validated bar in the symbol's file (read once per source object)."""
        symbol = symbol.upper()
        if symbol not in self._cache:
            path = self.path_for(symbol)
            try:
                raw = pd.read_csv(path, dtype=str, skipinitialspace=True)
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
                raise MalformedResponseError(
                    symbol, f"{path} is not a readable CSV: {exc}"
                ) from None
            raw.columns = [str(c).strip().lower() for c in raw.columns]
            missing = [c for c in BAR_COLUMNS if c not in raw.columns]
            if missing:
                raise MalformedResponseError(
                    symbol,
                    f"{path} lacks column(s) {', '.join(missing)}; the header must be "
                    "date,open,high,low,close,volume",
                )
            bars = validate_bars(symbol, raw, str(path))
            if bars.empty:
                raise MarketDataError(
                    symbol, f"{path} holds no bars (a header only): add rows or remove the file"
                )
            self._cache[symbol] = bars
        return self._cache[symbol]

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """The symbol's bars in [start, end]; none there is an error naming the file."""
        bars = self.load(symbol)
        clipped = clip_to_range(bars, start, end)
        if clipped.empty:
            raise MarketDataError(
                symbol,
                f"{self.path_for(symbol.upper())} has no bars from {start} to {end} (it holds "
                f"{bars['date'].iloc[0]} to {bars['date'].iloc[-1]}): give a range it covers",
            )
        return clipped
