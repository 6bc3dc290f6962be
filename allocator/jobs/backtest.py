"""The backtest job (``notebooks/backtest.ipynb``): a replay of the daily jobs over a period.

The replay itself is :func:`allocator.research.backtest_job.run_backtest_job`; this module adds
what the notebook glues and shows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from allocator.backtest.benchmarks import SPY_MIX
from allocator.backtest.engine import BacktestResult
from allocator.notebook.formats import METRIC_FORMATS, versus_mix
from allocator.research.backtest_job import run_backtest_job
from allocator.research.replay import (
    CONFIG_SOURCES,
    DATA_SOURCES,
    build_schedule,
    history_start,
    load_bars_for,
    parse_overrides,
    run_backtest,
)

__all__ = [
    "CONFIG_SOURCES",
    "DATA_SOURCES",
    "build_schedule",
    "comparison_for_display",
    "comparison_for_glue",
    "daily_for_glue",
    "history_start",
    "load_bars_for",
    "metrics_for_glue",
    "parse_overrides",
    "run_backtest",
    "run_backtest_job",
    "trades_for_glue",
    "versus_mix_sentence",
]


def metrics_for_glue(result: BacktestResult) -> dict[str, Any]:
    """The strategy's metrics as plain JSON values (dates as ISO text, NaN as None)."""
    out = {}
    for key, value in result.metrics.items():
        if isinstance(value, dt.date | pd.Timestamp):
            value = value.isoformat()[:10]
        elif isinstance(value, float) and value != value:
            value = None
        elif hasattr(value, "item"):
            value = value.item()
        out[key] = value
    return out


def daily_for_glue(result: BacktestResult) -> pd.DataFrame:
    return result.daily[["date", "deposit", "cash", "positions_value", "total_value"]].assign(
        date=lambda d: d["date"].astype(str)
    )


def trades_for_glue(result: BacktestResult) -> pd.DataFrame:
    return result.trades.assign(date=lambda d: d["date"].astype(str))


def comparison_for_glue(result: BacktestResult) -> dict[str, dict[str, float | None]]:
    """Strategy and benchmark metrics, name -> metric -> value (NaN as None)."""
    table = result.comparison if result.comparison is not None else pd.DataFrame()
    return {
        name: {k: (None if v != v else float(v)) for k, v in row.items()}
        for name, row in table.to_dict(orient="index").items()
    }


def comparison_for_display(result: BacktestResult) -> pd.DataFrame:
    """The comparison table as text for reading: percentages, ratios, dollars, labelled columns.

    One row per run (the strategy, then each benchmark), the columns of
    :data:`~allocator.notebook.formats.METRIC_FORMATS` in its order; a missing value (no trades
    in a benchmark, no Sharpe ratio for cash) shows as ``—``. The raw numbers stay in
    ``result.comparison`` and in the glued ``comparison``.
    """
    table = result.comparison if result.comparison is not None else pd.DataFrame()
    shown = [key for key in METRIC_FORMATS if key in table.columns]
    return pd.DataFrame(
        {METRIC_FORMATS[key][0]: table[key].map(METRIC_FORMATS[key][1]) for key in shown},
        index=table.index,
    )


def versus_mix_sentence(result: BacktestResult) -> str:
    """Whether the strategy beats the SPY + cash mix at its own exposure (Sharpe and drawdown),
    in one sentence with the figures (:func:`~allocator.notebook.formats.versus_mix`)."""
    table = result.comparison
    if table is None or SPY_MIX not in table.index:
        return "No SPY + cash mix to compare with: SPY's bars do not cover the period."
    return versus_mix("The strategy", table.loc["strategy"], table.loc[SPY_MIX])
