"""The strategy study: record the choices, choose in-sample, then report out of sample.

``notebooks/study.ipynb`` runs its three phases in this order, one cell each, so the archived
notebook shows (and its scraps keep) each phase's record before the next phase computes
anything (the objective and the target are defined in :mod:`allocator.backtest.study`):

1. :func:`study_plan`: the objective, the grid and the design (periods, base preset, data
   source, what is compared) as a preregistration record and its SHA-256;
2. :func:`run_in_sample`: sweep the plan's grid over its in-sample period on its base preset
   (:func:`~allocator.research.cluster.run_sweep`, Dask), backtest the base preset there for
   all-SPY's drawdown, and choose with the plan's objective, from in-sample figures only;
3. :func:`run_out_of_sample`: backtest the choice and the presets over the plan's out-of-sample
   period beside the benchmarks (the exposure-matched mixes at the choice's own exposure), and
   check the target.

The later phases read their periods, grid and objective from the plan's record, so what runs is
what was registered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

from allocator.backtest.benchmarks import EXPOSURE_MATCHED, SPY_MIX
from allocator.backtest.engine import BacktestResult
from allocator.backtest.study import (
    Choice,
    Preregistration,
    choose,
    objective_record,
    preregistration,
    target_check,
    target_met,
)
from allocator.backtest.sweep import parse_grid
from allocator.exceptions import BacktestError
from allocator.notebook.formats import versus_mix
from allocator.research.backtest_job import run_backtest_job
from allocator.research.cluster import SweepResult, run_sweep
from allocator.strategy.config import preset

#: The columns of the study's tables.
SHOWN = ["twr", "cagr", "sharpe", "max_drawdown", "exposure", "final_value"]
#: The study's base preset (its grid changes it) and the presets compared out of sample.
BASE = "seed"
PRESETS = ("default", "seed")
CHOSEN = "chosen (in-sample objective)"


def study_plan(
    grid: dict | str,
    in_start: str,
    in_end: str,
    out_start: str,
    out_end: str,
    *,
    data_source: str = "csv",
) -> Preregistration:
    """The study's choices, recorded before its test; ``in_end`` must be before ``out_start``."""
    days = [dt.date.fromisoformat(str(day)) for day in (in_start, in_end, out_start, out_end)]
    if days[1] >= days[2]:
        raise ValueError(f"in-sample end {in_end} must be before out-of-sample start {out_start}")
    periods = dict(zip(("in_start", "in_end", "out_start", "out_end"), map(str, days), strict=True))
    config = preset(BASE)
    design = {
        "in_sample": [periods["in_start"], periods["in_end"]],
        "out_of_sample": [periods["out_start"], periods["out_end"]],
        "base_preset": BASE,
        "assets": list(config.assets),
        "daily_capital": config.daily_capital,
        "data_source": data_source,
        "compared_out_of_sample": [*(f"preset {name}" for name in PRESETS), "benchmarks"],
    }
    return preregistration(objective_record(), parse_grid(grid), design)


@dataclass(frozen=True)
class InSample:
    """The in-sample sweep, the base preset's benchmarks there, the objective's choice, and
    whether the choice beat the SPY + cash mix at its own exposure in sample (a sentence)."""

    sweep: SweepResult
    benchmarks: pd.DataFrame
    choice: Choice
    versus_mix: str


def run_in_sample(
    plan: Preregistration,
    *,
    csv_dir: str | None = None,
    scheduler: str | None = None,
    workers: int = 2,
    progress: bool = False,
) -> InSample:
    """Phase 2 (module doc): the sweep and the choice, from the plan's record only (``workers``
    0: the sweep runs in this process, without Dask)."""
    record, design = plan.record, plan.record["design"]
    start, end = design["in_sample"]
    source: dict[str, Any] = {"data_source": design["data_source"], "csv_dir": csv_dir}
    sweep = run_sweep(
        record["grid"],
        start,
        end,
        base=design["base_preset"],
        scheduler=scheduler,
        workers=workers,
        serial=workers == 0,
        progress=progress,
        **source,
    )
    reference = run_backtest_job(start, end, config_source=design["base_preset"], **source)
    objective = record["objective"]
    choice = choose(
        sweep.table,
        list(record["grid"]),
        reference.comparison.loc["all SPY", "max_drawdown"],
        min_exposure=objective["min_exposure"],
        drawdown_share=objective["drawdown_share_of_all_spy"],
    )
    # the mixes of this run are matched to the base preset, not to the choice: left out here
    benchmarks = reference.comparison.drop(index=list(EXPOSURE_MATCHED), errors="ignore")
    benchmarks = benchmarks.rename(index={"strategy": f"preset {design['base_preset']}"})
    row = choice.row
    mix = {"sharpe": row["spy_mix_sharpe"], "max_drawdown": row["spy_mix_max_drawdown"]}
    sentence = versus_mix(
        "In sample, the chosen config", row, mix | {"matched_exposure": row["exposure"]}
    )
    return InSample(sweep, benchmarks[SHOWN], choice, sentence)


@dataclass(frozen=True)
class OutOfSample:
    """The out-of-sample table, the target check, its verdict in one sentence, the chosen run."""

    table: pd.DataFrame
    target: pd.DataFrame
    verdict: str
    chosen_run: BacktestResult

    @property
    def target_met(self) -> bool:
        return target_met(self.target)


def run_out_of_sample(
    plan: Preregistration, choice: Choice, *, csv_dir: str | None = None
) -> OutOfSample:
    """Phase 3 (module doc): the choice, the presets and the benchmarks over the plan's
    out-of-sample period, and the target."""
    design = plan.record["design"]
    start, end = design["out_of_sample"]
    source: dict[str, Any] = {"data_source": design["data_source"], "csv_dir": csv_dir}
    base = design["base_preset"]
    chosen = run_backtest_job(start, end, config_source=base, overrides=choice.overrides, **source)
    comparison = chosen.comparison
    if SPY_MIX not in comparison.index:
        raise BacktestError(
            f"no {SPY_MIX} benchmark out of sample: the target needs SPY's bars over "
            f"{start}..{end}; backfill them"
        )
    others = comparison.drop(index="strategy")
    mixes = others[others.index.isin(EXPOSURE_MATCHED)]
    rows = {CHOSEN: comparison.loc["strategy"], **dict(mixes.iterrows())}
    for name in PRESETS:
        run = run_backtest_job(start, end, config_source=name, **source)
        rows[f"preset {name}"] = run.comparison.loc["strategy"]
    rows.update(dict(others.drop(index=mixes.index).iterrows()))
    info = plan.record["objective"]["information_only"]
    target = target_check(
        comparison.loc["strategy"],
        comparison.loc[SPY_MIX],
        comparison.loc["all SPY"],
        min_exposure=info["min_exposure"],
        drawdown_share=info["drawdown_share_of_all_spy"],
        sharpe_share=info["sharpe_share_of_all_spy"],
    )
    prefix = "Target met" if target_met(target) else "Target missed"
    sentence = versus_mix("the chosen config", comparison.loc["strategy"], comparison.loc[SPY_MIX])
    return OutOfSample(pd.DataFrame(rows).T[SHOWN], target, f"{prefix}: {sentence}", chosen)


@dataclass(frozen=True)
class StudyResult:
    """The three phases' results."""

    plan: Preregistration
    in_sample: InSample
    out_of_sample: OutOfSample


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
    """The three phases (module doc) in one call."""
    plan = study_plan(grid, in_start, in_end, out_start, out_end, data_source=data_source)
    found = run_in_sample(
        plan, csv_dir=csv_dir, scheduler=scheduler, workers=workers, progress=progress
    )
    return StudyResult(plan, found, run_out_of_sample(plan, found.choice, csv_dir=csv_dir))
