"""Opens and closes by session, wide (one column per symbol), for fast per-day lookups."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocator.exceptions import MissingBarsError


@dataclass(frozen=True)
class PriceTable:
    """Opens and closes by date (wide, one column per symbol) for fast per-day lookups."""

    opens: pd.DataFrame
    closes: pd.DataFrame

    @classmethod
    def from_bars(cls, bars: pd.DataFrame) -> PriceTable:
        """From a long frame with columns symbol, date, open, close."""
        if bars.empty:
            raise MissingBarsError({}, "no bars to backtest on: backfill history first")
        wide = bars.pivot(index="date", columns="symbol", values=["open", "close"]).sort_index()
        opens, closes = wide["open"], wide["close"]
        opens.columns.name = closes.columns.name = None
        return cls(opens.astype("float64"), closes.astype("float64"))

    @property
    def dates(self) -> list[dt.date]:
        """Every date that has a bar, ascending."""
        return list(self.closes.index)

    def rows(
        self, frame: pd.DataFrame, symbols: list[str], days: list[dt.date]
    ) -> dict[dt.date, dict[str, float]]:
        """``{day: {symbol: price}}`` of ``frame`` (missing prices left out)."""
        table = frame.reindex(index=days, columns=symbols).to_numpy(dtype="float64")
        values = table.tolist()
        if not np.isnan(table).any():  # nothing to leave out
            pairs = zip(days, values, strict=True)
            return {d: dict(zip(symbols, row, strict=True)) for d, row in pairs}
        return {
            d: {s: v for s, v in zip(symbols, row, strict=True) if v == v}
            for d, row in zip(days, values, strict=True)
        }

    def last_closes(self, symbols: list[str], on_or_before: dt.date) -> dict[str, float]:
        """The latest close on or before ``on_or_before`` of each symbol (none: left out), as
        ``persistence.prices.latest_closes`` reads them from the database."""
        found = {}
        for symbol in symbols:
            if symbol in self.closes.columns:
                column = self.closes[symbol].loc[:on_or_before].dropna()
                if len(column):
                    found[symbol] = float(column.iloc[-1])
        return found

    def has_every_close(self, symbol: str, sessions: list[dt.date]) -> bool:
        """Whether ``symbol`` has a close on every one of ``sessions``."""
        if symbol not in self.closes.columns:
            return False
        return not self.closes.reindex(index=sessions)[symbol].isna().any()

    def require_sessions(self, symbols: list[str], sessions: list[dt.date]) -> None:
        """Raise :class:`MissingBarsError` naming each symbol's missing sessions (first five)."""
        table = self.closes.reindex(index=sessions, columns=symbols)
        gaps = table.isna()
        if not gaps.to_numpy().any():
            return
        missing = {
            s: [str(d) for d in table.index[gaps[s].to_numpy()]][:5]
            for s in symbols
            if gaps[s].any()
        }
        detail = "; ".join(f"{s}: {', '.join(days)}" for s, days in missing.items())
        raise MissingBarsError(
            missing, f"bars missing inside the backtest period ({detail}): backfill them"
        )
