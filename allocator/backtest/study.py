"""Choosing the product default honestly: choices recorded before their test, in-sample only.

The study (``notebooks/study.ipynb``, run by ``allocator run study``) first records its objective,
grid and design with :func:`preregistration` (a canonical JSON record and its SHA-256), then
sweeps the grid over an in-sample period and picks one config with :func:`choose`, and only then
backtests it over a later, out-of-sample period beside the benchmarks and the presets, where
:func:`target_check` says whether it met the target.

**The objective** (in sample): among the grid's configs whose in-sample average exposure is at
least ``min_exposure`` (50 %: the capital must be invested) and whose in-sample maximum drawdown
is no deeper than ``drawdown_share`` (⅔) of all-SPY's over the same period (with the same
deposits), take the highest Sharpe ratio; ties go to the higher exposure, then to the grid's
order.

**The target** (out of sample): the chosen config beats the SPY + cash mix at its own average
exposure (:data:`~allocator.backtest.benchmarks.SPY_MIX`, same deposits, rebalanced daily) on
both counts: a higher Sharpe ratio and a shallower maximum drawdown. A strategy that only holds
less stock than all-SPY does not meet it. The earlier target (exposure ≥ 50 %, drawdown at most
⅔ of all-SPY's, Sharpe ≥ 0.8 × all-SPY's) is still checked, as information only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import pandas as pd

from allocator.backtest.benchmarks import SPY_MIX
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


#: The target's columns: the figure, the bound it is held to, whether it is met, and whether
#: the verdict depends on it (False: shown as information only).
TARGET_COLUMNS = ["condition", "value", "bound", "met", "decides"]


def target_check(
    strategy: Mapping[str, float],
    spy_mix: Mapping[str, float],
    all_spy: Mapping[str, float],
    *,
    min_exposure: float = MIN_EXPOSURE,
    drawdown_share: float = DRAWDOWN_SHARE,
    sharpe_share: float = SHARPE_SHARE,
) -> pd.DataFrame:
    """The out-of-sample target (module doc), one row per condition (:data:`TARGET_COLUMNS`):
    the two that decide, against the SPY + cash mix at the strategy's exposure, then the earlier
    target's three against all-SPY, for information."""
    mix, info = "the SPY + cash mix's at the same exposure", "(information)"
    rows = [
        (f"Sharpe ratio above {mix}", "sharpe", spy_mix["sharpe"], ">", True),
        (f"max drawdown shallower than {mix}", "max_drawdown", spy_mix["max_drawdown"], ">", True),
        (f"average exposure {info}", "exposure", min_exposure, ">=", False),
        (
            f"max drawdown within {drawdown_share:.2f} x all-SPY's {info}",
            "max_drawdown",
            drawdown_share * all_spy["max_drawdown"],
            ">=",
            False,
        ),
        (
            f"Sharpe ratio at least {sharpe_share:.2f} x all-SPY's {info}",
            "sharpe",
            sharpe_share * all_spy["sharpe"],
            ">=",
            False,
        ),
    ]
    out = []
    for name, key, bound, op, decides in rows:
        value = strategy[key]
        met = value > bound if op == ">" else value >= bound
        out.append((name, value, f"{op} {bound:.4f}", bool(met), decides))
    return pd.DataFrame(out, columns=TARGET_COLUMNS)


def target_met(check: pd.DataFrame) -> bool:
    """The verdict of a :func:`target_check`: every deciding condition met."""
    return bool(check.loc[check["decides"], "met"].all())


def objective_record(
    *,
    min_exposure: float = MIN_EXPOSURE,
    drawdown_share: float = DRAWDOWN_SHARE,
    sharpe_share: float = SHARPE_SHARE,
) -> dict[str, Any]:
    """The objective and the target (module doc) as a record to register before the study."""
    return {
        "choose": "highest in-sample Sharpe; ties: higher exposure, then grid order",
        "min_exposure": min_exposure,
        "drawdown_share_of_all_spy": drawdown_share,
        "target": (
            "out of sample, beat the SPY + cash mix at the chosen config's own average exposure "
            f"(benchmark {SPY_MIX!r}) on Sharpe ratio (higher) and maximum drawdown (shallower)"
        ),
        "information_only": {
            "min_exposure": min_exposure,
            "drawdown_share_of_all_spy": drawdown_share,
            "sharpe_share_of_all_spy": sharpe_share,
        },
    }


class Preregistration(NamedTuple):
    """What a study records before its test: the record (plain JSON values) and the SHA-256 of
    its canonical JSON (:func:`canonical_json`)."""

    record: dict[str, Any]
    sha256: str


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: keys sorted, no spaces, UTF-8 text, no NaN or infinity."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"a preregistration holds plain JSON values only (text, numbers, true/false, null, "
            f"lists, objects with text keys; no NaN): {exc}"
        ) from None


def preregistration(
    objective: Mapping[str, Any], grid: Mapping[str, Any], design: Mapping[str, Any]
) -> Preregistration:
    """The record ``{"objective", "grid", "design"}`` and its SHA-256, to glue (and so archive)
    before any figure it is meant to judge is computed.

    The record is returned as its canonical JSON reads back (tuples become lists), so what is
    shown is exactly what was hashed; the hash is that of the canonical JSON's UTF-8 bytes, and
    the same choices give the same hash whatever the order of their keys.
    """
    text = canonical_json({"objective": objective, "grid": grid, "design": design})
    return Preregistration(json.loads(text), hashlib.sha256(text.encode("utf-8")).hexdigest())
