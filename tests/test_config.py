import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allocator.exceptions import ConfigValidationError
from allocator.strategy.config import PARAMETER_NAMES, TradingConfig, check_overrides, preset
from allocator.strategy.symbols import symbol_problem


def test_the_seed_preset_is_the_design_documents_table():
    c = preset("seed")
    assert c.daily_capital == 1000.0
    assert c.assets == ("SPY", "QQQ", "DIA")
    assert c.lookback_days == 252
    assert (c.regime_bullish_threshold, c.regime_bearish_threshold) == (0.3, -0.3)
    assert (c.risk_high_threshold, c.risk_medium_threshold) == (70.0, 40.0)
    assert (c.max_drawdown_tolerance, c.min_sharpe_target) == (15.0, 1.0)
    allocations = (c.allocation_low_risk, c.allocation_medium_risk, c.allocation_high_risk)
    assert allocations == (0.8, 0.5, 0.3)
    assert (c.allocation_neutral, c.sell_percentage) == (0.2, 0.7)
    assert (c.momentum_weight, c.price_momentum_weight) == (0.6, 0.4)
    assert (c.cash_deploy_rate, c.sell_trigger) == (0.0, "every_session")


def test_the_product_default_differs_from_the_table_in_three_chosen_parameters():
    seed, default = preset("seed").to_dict(), TradingConfig().to_dict()
    assert preset("default") == TradingConfig()
    changed = {k: (seed[k], default[k]) for k in seed if seed[k] != default[k]}
    assert changed == {
        "sell_percentage": (0.7, 0.3),
        "cash_deploy_rate": (0.0, 0.03),
        "sell_trigger": ("every_session", "spell_start"),
    }


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"cash_deploy_rate": 1.5}, "trading_config.cash_deploy_rate: 1.5 must be within 0..1"),
        ({"cash_deploy_rate": -0.1}, "cash_deploy_rate: -0.1 must be within 0..1"),
        (
            {"sell_trigger": "weekly"},
            "sell_trigger: 'weekly': use one of every_session, spell_start",
        ),
    ],
)
def test_deployment_parameters_are_validated(changes, message):
    with pytest.raises(ConfigValidationError, match=message):
        TradingConfig().with_changes(**changes)
    with pytest.raises(ConfigValidationError, match="preset: 'bold' is unknown"):
        preset("bold")


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"regime_bullish_threshold": -0.5}, "regime_bearish_threshold"),
        ({"regime_bearish_threshold": -1.5}, "regime_bearish_threshold"),
        ({"risk_medium_threshold": 80.0}, "risk_medium_threshold"),
        ({"risk_high_threshold": 120.0}, "risk_medium_threshold"),
        ({"allocation_low_risk": 1.2}, "allocation_low_risk"),
        ({"allocation_neutral": -0.1}, "allocation_neutral"),
        ({"sell_percentage": 1.5}, "sell_percentage"),
        ({"sell_percentage": 0.1}, "sell_percentage"),
        ({"momentum_weight": 0.7}, "momentum_weight"),
        ({"assets": ()}, "assets"),
        ({"assets": ("SPY", "SPY")}, "assets"),
        ({"assets": ("SP Y",)}, "assets"),
        ({"daily_capital": 0.0}, "daily_capital"),
        ({"lookback_days": 10}, "lookback_days"),
        ({"daily_capital": float("nan")}, "daily_capital"),
    ],
)
def test_invalid_values_name_the_field(changes, field):
    with pytest.raises(ConfigValidationError) as err:
        TradingConfig().with_changes(**changes)
    assert err.value.field == field
    assert f"trading_config.{field}" in str(err.value)


def test_unknown_parameter_is_refused():
    with pytest.raises(ConfigValidationError, match="unknown parameter"):
        TradingConfig().with_changes(daily_capitol=5)


def test_from_mapping_coerces_strings_and_lists():
    c = TradingConfig.from_mapping(
        {"assets": "spy, qqq", "daily_capital": "250", "lookback_days": 300.0}
    )
    assert c.assets == ("SPY", "QQQ") and c.daily_capital == 250.0 and c.lookback_days == 300


def test_from_mapping_rejects_non_numbers():
    with pytest.raises(ConfigValidationError, match="daily_capital"):
        TradingConfig.from_mapping({"daily_capital": "lots"})


@given(w=st.floats(0, 1))
def test_any_weights_summing_to_one_are_valid(w):
    c = TradingConfig().with_changes(momentum_weight=w, price_momentum_weight=1 - w)
    assert abs(c.momentum_weight + c.price_momentum_weight - 1) < 1e-9


def test_round_trip_through_dict():
    c = TradingConfig().with_changes(assets=("SPY",), daily_capital=500.0)
    assert TradingConfig.from_mapping(c.to_dict()) == c
    assert set(c.to_dict()) == set(PARAMETER_NAMES)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"daily_capital": 1e308}, "1e+308 is out of range: allowed 0 < daily_capital <= 1,000"),
        ({"lookback_days": 10**6}, "allowed 61 <= lookback_days <= 10,000"),
        ({"min_sharpe_target": -50.0}, "allowed -10 <= min_sharpe_target <= 10"),
        ({"assets": ("SPY", "ABCDEFGHIJKLMNOPQ")}, "'ABCDEFGHIJKLMNOPQ' is not a ticker symbol"),
        ({"assets": ("../X",)}, "'../X' is not a ticker symbol"),
        ({"assets": ("spy",)}, "'spy' is not a ticker symbol"),
    ],
)
def test_absurd_values_and_bad_symbols_are_refused(changes, message):
    with pytest.raises(ConfigValidationError, match=re.escape(message)):
        TradingConfig().with_changes(**changes)


def test_symbols_follow_one_rule():
    assert TradingConfig(assets=("BRK.B", "BF-B", "X", "A" * 16)).assets[-1] == "A" * 16
    assert symbol_problem("A" * 17) and symbol_problem("1SPY") and symbol_problem("SPY\n")
    assert symbol_problem("SPY") is None


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"daily_capital": 1e308}, "daily_capital"),
        ({"daily_capital": float("inf")}, "daily_capital"),
        ({"daily_capital": True}, "daily_capital"),
        ({"lookback_days": 1e308}, "lookback_days"),
        ({"risk_high_threshold": 120}, "risk_high_threshold"),
        ({"sell_trigger": "weekly"}, "sell_trigger"),
        ({"assets": 5}, "assets"),
        ({"assets": ["SPY", "SPY"]}, "assets"),
        ({"daily_capitol": 5}, "daily_capitol"),
    ],
)
def test_overrides_are_checked_field_by_field(overrides, field):
    with pytest.raises(ConfigValidationError) as err:
        check_overrides(overrides)
    assert err.value.field == field and "\n" not in str(err.value)


def test_checked_overrides_are_coerced_and_json_ready():
    checked = check_overrides({"daily_capital": "500", "assets": "spy qqq", "lookback_days": 300.0})
    assert checked == {"daily_capital": 500.0, "assets": ["SPY", "QQQ"], "lookback_days": 300}
