"""How reports show numbers, the backtest's display table and its one-line headline."""

from __future__ import annotations

import datetime as dt
import math

import nbformat
import pandas as pd
import pytest

from allocator.backtest.schedule import ConfigSchedule
from allocator.jobs.backtest import (
    comparison_for_display,
    history_start,
    run_backtest,
    versus_mix_sentence,
)
from allocator.notebook.formats import (
    count,
    dollars,
    metrics_headline,
    percent,
    ratio,
    versus_mix,
)
from allocator.notebook.runner import backtest_headline
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.strategy.config import TradingConfig

METRICS = {
    "twr": 0.818,
    "cagr": 0.0618,
    "sharpe": 0.6612,
    "max_drawdown": -0.1914,
    "exposure": 0.601,
    "final_value": 3664029.4,
    "n_trades": 1234,
}


@pytest.mark.parametrize(
    ("show", "value", "text"),
    [
        (percent, 0.0618, "6.2 %"),
        (percent, -0.1914, "-19.1 %"),
        (percent, 1, "100.0 %"),
        (ratio, 0.6612, "0.66"),
        (ratio, -2.004, "-2.00"),
        (dollars, 3664029.4, "$3,664,029"),
        (dollars, -1500.5, "-$1,500"),
        (count, 1234.0, "1,234"),
    ],
)
def test_numbers_as_text(show, value, text):
    assert show(value) == text


@pytest.mark.parametrize("missing", [None, math.nan, math.inf, "n/a"])
def test_a_missing_value_is_a_dash(missing):
    assert {percent(missing), ratio(missing), dollars(missing), count(missing)} == {"—"}


def test_the_headline_names_the_six_numbers():
    assert metrics_headline(METRICS) == (
        "TWR 81.8 %, CAGR 6.2 %, Sharpe 0.66, max drawdown -19.1 %, exposure 60.1 %, "
        "final value $3,664,029"
    )
    assert metrics_headline({}).startswith("TWR —, CAGR —")


def test_the_comparison_is_shown_in_percent_and_dollars():
    start, end = dt.date(2024, 5, 1), dt.date(2024, 6, 28)
    schedule = ConfigSchedule.constant(TradingConfig())
    source = SyntheticSource()
    first = history_start(start, schedule)
    bars = pd.concat(
        [source.fetch(s, first, end).assign(symbol=s) for s in ("SPY", "QQQ", "DIA")],
        ignore_index=True,
    )
    result = run_backtest(bars, start, end, schedule)

    shown = comparison_for_display(result)

    assert list(shown.index) == list(result.comparison.index)
    assert list(shown.columns[:4]) == ["TWR", "CAGR", "MWR (IRR)", "volatility"]
    strategy = result.comparison.loc["strategy"]
    assert shown.loc["strategy", "TWR"] == f"{strategy['twr'] * 100:.1f} %"
    assert shown.loc["strategy", "final value"] == f"${strategy['final_value']:,.0f}"
    assert shown.loc["strategy", "Sharpe"] == f"{strategy['sharpe']:.2f}"
    assert shown.loc["cash", "Sharpe"] == "—" and shown.loc["all SPY", "trades"] == "—"
    matched = shown["matched to exposure"]
    assert matched["SPY + cash at exposure"] == percent(strategy["exposure"]) != "—"
    assert matched["strategy"] == matched["all SPY"] == "—"
    assert versus_mix_sentence(result).startswith("The strategy ")


DEFAULT_2015_2024 = {"sharpe": 0.66, "max_drawdown": -0.191}
MIX_2015_2024 = {"sharpe": 0.68, "max_drawdown": -0.216, "matched_exposure": 0.601}


def test_the_mix_sentence_says_whether_both_counts_are_beaten():
    assert versus_mix("The strategy", DEFAULT_2015_2024, MIX_2015_2024) == (
        "The strategy does not beat the SPY + cash mix at the same 60.1 % exposure: its Sharpe "
        "0.66 is below the mix's 0.68, and its max drawdown -19.1 % is shallower than the mix's "
        "-21.6 %."
    )
    better = {"sharpe": 0.7, "max_drawdown": -0.191}
    assert versus_mix("It", better, MIX_2015_2024).startswith("It beats the SPY + cash mix at")
    deeper = {"sharpe": 0.7, "max_drawdown": -0.3}
    assert "does not beat" in versus_mix("It", deeper, MIX_2015_2024)
    assert "max drawdown -30.0 % is deeper than" in versus_mix("It", deeper, MIX_2015_2024)
    idle = {"sharpe": None, "max_drawdown": 0.0}
    assert "Sharpe — is not comparable with the mix's 0.68" in versus_mix("It", idle, MIX_2015_2024)


def _glued(name: str, value) -> nbformat.NotebookNode:
    """A display output as ``scrapbook.glue`` writes it for a JSON value."""
    return nbformat.v4.new_output(
        "display_data",
        data={
            "application/scrapbook.scrap.json+json": {
                "name": name,
                "data": value,
                "encoder": "json",
                "version": 1,
            }
        },
        metadata={"scrapbook": {"name": name, "data": True, "display": False}},
    )


def test_backtest_headline_reads_the_glued_metrics(tmp_path):
    cell = nbformat.v4.new_code_cell('sb.glue("metrics", ...)')
    cell.outputs = [_glued("metrics", {**METRICS, "start": "2015-01-02"})]
    path = tmp_path / "backtest.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    assert backtest_headline(path).startswith("TWR 81.8 %, CAGR 6.2 %, Sharpe 0.66")
    assert "\n" not in backtest_headline(path)  # no comparison glued: the headline alone
    comparison = {"strategy": DEFAULT_2015_2024, "SPY + cash at exposure": MIX_2015_2024}
    cell.outputs.append(_glued("comparison", comparison))
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    assert (
        backtest_headline(path)
        .splitlines()[1]
        .startswith("The strategy does not beat the SPY + cash mix at the same 60.1 % exposure")
    )

    nbformat.write(nbformat.v4.new_notebook(cells=[]), path)
    assert backtest_headline(path) is None
    path.write_text("")
    assert backtest_headline(path) is None
