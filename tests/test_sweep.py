"""The research sweep: grids checked before anything runs, the replay kernel in process (the
default) and Dask results equal to the reference engine's serial run, the scheduler-address
path, and the SPY + cash mix beside every point."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from allocator.backtest.benchmarks import SPY_MIX
from allocator.backtest.sweep import (
    SPY_MIX_COLUMNS,
    expand_grid,
    parse_grid,
    pivot_metric,
    spy_leg_of,
    spy_mix_columns,
)
from allocator.cli.commands import main
from allocator.exceptions import ConfigValidationError, JobError
from allocator.jobs.sweep import run_sweep
from allocator.research.backtest_job import run_backtest_job
from allocator.strategy.config import preset

GRID = {"cash_deploy_rate": [0, 0.1], "sell_trigger": ["every_session", "spell_start"]}
PERIOD = ("2023-01-03", "2023-06-30")


def test_a_grid_expands_to_every_combination_in_order():
    points = expand_grid(preset("default"), GRID)
    assert points == [
        {"cash_deploy_rate": 0, "sell_trigger": "every_session"},
        {"cash_deploy_rate": 0, "sell_trigger": "spell_start"},
        {"cash_deploy_rate": 0.1, "sell_trigger": "every_session"},
        {"cash_deploy_rate": 0.1, "sell_trigger": "spell_start"},
    ]
    assert expand_grid(preset("default"), '{"allocation_neutral": 0.4}') == [
        {"allocation_neutral": 0.4}
    ]


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"cash_deploy": [0.1]}, "trading_config.cash_deploy: unknown parameter in the grid"),
        ({"cash_deploy_rate": [0.1, 2.0]}, r"cash_deploy_rate: 2.0 must be within 0..1 \(grid"),
        ({"sell_trigger": ["monthly"]}, "sell_trigger: 'monthly': use one of"),
        ({"cash_deploy_rate": []}, "cash_deploy_rate: the grid gives no value"),
        ({"allocation_neutral": ["lots"]}, "allocation_neutral: 'lots' is not a number"),
        ("{not json", "trading_config.grid: is not JSON"),
        ({}, "give a JSON object of parameter"),
    ],
)
def test_bad_grids_are_refused_naming_the_parameter(grid, message):
    with pytest.raises(ConfigValidationError, match=message):
        expand_grid(preset("default"), grid)


@pytest.fixture(scope="module")
def serial() -> pd.DataFrame:
    """The reference: the production backtest of every point, one after another."""
    return run_sweep(GRID, *PERIOD, data_source="synthetic", serial=True, engine="reference").table


def test_the_kernel_sweeps_in_this_process_and_equals_the_reference(serial):
    result = run_sweep(GRID, *PERIOD, data_source="synthetic", workers=2)
    assert (result.where, result.workers, result.engine) == ("this process", 1, "kernel")
    assert "4 configs on this process (1 worker(s), kernel engine)" in result.summary_line()
    pd.testing.assert_frame_equal(result.table, serial, check_exact=True)


def test_the_reference_sweep_on_a_local_cluster_equals_the_serial_run(serial):
    on_cluster = run_sweep(GRID, *PERIOD, data_source="synthetic", workers=2, engine="reference")
    assert on_cluster.where == "a local Dask cluster" and on_cluster.workers == 2
    pd.testing.assert_frame_equal(on_cluster.table, serial, check_exact=True)
    assert list(serial.columns[:2]) == list(GRID)
    assert {"sharpe", "max_drawdown", "exposure", "avg_idle_cash"} <= set(serial.columns)
    # every point is a different strategy
    assert serial["final_value"].nunique() == len(serial)


def test_the_sweep_runs_on_a_cluster_given_by_its_scheduler_address(serial, monkeypatch):
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        result = run_sweep(GRID, *PERIOD, data_source="synthetic")
    assert result.where == f"Dask scheduler {cluster.scheduler_address}"
    pd.testing.assert_frame_equal(result.table, serial, check_exact=True)


def test_an_unknown_engine_is_refused_and_the_cli_offers_the_engines():
    from allocator.cli.sweep import ENGINES as CLI_ENGINES
    from allocator.research.cluster import ENGINES

    assert CLI_ENGINES == ENGINES
    with pytest.raises(JobError, match="engine 'numpy': use one of kernel, reference"):
        run_sweep(GRID, *PERIOD, data_source="synthetic", engine="numpy")


def test_a_dead_scheduler_address_is_a_clear_error():
    with pytest.raises(JobError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_sweep(GRID, *PERIOD, data_source="synthetic", scheduler="tcp://127.0.0.1:9")


def test_the_cli_writes_the_table(tmp_path, capsys, serial):
    out = tmp_path / "results.parquet"
    grid = tmp_path / "grid.json"
    grid.write_text(
        '{"cash_deploy_rate": [0, 0.1], "sell_trigger": ["every_session", "spell_start"]}'
    )
    code = main(
        ["sweep", "--grid", f"@{grid}", "--start", PERIOD[0], "--end", PERIOD[1]]
        + ["--data-source", "synthetic", "--serial", "--out", str(out)]
    )
    assert code == 0
    assert "4 configs on this process (serial)" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_parquet(out), serial)
    assert (
        main(["sweep", "--grid", "@/no/such.json", "--start", "2023-01-03", "--end", "2023-02-01"])
        == 2
    )
    assert "cannot read /no/such.json" in capsys.readouterr().err


def test_each_point_carries_the_spy_mix_at_its_own_exposure(serial):
    assert list(serial.columns[-4:]) == list(SPY_MIX_COLUMNS)
    assert serial["beats_spy_mix"].dtype == bool
    for point, (_, row) in zip(
        expand_grid(preset("default"), GRID), serial.iterrows(), strict=True
    ):
        run = run_backtest_job(
            *PERIOD, config_source="default", overrides=point, data_source="synthetic"
        )
        mix = run.comparison.loc[SPY_MIX]
        assert row["exposure"] == run.comparison.loc["strategy", "exposure"] == mix.matched_exposure
        # the cheap figures of the sweep are the backtest's benchmark row, bit for bit
        assert (row.spy_mix_twr, row.spy_mix_sharpe, row.spy_mix_max_drawdown) == (
            mix.twr,
            mix.sharpe,
            mix.max_drawdown,
        )
        wins = row.sharpe > mix.sharpe and row.max_drawdown > mix.max_drawdown
        assert row.beats_spy_mix == wins


def test_without_spy_or_exposure_the_mix_columns_are_nan_and_not_beaten():
    bars = pd.DataFrame(
        {"symbol": ["QQQ"], "date": [dt.date(2024, 1, 2)], "open": [1.0], "close": [1.0]}
    )
    assert spy_leg_of(bars, [dt.date(2024, 1, 2)]) is None
    spy = bars.assign(symbol="SPY")
    assert spy_leg_of(spy, [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]) is None  # a close missing
    strategy = {"exposure": 0.5, "sharpe": 1.0, "max_drawdown": -0.1}
    for leg, figures in [(None, strategy), (spy_leg_of(spy, [dt.date(2024, 1, 2)]), {})]:
        figures = figures or {**strategy, "exposure": math.nan}
        columns = spy_mix_columns(leg, [1000.0], figures)
        assert list(columns) == list(SPY_MIX_COLUMNS) and columns["beats_spy_mix"] is False
        assert all(math.isnan(columns[k]) for k in SPY_MIX_COLUMNS[:-1])


def test_pivot_averages_over_the_other_parameters(serial):
    table = pivot_metric(serial, "cash_deploy_rate", "sell_trigger", "exposure")
    assert table.shape == (2, 2)
    with pytest.raises(ConfigValidationError, match="bogus: is not a column"):
        pivot_metric(serial, "cash_deploy_rate", "bogus", "exposure")
    assert parse_grid(GRID) == GRID
