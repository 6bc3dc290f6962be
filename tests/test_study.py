"""The strategy study: its objective, its restated target, the record of its choices made
before their test, and its three phases in order on the synthetic market."""

from __future__ import annotations

import hashlib
import math

import pandas as pd
import pytest

from allocator.backtest.benchmarks import EQUAL_WEIGHT_MIX, SPY_MIX
from allocator.backtest.study import (
    canonical_json,
    choose,
    eligible_rows,
    objective_record,
    preregistration,
    target_check,
    target_met,
)
from allocator.exceptions import BacktestError
from allocator.jobs import study

TABLE = pd.DataFrame(
    {
        "cash_deploy_rate": [0.0, 0.05, 0.1, 0.2],
        "sharpe": [0.9, 0.5, 0.6, 0.7],
        "exposure": [0.05, 0.6, 0.7, 0.9],
        "max_drawdown": [-0.02, -0.20, -0.30, -0.45],
    }
)


def test_the_objective_takes_the_best_sharpe_within_the_constraints():
    # all-SPY's drawdown -0.5: the floor is -0.333; row 0 is too idle, row 3 too deep
    assert eligible_rows(TABLE, -0.5).tolist() == [False, True, True, False]
    choice = choose(TABLE, ["cash_deploy_rate"], -0.5)
    assert choice.overrides == {"cash_deploy_rate": 0.1}
    assert (choice.eligible, choice.candidates) == (2, 4)
    with pytest.raises(BacktestError, match="no config of the 4 in the grid"):
        choose(TABLE, ["cash_deploy_rate"], -0.1)


# The default preset out of sample, 2015-2024, its SPY + cash mix at 60.1 % and all-SPY.
DEFAULT = {"exposure": 0.601, "max_drawdown": -0.191, "sharpe": 0.66}
MIX = {"max_drawdown": -0.216, "sharpe": 0.68}
ALL_SPY = {"max_drawdown": -0.341, "sharpe": 0.68}


def test_the_target_is_to_beat_the_spy_mix_on_sharpe_and_drawdown():
    check = target_check(DEFAULT, MIX, ALL_SPY)
    assert list(check.columns) == ["condition", "value", "bound", "met", "decides"]
    assert check["decides"].tolist() == [True, True, False, False, False]
    # the earlier target is met (information), the mix's Sharpe is not beaten: missed
    assert check["met"].tolist() == [False, True, True, True, True]
    assert check.loc[0, "bound"] == "> 0.6800" and check.loc[0, "value"] == 0.66
    assert not target_met(check)
    better = {**DEFAULT, "sharpe": 0.70}
    assert target_met(target_check(better, MIX, ALL_SPY))
    deeper = {**better, "max_drawdown": -0.25}
    assert target_check(deeper, MIX, ALL_SPY)["met"].tolist()[:2] == [True, False]
    assert not target_met(target_check(deeper, MIX, ALL_SPY))
    level = {**better, "sharpe": 0.68}  # equal is not beating
    assert not target_met(target_check(level, MIX, ALL_SPY))
    idle = {"exposure": 0.0, "max_drawdown": 0.0, "sharpe": math.nan}
    assert not target_met(target_check(idle, MIX, ALL_SPY))


def test_the_preregistration_hashes_the_canonical_json_of_the_record():
    empty = preregistration({}, {}, {})
    assert empty.record == {"design": {}, "grid": {}, "objective": {}}
    assert empty.sha256 == hashlib.sha256(b'{"design":{},"grid":{},"objective":{}}').hexdigest()
    grid = {"sell_trigger": ("spell_start",), "cash_deploy_rate": [0.03, 0.1]}
    design = {"in_sample": ["2005-01-03", "2014-12-31"], "note": "écart"}
    plan = preregistration(objective_record(), grid, design)
    # what is shown is what was hashed: tuples read back as lists, keys sorted
    assert plan.record["grid"] == {"cash_deploy_rate": [0.03, 0.1], "sell_trigger": ["spell_start"]}
    text = canonical_json(plan.record)
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == plan.sha256
    assert '"note":"écart"' in text  # UTF-8, not escaped
    # the same choices in another order: the same hash; another choice: another hash
    reordered = dict(reversed(list(grid.items())))
    assert preregistration(objective_record(), reordered, design).sha256 == plan.sha256
    changed = preregistration(objective_record(min_exposure=0.4), grid, design)
    assert changed.sha256 != plan.sha256
    with pytest.raises(ValueError, match="plain JSON values only"):
        preregistration({"min_exposure": math.nan}, grid, design)
    with pytest.raises(ValueError, match="plain JSON values only"):
        preregistration({"when": object()}, grid, design)


GRID = {"cash_deploy_rate": [0.1, 0.5], "allocation_low_risk": [0.8, 1.0]}
PERIODS = ("2023-01-03", "2023-06-30", "2023-07-03", "2023-12-29")


def test_the_plan_records_the_design_and_refuses_overlapping_periods():
    plan = study.study_plan(GRID, *PERIODS, data_source="synthetic")
    design = plan.record["design"]
    assert design["in_sample"] == ["2023-01-03", "2023-06-30"]
    assert design["out_of_sample"] == ["2023-07-03", "2023-12-29"]
    assert (design["base_preset"], design["data_source"]) == ("seed", "synthetic")
    assert plan.record["objective"]["min_exposure"] == 0.5
    assert plan == study.study_plan(GRID, *PERIODS, data_source="synthetic")
    with pytest.raises(ValueError, match="in-sample end 2023-07-03 must be before"):
        study.study_plan(GRID, "2023-01-03", "2023-07-03", "2023-07-03", "2023-12-29")


def test_the_phases_run_what_the_plan_records():
    registered = study.study_plan(GRID, *PERIODS, data_source="synthetic")
    # a looser objective, recorded as such, is the one the choice obeys
    objective = objective_record(min_exposure=0.0, drawdown_share=10.0)
    plan = preregistration(objective, registered.record["grid"], registered.record["design"])
    found = study.run_in_sample(plan, workers=0)
    assert found.sweep.start.isoformat() == "2023-01-03" and found.choice.candidates == 4
    assert found.choice.eligible == 4  # every config passes the looser constraints
    assert SPY_MIX not in found.benchmarks.index  # those mixes are the base preset's
    assert found.versus_mix.startswith("In sample, the chosen config ")
    out = study.run_out_of_sample(plan, found.choice)
    assert list(out.table.index[:3]) == [study.CHOSEN, SPY_MIX, EQUAL_WEIGHT_MIX]
    assert {"preset default", "preset seed", "all SPY", "equal weight", "cash"} <= set(
        out.table.index
    )
    comparison = out.chosen_run.comparison
    assert comparison.loc[SPY_MIX, "matched_exposure"] == out.table.loc[study.CHOSEN, "exposure"]
    assert out.target_met == target_met(out.target)
    assert out.verdict.startswith("Target met: " if out.target_met else "Target missed: ")
    assert "the chosen config" in out.verdict and "SPY + cash mix at the same" in out.verdict
