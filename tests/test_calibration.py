"""Calibration: regimes and risk bands follow market phases on synthetic history.

The real-history check (SPY, QQQ, DIA over 2005-2024) needs the research data, which is never
copied into the repository: set ``ALLOCATOR_MARKET_CSV_DIR`` to a folder of SYMBOL.csv to run it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from allocator.cli.calibration import main, read_csv_closes
from allocator.exceptions import MarketDataError, MissingBarsError
from allocator.strategy.calibration import (
    TARGETS,
    distributions,
    signal_series,
    target_failures,
)
from allocator.strategy.config import TradingConfig
from allocator.strategy.features import closes_frame

CFG = TradingConfig()
# phase: (mean daily log return of the market, its daily volatility)
PHASES = {
    "calm": (0.0003, 0.006),
    "bull": (0.0015, 0.009),
    "crash": (-0.012, 0.030),
    "bear": (-0.002, 0.015),
}
CYCLE = [("calm", 250), ("bull", 120), ("crash", 30), ("bear", 100), ("bull", 150), ("calm", 200)]


def phased_closes(seed: int, cycles: int = 4) -> tuple[pd.DataFrame, pd.Series]:
    """Three assets driven by one market factor moving through CYCLE ``cycles`` times."""
    rng = np.random.default_rng(seed)
    names = [name for _ in range(cycles) for name, n in CYCLE for _ in range(n)]
    drift = np.array([PHASES[p][0] for p in names])
    vol = np.array([PHASES[p][1] for p in names])
    market = drift + vol * rng.standard_normal(len(names))
    returns = market[:, None] * np.array([1.0, 1.2, 0.9]) + rng.normal(0, 0.002, (len(names), 3))
    index = pd.Index(pd.bdate_range("2000-01-03", periods=len(names)).date)
    closes = pd.DataFrame(
        100 * np.exp(np.cumsum(returns, axis=0)), index=index, columns=list(CFG.assets)
    )
    return closes, pd.Series(names, index=index)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regimes_and_risk_follow_phases(seed):
    closes, phase = phased_closes(seed)
    start = closes.index[CFG.lookback_days + 1]
    table = signal_series(closes, CFG, start, closes.index[-1])
    table["phase"] = phase
    by_phase = table.groupby("phase")

    def share(name: str, column: str, value: str) -> float:
        return float((by_phase.get_group(name)[column] == value).mean())

    assert share("crash", "regime_label", "bearish") > 0.6
    assert share("crash", "risk_band", "high") > 0.9
    assert share("bear", "regime_label", "bearish") > 0.5
    assert share("bull", "regime_label", "bullish") > 0.45
    assert share("bull", "regime_label", "bullish") > 2 * share("bull", "regime_label", "bearish")
    assert by_phase.get_group("calm")["risk"].mean() < 45
    result = distributions(closes, CFG, start, closes.index[-1], months=())
    assert target_failures(result) == []
    assert sum(result["regime"].values()) == pytest.approx(1.0)
    assert sum(result["risk_band"].values()) == pytest.approx(1.0)


def test_project_synthetic_market_meets_targets():
    from allocator.shell.marketdata.synthetic import SyntheticSource

    source = SyntheticSource()
    start, end = dt.date(2004, 1, 2), dt.date(2024, 12, 31)
    closes = closes_frame({s: source.fetch(s, start, end) for s in CFG.assets})
    result = distributions(closes, CFG, dt.date(2005, 1, 3), end, months=())
    assert all(share >= TARGETS["regime"] for share in result["regime"].values())
    assert all(share >= TARGETS["risk_band"] for share in result["risk_band"].values())
    table = signal_series(closes, CFG, dt.date(2005, 1, 3), end)
    table["phase"] = source.phases(dt.date(2005, 1, 3), end)
    means = table.groupby("phase")[["regime", "risk"]].mean()
    assert means.loc["crash", "risk"] > 80 > 40 > means.loc["calm", "risk"]
    assert means.loc["bear", "regime"] < 0 < means.loc["bull", "regime"]


def test_signal_series_uses_the_previous_session():
    closes, _ = phased_closes(0, cycles=1)
    start = closes.index[300]
    table = signal_series(closes, CFG, start, closes.index[-1])
    changed = closes.copy()
    changed.iloc[-1] *= 0.5  # the last bar cannot affect any signal up to its own date
    assert table.equals(signal_series(changed, CFG, start, closes.index[-1]))
    with pytest.raises(MissingBarsError, match="lookback_days"):
        signal_series(closes, CFG, closes.index[100], closes.index[-1])


def test_months_and_failures_are_reported():
    closes, _ = phased_closes(0, cycles=1)
    start = closes.index[300]
    result = distributions(closes, CFG, start, closes.index[-1], months=("2001-06", "1990-01"))
    assert list(result["bearish_by_month"]) == ["2001-06"]
    failing = {**result, "regime": {**result["regime"], "neutral": 0.01}}
    assert target_failures(failing) == ["regime neutral on 1.0% of sessions (< 10%)"]


def test_main_prints_the_table(tmp_path, capsys):
    closes, _ = phased_closes(0)
    for symbol in closes.columns:
        bars = pd.DataFrame({"date": closes.index.astype(str), "close": closes[symbol]})
        for column in ("open", "high", "low"):
            bars[column] = bars["close"]
        bars["volume"] = 1000
        bars.to_csv(tmp_path / f"{symbol}.csv", index=False)
    start = str(closes.index[300])
    end = str(closes.index[-1])
    code = main(["--csv-dir", str(tmp_path), "--start", start, "--end", end, "--months"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "regime bearish (< -0.3)" in out and "risk high (> 70)" in out
    assert "all calibration targets met" in out
    with pytest.raises(MarketDataError, match="no file IWM.csv"):
        read_csv_closes(tmp_path, ["IWM"])


REAL_DATA = os.environ.get("ALLOCATOR_MARKET_CSV_DIR")


@pytest.mark.skipif(not REAL_DATA, reason="set ALLOCATOR_MARKET_CSV_DIR to real SPY/QQQ/DIA CSVs")
def test_real_history_meets_targets():
    closes = read_csv_closes(Path(REAL_DATA), CFG.assets)
    result = distributions(closes, CFG, dt.date(2005, 1, 3), dt.date(2024, 12, 31))
    assert target_failures(result) == []
