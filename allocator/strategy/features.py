"""Per-asset price features, computed for every date at once by one vectorised function.

The same function serves the daily job (one as-of date: pass the history up to it and read the
last row) and the backtest (every date: pass the whole history). Every value at row ``t`` is
computed from a fixed trailing window of closes ending at ``t``, with a fixed order of floating
point operations (explicit shift-and-add sums, never running or cumulative sums), so the numbers
for a date are bit-identical whether the history starts one year or twenty years earlier. Nothing
dated after ``t`` enters row ``t``.

Input is a *closes frame*: one row per session (index: dates, ascending, unique), one column per
symbol, closing prices above zero; NaN where a symbol has no bar yet. Output is a frame with the
same index and two column levels, ``(feature, symbol)``; ``features["returns_20d"]`` is a
dates x symbols frame.

Features (``c`` = close, ``t`` = session index, windows count sessions):

``returns_1d``      c[t] / c[t-1] - 1 (the daily return; input to volatility and co-movement)
``returns_5d``      c[t] / c[t-5] - 1, over exactly 5 intervals (6 closes)
``returns_20d``     c[t] / c[t-20] - 1
``returns_60d``     c[t] / c[t-60] - 1 (needs 61 closes: the longest window here)
``volatility``      sample standard deviation (ddof=1) of the 20 daily returns ending at t, in
                    daily units (not annualised; multiply by sqrt(252) for an annual figure)
``sma_20``          mean of the 20 closes ending at t
``sma_50``          mean of the 50 closes ending at t
``sma20_distance``  c[t] / sma_20[t] - 1 (the relative distance of price above its average)
``sma50_distance``  c[t] / sma_50[t] - 1
``close``           c[t]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

RETURN_HORIZONS: tuple[int, ...] = (5, 20, 60)
VOLATILITY_WINDOW = 20
SMA_WINDOWS: tuple[int, ...] = (20, 50)
#: Closes needed before every feature of a row is defined (the 60-session return).
MIN_FEATURE_HISTORY = max(RETURN_HORIZONS) + 1

FEATURE_NAMES: tuple[str, ...] = (
    "close",
    "returns_1d",
    "returns_5d",
    "returns_20d",
    "returns_60d",
    "volatility",
    "sma_20",
    "sma_50",
    "sma20_distance",
    "sma50_distance",
)


def closes_frame(bars: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """A closes frame from bars per symbol (each with ``date`` and ``close`` columns).

    The index is the union of all dates (as :class:`datetime.date`), ascending; a symbol without a
    bar on a date gets NaN there. Columns follow the order of ``bars``.
    """
    series = {}
    for symbol, frame in bars.items():
        dates = pd.DatetimeIndex(pd.to_datetime(frame["date"]))
        series[symbol] = pd.Series(frame["close"].to_numpy(dtype="float64"), index=dates)
    closes = pd.DataFrame(series).sort_index()
    closes.index = pd.Index(closes.index.date, name="date")
    return closes


def check_closes(closes: pd.DataFrame) -> None:
    """Raise ``ValueError`` unless ``closes`` is a valid closes frame (see the module doc)."""
    if not closes.index.is_unique:
        raise ValueError("closes: the date index has duplicates; give one row per session")
    if not closes.index.is_monotonic_increasing:
        raise ValueError("closes: the date index is not ascending; sort it by date")
    values = closes.to_numpy(dtype="float64")
    bad = ~np.isnan(values) & ~((values > 0) & np.isfinite(values))
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        value = float(values[row, col])
        raise ValueError(
            f"closes: {closes.columns[col]} close {value!r} on {closes.index[row]} "
            "is not a positive finite price"
        )


def compute_features(closes: pd.DataFrame) -> pd.DataFrame:
    """Every feature of the module doc for every date and symbol of ``closes``.

    Returns a frame indexed like ``closes`` with columns ``(feature, symbol)`` for each feature in
    :data:`FEATURE_NAMES`. A value is NaN until its window is full (and wherever the window holds
    a missing close).
    """
    check_closes(closes)
    c = closes.to_numpy(dtype="float64")
    out: dict[str, np.ndarray] = {"close": c}
    out["returns_1d"] = horizon_return(c, 1)
    for n in RETURN_HORIZONS:
        out[f"returns_{n}d"] = horizon_return(c, n)
    out["volatility"] = trailing_std(out["returns_1d"], VOLATILITY_WINDOW)
    for n in SMA_WINDOWS:
        sma = trailing_sum(c, n) / n
        out[f"sma_{n}"] = sma
        out[f"sma{n}_distance"] = c / sma - 1.0
    symbols = list(closes.columns)
    columns = pd.MultiIndex.from_product(
        [list(FEATURE_NAMES), symbols], names=["feature", "symbol"]
    )
    data = np.concatenate([out[name] for name in FEATURE_NAMES], axis=1)
    return pd.DataFrame(data, index=closes.index, columns=columns)


def horizon_return(c: np.ndarray, n: int) -> np.ndarray:
    """``c[t] / c[t-n] - 1`` along axis 0 (rows are sessions); NaN for the first ``n`` rows."""
    out = np.full(c.shape, np.nan)
    if c.shape[0] > n:
        out[n:] = c[n:] / c[:-n] - 1.0
    return out


def trailing_sum(a: np.ndarray, window: int) -> np.ndarray:
    """Sum of the ``window`` rows ending at each row: ``a[t] + a[t-1] + ... + a[t-window+1]``.

    Added in that fixed order for every row, so a row's value does not depend on how much history
    precedes the window (a running sum would). NaN for the first ``window - 1`` rows.
    """
    out = np.full(a.shape, np.nan)
    n = a.shape[0]
    if n < window:
        return out
    acc = a[window - 1 :].copy()
    for k in range(1, window):
        acc = acc + a[window - 1 - k : n - k]
    out[window - 1 :] = acc
    return out


def trailing_std(a: np.ndarray, window: int) -> np.ndarray:
    """Sample standard deviation (ddof=1) of the ``window`` rows ending at each row.

    Two-pass: the window mean first, then the sum of squared deviations from it, both in the
    fixed order of :func:`trailing_sum`.
    """
    out = np.full(a.shape, np.nan)
    n = a.shape[0]
    if n < window:
        return out
    mean = trailing_sum(a, window)[window - 1 :] / window
    acc = (a[window - 1 :] - mean) ** 2
    for k in range(1, window):
        acc = acc + (a[window - 1 - k : n - k] - mean) ** 2
    out[window - 1 :] = np.sqrt(acc / (window - 1))
    return out


def trailing_corr(x: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Pearson correlation of two 1-D series over the ``window`` rows ending at each row.

    Computed two-pass in a fixed order like :func:`trailing_std`. Where either series does not
    move inside the window (zero variance) the correlation is undefined and reported as 0 (no
    measurable co-movement); results are clipped to [-1, 1] against rounding.
    """
    out = np.full(x.shape, np.nan)
    n = x.shape[0]
    if n < window:
        return out
    mx = trailing_sum(x, window)[window - 1 :] / window
    my = trailing_sum(y, window)[window - 1 :] / window
    dx, dy = x[window - 1 :] - mx, y[window - 1 :] - my
    sxy, sxx, syy = dx * dy, dx * dx, dy * dy
    for k in range(1, window):
        dx, dy = x[window - 1 - k : n - k] - mx, y[window - 1 - k : n - k] - my
        sxy = sxy + dx * dy
        sxx = sxx + dx * dx
        syy = syy + dy * dy
    denom = np.sqrt(sxx) * np.sqrt(syy)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(denom > 0, sxy / denom, 0.0)
    rho = np.where(np.isnan(sxy + denom), np.nan, np.clip(rho, -1.0, 1.0))
    out[window - 1 :] = rho
    return out
