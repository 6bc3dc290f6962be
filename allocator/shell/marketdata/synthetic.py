"""A deterministic, seeded synthetic market for the offline demo and the tests.

The market moves through phases — ``calm``, ``bull`` and ``bear`` trends, and short ``crash``
episodes — chosen by a seeded Markov chain over NYSE sessions. Each symbol follows a common market
factor (with its own beta) plus idiosyncratic noise. Every random stream has its own generator, so
a date's bar depends only on the random seed, the symbol and the date: any range asked for
returns the same bars for the dates it shares with any other range. Rows are stored with source
``synthetic`` so they are never mistaken for real prices.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from allocator.shell import calendar
from allocator.shell.marketdata.base import clip_to_range, validate_bars

ANCHOR = dt.date(1990, 1, 2)
DEFAULT_SEED = 20_05_01


@dataclass(frozen=True)
class Phase:
    name: str
    drift: float  # mean daily log return of the market factor
    vol: float  # daily volatility of the market factor
    mean_length: float  # mean duration in sessions (geometric)


PHASES: tuple[Phase, ...] = (
    Phase("calm", 0.0004, 0.0065, 160.0),
    Phase("bull", 0.0012, 0.0095, 110.0),
    Phase("bear", -0.0013, 0.0150, 70.0),
    Phase("crash", -0.0120, 0.0280, 22.0),
)
# Where the market goes when a phase ends (rows: from; columns: to, in PHASES order).
TRANSITIONS = np.array(
    [
        [0.00, 0.60, 0.30, 0.10],
        [0.60, 0.00, 0.30, 0.10],
        [0.45, 0.25, 0.00, 0.30],
        [0.30, 0.30, 0.40, 0.00],
    ]
)

# beta to the market factor, idiosyncratic daily vol, price on the anchor date
KNOWN_SYMBOLS = {
    "SPY": (1.00, 0.0015, 35.0),
    "QQQ": (1.25, 0.0060, 22.0),
    "DIA": (0.90, 0.0030, 27.0),
}


def _symbol_profile(symbol: str) -> tuple[float, float, float]:
    if symbol in KNOWN_SYMBOLS:
        return KNOWN_SYMBOLS[symbol]
    h = zlib.crc32(symbol.encode())
    return 0.7 + (h % 60) / 100.0, 0.002 + (h % 7) / 1000.0, 20.0 + h % 80


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key])))


@lru_cache(maxsize=8)
def _market(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Phase index and market factor log return for the first ``n`` sessions from the anchor."""
    chooser = _stream(seed, 1)
    phases = np.empty(n, dtype=np.int8)
    current = 0
    for i in range(n):
        stay = 1.0 - 1.0 / PHASES[current].mean_length
        u, v = chooser.random(2)
        if i > 0 and u > stay:
            current = int(np.searchsorted(np.cumsum(TRANSITIONS[current]), v, side="right"))
            current = min(current, len(PHASES) - 1)
        phases[i] = current
    drift = np.array([p.drift for p in PHASES])[phases]
    vol = np.array([p.vol for p in PHASES])[phases]
    shocks = _stream(seed, 2).standard_normal(n)
    return phases, drift + vol * shocks


def _sessions() -> list[dt.date]:
    last = calendar.today_eastern() + dt.timedelta(days=366)
    return calendar.sessions_between(ANCHOR, last)


class SyntheticSource:
    """Seeded synthetic daily OHLCV for any symbol, on NYSE sessions from 1990 on."""

    name = "synthetic"

    def __init__(self, seed: int = DEFAULT_SEED):
        self.seed = int(seed)

    def _frame(self, symbol: str) -> tuple[list[dt.date], pd.DataFrame, np.ndarray]:
        sessions = _sessions()
        n = len(sessions)
        phases, market = _market(self.seed, n)
        beta, idio, start_price = _symbol_profile(symbol)
        key = zlib.crc32(symbol.encode())
        noise = _stream(self.seed, 3, key).standard_normal((n, 4))
        vol = np.array([p.vol for p in PHASES])[phases]
        log_ret = beta * market + idio * noise[:, 0] - 0.5 * (beta * vol) ** 2
        close = start_price * np.exp(np.cumsum(log_ret))
        prev_close = np.concatenate([[start_price], close[:-1]])
        day_vol = beta * vol + idio
        open_ = prev_close * np.exp(0.25 * day_vol * noise[:, 1])
        high = np.maximum(open_, close) * (1.0 + 0.5 * day_vol * np.abs(noise[:, 2]))
        low = np.minimum(open_, close) * (1.0 - 0.5 * day_vol * np.abs(noise[:, 3]))
        volume = np.round(5e7 * (day_vol / 0.01) * np.exp(0.2 * noise[:, 1]))
        frame = pd.DataFrame(
            {
                "date": sessions,
                "open": np.round(open_, 4),
                "high": np.round(high, 4),
                "low": np.round(low, 4),
                "close": np.round(close, 4),
                "volume": volume.astype("int64"),
            }
        )
        return sessions, frame, phases

    def fetch(self, symbol: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Bars of ``symbol`` for the sessions in [start, end] (before today + 1 year)."""
        _, frame, _ = self._frame(symbol.upper())
        return validate_bars(symbol, clip_to_range(frame, start, end), "synthetic source")

    def phases(self, start: dt.date, end: dt.date) -> pd.Series:
        """The market phase (``calm``, ``bull``, ``bear``, ``crash``) of each session in range."""
        sessions = _sessions()
        phases, _ = _market(self.seed, len(sessions))
        names = np.array([p.name for p in PHASES])[phases]
        series = pd.Series(names, index=sessions, name="phase")
        return series[(series.index >= start) & (series.index <= end)]
