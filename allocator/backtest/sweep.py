"""A research sweep: a grid of config overrides, each backtested over the same period.

Pure: :func:`expand_grid` checks and expands a grid, :func:`evaluate` backtests one point of it
with the production engine (:func:`~allocator.backtest.engine.backtest_sessions`) and returns one
row of metrics, with the SPY + cash mix at that config's own average exposure beside them
(:func:`~allocator.backtest.benchmarks.exposure_matched_metrics`) and whether the config beats
it on both Sharpe and maximum drawdown. Where the points run (serially, or on a Dask cluster)
is the caller's choice (:mod:`allocator.jobs.sweep`); a point's row is the same either way.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from allocator.backtest.benchmarks import (
    BENCHMARK_SYMBOL,
    RiskyLeg,
    beats,
    exposure_matched_metrics,
    risky_leg,
)
from allocator.backtest.engine import COMPARED, backtest_sessions
from allocator.backtest.prices import PriceTable
from allocator.backtest.schedule import ConfigSchedule
from allocator.exceptions import ConfigValidationError
from allocator.strategy.config import PARAMETER_NAMES, TradingConfig

#: The SPY + cash mix at the point's own exposure: its figures, and whether the point beats it
#: on both a higher Sharpe and a shallower maximum drawdown (NaN and False without SPY's bars).
SPY_MIX_COLUMNS = ("spy_mix_twr", "spy_mix_sharpe", "spy_mix_max_drawdown", "beats_spy_mix")
#: The metrics of each point, in the results table's column order: those of the backtest's
#: comparison table, the average idle-cash share and the turnover, then :data:`SPY_MIX_COLUMNS`.
METRICS = (*COMPARED, "avg_idle_cash", "turnover", *SPY_MIX_COLUMNS)


def parse_grid(grid: Mapping[str, Any] | str) -> dict[str, list]:
    """A grid from a mapping or JSON text: ``{"parameter": [value, ...], ...}``."""
    if isinstance(grid, str):
        try:
            grid = json.loads(grid)
        except json.JSONDecodeError as exc:
            raise ConfigValidationError(
                "grid", f"is not JSON ({exc.msg}); write e.g. '{{\"cash_deploy_rate\": [0, 0.5]}}'"
            ) from None
    if not isinstance(grid, Mapping) or not grid:
        raise ConfigValidationError("grid", "give a JSON object of parameter: [values, ...]")
    out: dict[str, list] = {}
    for name, values in grid.items():
        if name not in PARAMETER_NAMES:
            raise ConfigValidationError(
                name, f"unknown parameter in the grid; known: {', '.join(PARAMETER_NAMES)}"
            )
        values = list(values) if isinstance(values, list | tuple) else [values]
        if not values:
            raise ConfigValidationError(name, "the grid gives no value: list at least one")
        out[name] = values
    return out


def expand_grid(base: TradingConfig, grid: Mapping[str, Any] | str) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in order, each checked against ``base``.

    A combination that makes an invalid config (a value out of range, thresholds out of order)
    raises :class:`ConfigValidationError` naming the parameter and the combination.
    """
    grid = parse_grid(grid)
    names = list(grid)
    points = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]
    for point in points:
        try:
            base.with_changes(**_coerced(point))
        except ConfigValidationError as exc:
            raise ConfigValidationError(exc.field, f"{exc.reason} (grid point {point})") from None
    return points


def _coerced(point: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _value(k, v) for k, v in point.items()}


def _value(name: str, value: Any) -> Any:
    if name == "assets":
        return tuple(value)
    if name == "lookback_days":
        return int(value)
    if name == "sell_trigger":
        return str(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigValidationError(name, f"{value!r} is not a number")
    return float(value)


def evaluate(
    bars: pd.DataFrame,
    sessions: Sequence[dt.date],
    base: TradingConfig,
    point: Mapping[str, Any],
) -> dict[str, Any]:
    """Backtest ``base`` with ``point`` applied over ``sessions``: one row of the results.

    Only bars dated up to the last session are read, whatever else ``bars`` holds.
    """
    config = base.with_changes(**_coerced(point))
    known = bars[bars["date"] <= sessions[-1]]
    result = backtest_sessions(
        known, list(sessions), ConfigSchedule.constant(config), with_benchmarks=False
    )
    metrics = result.metrics
    row: dict[str, Any] = {k: _plain(v) for k, v in point.items()}
    row.update({k: _plain(metrics.get(k, math.nan)) for k in (*COMPARED, "turnover")})
    row["avg_idle_cash"] = float((result.daily["cash"] / result.daily["total_value"]).mean())
    leg = spy_leg_of(known, sessions)
    row.update(spy_mix_columns(leg, result.daily["deposit"].to_numpy(), metrics))
    return {k: row[k] for k in [*point, *METRICS]}


def spy_leg_of(bars: pd.DataFrame, sessions: Sequence[dt.date]) -> RiskyLeg | None:
    """SPY's :class:`~allocator.backtest.benchmarks.RiskyLeg` over ``sessions`` from long
    ``bars``; None when SPY has no close on one of them. Build it once per period."""
    spy = bars[bars["symbol"] == BENCHMARK_SYMBOL]
    if spy.empty:
        return None
    prices = PriceTable.from_bars(spy)
    if not prices.has_every_close(BENCHMARK_SYMBOL, list(sessions)):
        return None
    return risky_leg(prices, sessions, [BENCHMARK_SYMBOL])


def spy_mix_columns(
    leg: RiskyLeg | None, deposits: Sequence[float] | np.ndarray, strategy: Mapping[str, Any]
) -> dict[str, Any]:
    """:data:`SPY_MIX_COLUMNS` of a run with ``deposits`` (one per session of ``leg``) and
    ``strategy``'s metrics (``exposure``, ``sharpe``, ``max_drawdown``): NaN and False when
    ``leg`` is None or the exposure is NaN. About 0.25 ms over 5,000 sessions."""
    if leg is None or not math.isfinite(strategy["exposure"]):
        return dict.fromkeys(SPY_MIX_COLUMNS[:-1], math.nan) | {"beats_spy_mix": False}
    mix = exposure_matched_metrics(leg, deposits, strategy["exposure"])
    return {
        "spy_mix_twr": mix["twr"],
        "spy_mix_sharpe": mix["sharpe"],
        "spy_mix_max_drawdown": mix["max_drawdown"],
        "beats_spy_mix": beats(strategy, mix),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return ",".join(map(str, value))
    if hasattr(value, "item"):
        return value.item()
    return value


def results_table(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> pd.DataFrame:
    """The rows as one table: the grid's parameters first, then every metric."""
    frame = pd.DataFrame(list(rows))
    return frame.reindex(columns=[*names, *METRICS])


def pivot_metric(table: pd.DataFrame, rows: str, columns: str, metric: str) -> pd.DataFrame:
    """``metric`` by two of the grid's parameters, averaged over the others (for a heatmap)."""
    for name in (rows, columns, metric):
        if name not in table.columns:
            raise ConfigValidationError(name, f"is not a column of the results: {list(table)}")
    return table.pivot_table(index=rows, columns=columns, values=metric, aggfunc="mean")


def best_rows(table: pd.DataFrame, metric: str = "sharpe", n: int = 10) -> pd.DataFrame:
    """The ``n`` rows with the highest ``metric``."""
    return table.sort_values(metric, ascending=False).head(n)
