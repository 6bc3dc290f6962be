"""Choosing the product default honestly: an objective fixed in advance, in-sample only.

The study (``notebooks/study.ipynb``, run by ``allocator run study``) sweeps a grid over an
in-sample period, picks one config with :func:`choose`, and only then backtests it over a later,
out-of-sample period beside the benchmarks and the ``seed`` preset, where :func:`target_check`
says whether it met the target set before the study.

**The objective** (fixed before any out-of-sample number was computed): among the grid's configs
whose in-sample average exposure is at least ``min_exposure`` (50 %: the capital must be
invested) and whose in-sample maximum drawdown is no deeper than ``drawdown_share`` (⅔) of
all-SPY's over the same period (with the same deposits), take the highest Sharpe ratio; ties go
to the higher exposure, then to the grid's order.

**The target** (out of sample): average exposure ≥ 50 %, maximum drawdown at most ⅔ of
all-SPY's, Sharpe ≥ 0.8 × all-SPY's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from allocator.exceptions import BacktestError

MIN_EXPOSURE = 0.5
DRAWDOWN_SHARE = 2.0 / 3.0
SHARPE_SHARE = 0.8


@dataclass(frozen=True)
class Choice:
    """The config the objective chose, its in-sample row and how many configs were eligible."""

    overrides: dict[str, Any]
    row: dict[str, Any]
    eligible: int
    candidates: int


def eligible_rows(
    table: pd.DataFrame,
    benchmark_max_drawdown: float,
    *,
    min_exposure: float = MIN_EXPOSURE,
    drawdown_share: float = DRAWDOWN_SHARE,
) -> pd.Series:
    """True for each row meeting the objective's two constraints (drawdowns are negative)."""
    floor = drawdown_share * benchmark_max_drawdown
    return (table["exposure"] >= min_exposure) & (table["max_drawdown"] >= floor)


def choose(
    table: pd.DataFrame,
    parameters: Sequence[str],
    benchmark_max_drawdown: float,
    *,
    min_exposure: float = MIN_EXPOSURE,
    drawdown_share: float = DRAWDOWN_SHARE,
) -> Choice:
    """The objective's pick (module doc) from a sweep's results table."""
    ok = eligible_rows(
        table, benchmark_max_drawdown, min_exposure=min_exposure, drawdown_share=drawdown_share
    )
    if not ok.any():
        raise BacktestError(
            f"no config of the {len(table)} in the grid has exposure >= {min_exposure:.0%} and a "
            f"drawdown within {drawdown_share:.2f} x the benchmark's "
            f"({benchmark_max_drawdown:.1%}): widen the grid"
        )
    ranked = table[ok].assign(_order=range(int(ok.sum())))
    ranked = ranked.sort_values(["sharpe", "exposure", "_order"], ascending=[False, False, True])
    row = ranked.iloc[0].drop("_order").to_dict()
    overrides = {name: _plain(row[name]) for name in parameters}
    return Choice(overrides, row, int(ok.sum()), len(table))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def target_check(
    strategy: Mapping[str, float],
    benchmark: Mapping[str, float],
    *,
    min_exposure: float = MIN_EXPOSURE,
    drawdown_share: float = DRAWDOWN_SHARE,
    sharpe_share: float = SHARPE_SHARE,
) -> pd.DataFrame:
    """The out-of-sample target, one row per condition: the figure, the bound and whether met."""
    rows = [
        ("average exposure", strategy["exposure"], ">=", min_exposure),
        (
            "max drawdown",
            strategy["max_drawdown"],
            ">=",
            drawdown_share * benchmark["max_drawdown"],
        ),
        ("Sharpe ratio", strategy["sharpe"], ">=", sharpe_share * benchmark["sharpe"]),
    ]
    return pd.DataFrame(
        [
            (name, value, f"{op} {bound:.4f}", bool(value >= bound))
            for name, value, op, bound in rows
        ],
        columns=["condition", "value", "bound", "met"],
    )
