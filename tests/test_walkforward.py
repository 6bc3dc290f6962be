"""The walk-forward study: persistence of accepted changes, its target, and the plan recorded
before any figure (in the real notebook, through ``allocator run walkforward``)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from allocator.backtest.schedule import ConfigSchedule
from allocator.backtest.study import canonical_json, preregistration
from allocator.jobs import walkforward
from allocator.research.monthly import reference_replay
from allocator.research.replay import load_bars_for
from allocator.research.walkforward import AFTER_MONTHS, months_after, persistence_summary
from allocator.shell import calendar
from allocator.strategy.config import preset
from allocator.tuning.acceptance import DESIGNS, curve_metrics

START, END = "2021-01-04", "2024-06-28"


@pytest.fixture(scope="module")
def tuned():
    """A legacy walk-forward on the synthetic market (it accepts changes, some measurable)."""
    from allocator.research.backtest_job import run_backtest_job

    return run_backtest_job(
        START, END, config_source="walk_forward", data_source="synthetic", design="legacy"
    )


def test_every_accepted_change_is_measured_over_the_months_after_it(tuned):
    table = tuned.persistence
    changes = [m for m in tuned.tuning_log if m.decision.new_config is not None]
    assert len(table) == len(changes) == len(tuned.config_changes) > 0
    assert list(table["date"]) == [m.tuning_date for m in changes]
    end = dt.date.fromisoformat(END)
    for row in table.itertuples():
        after = calendar.previous_session(months_after(row.date, AFTER_MONTHS))
        assert np.isnan(row.gain_after) == (after > end)
    assert table["gain_after"].notna().any()
    summary = persistence_summary(table)
    measured = table["gain_after"].dropna()
    assert summary["changes"] == len(table) and summary["measured"] == len(measured)
    assert summary["mean_gain_after"] == pytest.approx(measured.mean())
    assert summary["share_positive_after"] == pytest.approx((measured > 0).mean())


def test_a_change_is_judged_by_the_reference_engine_the_same_way(tuned):
    """The gain after a change, recomputed with the production engine from that morning's book
    (rebuilt by replaying the tuned run's own configs), equals the kernel's figure."""
    row = tuned.persistence.dropna().iloc[0]
    month = next(m for m in tuned.tuning_log if m.tuning_date == row.date)
    changes = month.decision.changes
    new = month.decision.new_config
    old = new.with_changes(**{k: v[0] for k, v in changes.items()})
    schedule = ConfigSchedule.constant(preset("default"))
    bars = load_bars_for(schedule, dt.date(2019, 1, 2), dt.date.fromisoformat(END), "synthetic")
    start = dt.date.fromisoformat(START)
    sessions = calendar.sessions_between(start, calendar.previous_session(row.date))
    from allocator.backtest.engine import simulate
    from allocator.backtest.prices import PriceTable
    from allocator.backtest.schedule import ScheduledConfig
    from allocator.portfolio.session import StrategyState
    from allocator.strategy.regime import regime_label

    versions = [ScheduledConfig(dt.date.min, preset("default"))]
    versions += [ScheduledConfig(day, config) for day, config in tuned.config_changes]
    so_far = simulate(PriceTable.from_bars(bars), sessions, ConfigSchedule(versions, "tuned"))
    label = regime_label(float(so_far.signals["regime"].iloc[-1]), old)
    morning = StrategyState(so_far.book, label)
    after = calendar.sessions_between(
        row.date, calendar.previous_session(months_after(row.date, AFTER_MONTHS))
    )
    point = {k: v[1] for k, v in changes.items()}
    current, changed = reference_replay(bars)([{}, point], after, old, morning)
    gain = curve_metrics(changed, old)["objective"] - curve_metrics(current, old)["objective"]
    assert gain == pytest.approx(row.gain_after, abs=1e-12)


def test_the_target_needs_sharpe_drawdown_and_persistence():
    table = pd.DataFrame(
        {"sharpe": [0.64, 0.63], "max_drawdown": [-0.20, -0.19]},
        index=[walkforward.TUNED, walkforward.STATIC],
    )
    persisting = {"mean_gain_after": 0.01, "share_positive_after": 0.6}
    assert walkforward.target_check(table, persisting)["met"].all()
    check = walkforward.target_check(table, {**persisting, "share_positive_after": 0.5})
    assert list(check["met"]) == [True, True, True, False]
    nothing = {"mean_gain_after": np.nan, "share_positive_after": np.nan}
    assert list(walkforward.target_check(table, nothing)["met"]) == [True, True, False, False]
    deeper = table.assign(max_drawdown=[-0.215, -0.19])
    assert not walkforward.target_check(deeper, persisting)["met"].iloc[1]


def test_the_plan_names_the_design_and_its_hash_covers_it():
    plan = walkforward.study_plan("2006-01-03", "2024-12-31", "five_years_ttest")
    assert plan.record["design"]["tuning"] == json.loads(
        canonical_json(DESIGNS["five_years_ttest"].to_dict())
    )
    again = preregistration(plan.record["objective"], plan.record["grid"], plan.record["design"])
    assert again.sha256 == plan.sha256
    other = walkforward.study_plan("2006-01-03", "2024-12-31", "legacy")
    assert other.sha256 != plan.sha256


@pytest.mark.notebook
def test_walkforward_notebook_glues_its_plan_before_any_figure(tmp_path, monkeypatch, capfd):
    from allocator.cli.commands import main
    from allocator.notebook.sidecar import read_scraps

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    monkeypatch.setenv("ALLOCATOR_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("ALLOCATOR_REPORTS_DIR", str(tmp_path / "reports"))
    assert main(["db", "upgrade"]) == 0
    args = ["-p", "start", "2024-01-02", "-p", "end", "2024-06-28"]
    args += ["-p", "data_source", "synthetic", "-p", "design", "legacy"]
    code = main(["run", "walkforward", *args])
    assert code == 0, capfd.readouterr().err
    (artifact,) = sorted((tmp_path / "runs").rglob("walkforward_*.ipynb"))
    glued = read_scraps(artifact)
    plan = walkforward.study_plan("2024-01-02", "2024-06-28", "legacy")
    assert glued["plan"] == plan.record and glued["plan_sha256"] == plan.sha256
    comparison = glued["comparison"].set_index("run")
    assert {walkforward.TUNED, walkforward.STATIC, "SPY + cash at exposure"} <= set(
        comparison.index
    )
    assert {r["condition"] for r in glued["target"]} >= {"Sharpe ratio", "max drawdown"}
    assert set(glued["persistence"]) >= {"mean_gain_after", "share_positive_after"}
    # The plan's cell ran (and was saved) before the cell that computes the study.
    cells = [c for c in json.loads(artifact.read_text())["cells"] if c["cell_type"] == "code"]
    order = {
        key: next(c["execution_count"] for c in cells if key in "".join(c["source"]))
        for key in ('sb.glue("plan"', "run_walk_forward_study(")
    }
    assert order['sb.glue("plan"'] < order["run_walk_forward_study("]
    from tests.reportcheck import report_problems

    assert report_problems(tmp_path / "reports") == []
