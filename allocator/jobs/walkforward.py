"""The walk-forward study (``notebooks/walkforward.ipynb``): does monthly tuning help?

Three backtests over the same period, with the same deposits: the product default tuned at every
month's first session with past data only (``config_source="walk_forward"``, the tune job's own
step), the static ``default`` preset, and the ``seed`` preset; all-SPY beside them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from allocator.backtest.engine import BacktestResult
from allocator.research.backtest_job import run_backtest_job

SHOWN = ["twr", "cagr", "sharpe", "max_drawdown", "exposure", "final_value"]


@dataclass(frozen=True)
class WalkForwardStudy:
    """The comparison table, the tuned run, and how long the tuned run took."""

    table: pd.DataFrame
    tuned: BacktestResult
    seconds: float
    workers: int

    def changes(self) -> pd.DataFrame:
        """Each month the tuning changed the config: the date and the accepted candidate."""
        rows = [
            (m.tuning_date, m.decision.accepted, m.decision.reason)
            for m in self.tuned.tuning_log
            if m.decision.new_config is not None
        ]
        return pd.DataFrame(rows, columns=["date", "change", "reason"])


def run_walk_forward_study(
    start: str,
    end: str,
    *,
    data_source: str = "csv",
    csv_dir: str | None = None,
    workers: int = 2,
) -> WalkForwardStudy:
    """The three backtests and the table (module doc); ``workers`` 0 replays serially."""
    source = {"data_source": data_source, "csv_dir": csv_dir}
    clock = time.perf_counter()
    tuned = run_backtest_job(start, end, config_source="walk_forward", workers=workers, **source)
    seconds = time.perf_counter() - clock
    rows = {"monthly tuning (walk-forward)": tuned.comparison.loc["strategy", SHOWN]}
    for name in ("default", "seed"):
        run = run_backtest_job(start, end, config_source=name, **source)
        rows[f"preset {name} (static)"] = run.comparison.loc["strategy", SHOWN]
    rows["all SPY"] = tuned.comparison.loc["all SPY", SHOWN]
    table = pd.DataFrame(rows).T
    table["config_changes"] = [len(tuned.config_changes), 0, 0, 0]
    return WalkForwardStudy(table, tuned, seconds, workers)
