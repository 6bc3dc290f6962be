"""The strategy study: choose the product default in-sample, then report it out of sample.

:func:`run_study` does the three steps of ``notebooks/study.ipynb`` (the objective and the target
are defined in :mod:`allocator.backtest.study`):

1. sweep the grid over the in-sample period on the ``seed`` preset
   (:func:`~allocator.research.cluster.run_sweep`, Dask), and backtest the ``seed`` preset there
   for all-SPY's drawdown;
2. choose with the objective, from in-sample figures only;
3. backtest the choice, the ``seed`` preset and the ``default`` preset over the out-of-sample
   period beside the benchmarks, and check the target.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from allocator.backtest.engine import BacktestResult
from allocator.backtest.study import Choice, choose, target_check
from allocator.backtest.sweep import parse_grid
from allocator.research.backtest_job import run_backtest_job
from allocator.research.cluster import SweepResult, run_sweep

#: The columns of the study's tables.
SHOWN = ["twr", "cagr", "sharpe", "max_drawdown", "exposure", "final_value"]


@dataclass(frozen=True)
class StudyResult:
    """Both periods' figures, the choice and the target check."""

    in_sample: SweepResult
    in_sample_benchmarks: pd.DataFrame
    choice: Choice
    out_of_sample: pd.DataFrame
    target: pd.DataFrame
    chosen_run: BacktestResult

    @property
    def target_met(self) -> bool:
        return bool(self.target["met"].all())


def run_study(
    grid: dict | str,
    in_start: str,
    in_end: str,
    out_start: str,
    out_end: str,
    *,
    data_source: str = "csv",
    csv_dir: str | None = None,
    scheduler: str | None = None,
    workers: int = 2,
    progress: bool = False,
) -> StudyResult:
    """The study's three steps (module doc); ``in_end`` must be before ``out_start``."""
    if dt.date.fromisoformat(str(in_end)) >= dt.date.fromisoformat(str(out_start)):
        raise ValueError(f"in-sample end {in_end} must be before out-of-sample start {out_start}")
    source: dict[str, Any] = {"data_source": data_source, "csv_dir": csv_dir}
    sweep = run_sweep(
        grid,
        in_start,
        in_end,
        base="seed",
        scheduler=scheduler,
        workers=workers,
        progress=progress,
        **source,
    )
    reference = run_backtest_job(in_start, in_end, config_source="seed", **source)
    choice = choose(
        sweep.table, list(parse_grid(grid)), reference.comparison.loc["all SPY", "max_drawdown"]
    )
    chosen = run_backtest_job(
        out_start, out_end, config_source="seed", overrides=choice.overrides, **source
    )
    rows = {"chosen (in-sample objective)": chosen.comparison.loc["strategy"]}
    for name in ("default", "seed"):
        run = run_backtest_job(out_start, out_end, config_source=name, **source)
        rows[f"preset {name}"] = run.comparison.loc["strategy"]
    for name, row in chosen.comparison.drop(index="strategy").iterrows():
        rows[name] = row
    table = pd.DataFrame(rows).T[SHOWN]
    target = target_check(chosen.comparison.loc["strategy"], chosen.comparison.loc["all SPY"])
    return StudyResult(sweep, reference.comparison[SHOWN], choice, table, target, chosen)
