"""The walk-forward study (``notebooks/walkforward.ipynb``): does monthly tuning help?

Backtests over the same period, with the same deposits: the product default tuned at every
month's first session with past data only (``config_source="walk_forward"``, the tune job's own
step, with a tuning design of :data:`allocator.tuning.acceptance.DESIGNS`), the static
``default`` preset, and the ``seed`` preset; all-SPY and the exposure-matched mixes beside them.

:func:`study_plan` is what the study commits to before any figure is computed (the notebook
glues it first); :func:`target_check` is the verdict, fixed in that plan:

- the tuned run's Sharpe ratio is at least the static default's;
- its maximum drawdown is no deeper than the static default's plus 2 points;
- the accepted changes persist: over the 12 months after each, the mean ``J`` gain against
  the config it replaced is above 0, and more than half of them are positive.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import pandas as pd

from allocator.backtest.engine import BacktestResult
from allocator.backtest.study import Preregistration, preregistration
from allocator.notebook.formats import METRIC_FORMATS
from allocator.research.backtest_job import run_backtest_job
from allocator.research.walkforward import AFTER_MONTHS, persistence_summary
from allocator.tuning.acceptance import DEFAULT_DESIGN, design_named

SHOWN = ["twr", "cagr", "sharpe", "max_drawdown", "exposure", "final_value"]
TUNED, STATIC = "monthly tuning (walk-forward)", "preset default (static)"
#: Points of drawdown the tuned run may lose against the static default.
DRAWDOWN_SLACK = 0.02


@dataclass(frozen=True)
class WalkForwardStudy:
    """The comparison table, the tuned run, its persistence figures, and how long it took."""

    table: pd.DataFrame
    tuned: BacktestResult
    seconds: float
    workers: int
    design: str

    def changes(self) -> pd.DataFrame:
        """Each accepted change: the date, the change, its ``J`` gain in the window the tuner
        saw and over the months after (NaN when those months pass the end of the period)."""
        return self.tuned.persistence

    def persistence(self) -> dict[str, float]:
        return persistence_summary(self.tuned.persistence)

    def target(self) -> pd.DataFrame:
        return target_check(self.table, self.persistence())

    @property
    def target_met(self) -> bool:
        return bool(self.target()["met"].all())

    def summary_line(self) -> str:
        p = self.persistence()
        return (
            f"walk-forward ({self.design}): {len(self.tuned.tuning_log)} months tuned, "
            f"{p['changes']} changes accepted, in {self.seconds:.1f} s"
            + (f" on {self.workers} Dask worker(s)" if self.workers else " in this process")
        )


def study_plan(start: str, end: str, design: str = DEFAULT_DESIGN) -> Preregistration:
    """What the study is judged on, before any figure: the objective and target, the candidates
    (the grid), and the design (period, base, tuning design), with the record's SHA-256."""
    objective = {
        "J": "Sharpe - (min_sharpe_target / tolerance) x max(0, |max drawdown| - tolerance), "
        "tolerance = max_drawdown_tolerance / 100",
        "target": {
            "sharpe": "tuned >= static default",
            "max_drawdown": f"tuned >= static default - {DRAWDOWN_SLACK:g}",
            "persistence": f"mean J gain over the {AFTER_MONTHS} months after each accepted "
            "change > 0, and more than half of them positive",
        },
    }
    grid = {
        "candidates": "every tunable parameter one step up and down, and the design "
        "document's recommendations (allocator.tuning.recommend)"
    }
    plan = {
        "study": "walk-forward monthly tuning",
        "period": [str(start), str(end)],
        "base": "preset default",
        "tuning": design_named(design).to_dict(),
    }
    return preregistration(objective, grid, plan)


def plan_for_display(plan: Preregistration) -> pd.DataFrame:
    """The plan as a two-column table (nested entries flattened to ``a.b``)."""
    rows = []

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        else:
            rows.append((prefix, "—" if value is None else str(value)))

    walk("", plan.record)
    rows.append(("SHA-256", plan.sha256))
    return pd.DataFrame(rows, columns=["choice", "value"]).set_index("choice")


def target_check(table: pd.DataFrame, persistence: dict[str, float]) -> pd.DataFrame:
    """The plan's target, one row per condition: the figure, the bound and whether met."""
    tuned, static = table.loc[TUNED], table.loc[STATIC]
    rows = [
        ("Sharpe ratio", tuned["sharpe"], ">=", static["sharpe"]),
        ("max drawdown", tuned["max_drawdown"], ">=", static["max_drawdown"] - DRAWDOWN_SLACK),
        ("mean J gain after a change", persistence["mean_gain_after"], ">", 0.0),
        ("share of changes still positive", persistence["share_positive_after"], ">", 0.5),
    ]
    return pd.DataFrame(
        [
            (
                name,
                value,
                f"{op} {bound:.4f}",
                bool(value >= bound if op == ">=" else value > bound),
            )
            for name, value, op, bound in rows
        ],
        columns=["condition", "value", "bound", "met"],
    )


def run_walk_forward_study(
    start: str,
    end: str,
    *,
    data_source: str = "csv",
    csv_dir: str | None = None,
    workers: int = 0,
    design: str = DEFAULT_DESIGN,
) -> WalkForwardStudy:
    """The backtests and the table (module doc); ``workers`` > 0 replays on local Dask."""
    source = {"data_source": data_source, "csv_dir": csv_dir}
    clock = time.perf_counter()
    tuned = run_backtest_job(
        start, end, config_source="walk_forward", workers=workers, design=design, **source
    )
    seconds = time.perf_counter() - clock
    rows = {TUNED: tuned.comparison.loc["strategy", SHOWN]}
    for name in ("default", "seed"):
        run = run_backtest_job(start, end, config_source=name, **source)
        rows[f"preset {name} (static)"] = run.comparison.loc["strategy", SHOWN]
    for name in tuned.comparison.index.drop(["strategy", "cash"], errors="ignore"):
        rows[name] = tuned.comparison.loc[name, SHOWN]
    table = pd.DataFrame(rows).T
    table["config_changes"] = [len(tuned.config_changes)] + [0] * (len(table) - 1)
    return WalkForwardStudy(table, tuned, seconds, workers, design)


def verdict_sentence(study: WalkForwardStudy) -> str:
    """One sentence: the target met, or missed with the conditions that failed."""
    target = study.target()
    if study.target_met:
        return f"Target met by the {study.design} design: every condition of the plan holds."
    missed = "; ".join(
        f"{r.condition} {r.value:.4f} (needs {r.bound})" for r in target.itertuples() if not r.met
    )
    return f"Target missed by the {study.design} design: {missed}."


def target_for_display(study: WalkForwardStudy) -> pd.DataFrame:
    target = study.target()
    return target.assign(
        value=target["value"].map(lambda v: "—" if v != v else f"{v:.4f}"),
        met=target["met"].map({True: "yes", False: "no"}),
    ).set_index("condition")


def comparison_for_display(study: WalkForwardStudy) -> pd.DataFrame:
    """The comparison table with every number in its unit."""
    table = study.table
    shown = {k: v for k, v in METRIC_FORMATS.items() if k in table.columns}
    out = pd.DataFrame({label: table[k].map(fmt) for k, (label, fmt) in shown.items()})
    out["config changes"] = table["config_changes"].map(lambda n: f"{int(n):,}")
    return out


def persistence_for_display(study: WalkForwardStudy) -> pd.DataFrame:
    p = study.persistence()
    rows = [
        ("changes accepted", f"{p['changes']:,}"),
        (f"measured over the {AFTER_MONTHS} months after", f"{p['measured']:,}"),
        ("mean J gain in the window the tuner saw", _signed(p["mean_gain_seen"])),
        (f"mean J gain over the {AFTER_MONTHS} months after", _signed(p["mean_gain_after"])),
        ("share still positive after", _share(p["share_positive_after"])),
        ("rank correlation, seen vs after", _signed(p["rank_correlation"])),
    ]
    return pd.DataFrame(rows, columns=["figure", "value"]).set_index("figure")


def changes_for_display(study: WalkForwardStudy) -> pd.DataFrame:
    table = study.changes()
    return table.assign(
        date=table["date"].map(str),
        gain_seen=table["gain_seen"].map(_signed),
        gain_after=table["gain_after"].map(_signed),
    ).rename(columns={"gain_seen": "J gain seen", "gain_after": "J gain after"})


def json_safe(value):
    """``value`` (dicts, lists, numbers) with NaN and infinities as None: a glued scrap must be
    valid JSON (Jupyter warns on every NaN it has to send)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value.item() if hasattr(value, "item") else value


def _signed(value: float) -> str:
    return "—" if value != value else f"{value:+.3f}"


def _share(value: float) -> str:
    return "—" if value != value else f"{value:.0%}"
