"""Fill costs (``slippage_bps``, ``commission_per_order``): numbers worked by hand, and zero
costs changing no bit of the fill at the open."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allocator.exceptions import ConfigValidationError
from allocator.money.quantities import on_broker_grid
from allocator.portfolio.book import Book, Position
from allocator.portfolio.fills import (
    NO_COSTS,
    ExecutionError,
    Fill,
    FillCosts,
    Order,
    apply_fill,
    fill_orders_at_open,
    fill_price,
)
from allocator.strategy.config import TradingConfig, check_overrides, preset


def test_slippage_prices_a_buy_above_and_a_sell_below_the_open():
    # 10 bps of 200: a BUY at 200.2, a SELL at 199.8
    assert fill_price("BUY", 200.0, 10.0) == pytest.approx(200.2, abs=1e-12)
    assert fill_price("SELL", 200.0, 10.0) == pytest.approx(199.8, abs=1e-12)
    assert fill_price("BUY", 123.45, 0.0) == 123.45
    assert fill_price("SELL", 123.45, 0.0) == 123.45


def test_a_buy_pays_its_commission_out_of_its_dollars():
    # 400 dollars, 1 dollar commission, 10 bps on an open of 100: price 100.1,
    # quantity floor(399 / 100.1, 4) = 3.9860; amount 3.986 * 100.1 = 399.0 (398.9986);
    # cash 1000 - 398.9986 - 1 = 600.0014
    costs = FillCosts(slippage_bps=10.0, commission=1.0)
    fills, book = fill_orders_at_open(
        [Order("SPY", "BUY", amount=400.0)], {"SPY": 100.0}, Book(cash=1000.0), costs
    )
    (fill,) = fills
    assert fill.price == pytest.approx(100.1, abs=1e-12)
    assert fill.quantity == 3.986
    assert fill.amount == pytest.approx(398.9986, abs=1e-9)
    assert fill.commission == 1.0
    assert fill.amount + fill.commission <= 400.0
    assert book.cash == pytest.approx(600.0014, abs=1e-9)
    assert book.positions["SPY"] == Position("SPY", 3.986, pytest.approx(100.1))


def test_a_sell_gets_less_than_the_open_and_pays_its_commission():
    book = Book(cash=0.0, positions={"QQQ": Position("QQQ", 2.0, 100.0)})
    # 20 bps of 150: 149.7; proceeds 2 * 149.7 = 299.4; realised 2 * 49.7 = 99.4 (gross);
    # cash 299.4 - 0.5 = 298.9
    fills, after = fill_orders_at_open(
        [Order("QQQ", "SELL", quantity=2.0)], {"QQQ": 150.0}, book, FillCosts(20.0, 0.5)
    )
    (fill,) = fills
    assert fill.price == pytest.approx(149.7, abs=1e-12)
    assert fill.realized_pnl == pytest.approx(99.4, abs=1e-9)
    assert after.cash == pytest.approx(298.9, abs=1e-9)
    assert fill.cash_change == pytest.approx(298.9, abs=1e-9)


def test_a_buy_that_does_not_cover_its_commission_is_not_placed():
    fills, book = fill_orders_at_open(
        [Order("SPY", "BUY", amount=0.75)], {"SPY": 0.5}, Book(cash=5.0), FillCosts(0.0, 1.0)
    )
    assert fills == [] and book.cash == 5.0


def test_a_sell_that_cannot_pay_its_commission_is_refused():
    book = Book(cash=0.0, positions={"SPY": Position("SPY", 0.001, 100.0)})
    with pytest.raises(ExecutionError, match="SPY: selling for 0.10 cannot pay the 1.00"):
        fill_orders_at_open(
            [Order("SPY", "SELL", quantity=0.001)], {"SPY": 100.0}, book, FillCosts(0.0, 1.0)
        )


opens = st.floats(0.5, 5000.0)
dollars = st.floats(1.0, 1e6)


@given(opens, dollars, st.floats(0.0, 1e4))
def test_zero_costs_change_no_bit(open_price, amount, held):
    book = Book(cash=2e6, positions={"SPY": Position("SPY", round(held, 4) + 1.0, 50.0)})
    orders = [Order("SPY", "SELL", quantity=1.0), Order("QQQ", "BUY", amount=amount)]
    prices = {"SPY": open_price, "QQQ": open_price * 1.5}
    plain = fill_orders_at_open(orders, prices, book)
    costed = fill_orders_at_open(orders, prices, book, FillCosts(0.0, 0.0))
    assert plain == costed
    assert plain[0][0].price == open_price


@given(opens, dollars, st.floats(0.0, 500.0), st.floats(0.0, 100.0))
def test_a_buy_never_costs_more_than_its_dollars(open_price, amount, bps, commission):
    fills, book = fill_orders_at_open(
        [Order("SPY", "BUY", amount=amount)],
        {"SPY": open_price},
        Book(cash=amount),
        FillCosts(bps, commission),
    )
    for fill in fills:
        assert fill.price >= open_price
        assert fill.amount + fill.commission <= amount + 1e-6
    assert book.cash >= -1e-6


def test_costs_come_from_the_config_and_are_validated():
    config = preset("default").with_changes(slippage_bps=2.5, commission_per_order=0.35)
    assert FillCosts.of(config) == FillCosts(2.5, 0.35)
    assert FillCosts.of(TradingConfig()) == NO_COSTS
    assert FillCosts.of(preset("seed")) == NO_COSTS
    with pytest.raises(ConfigValidationError, match="slippage_bps: 600 is out of range"):
        check_overrides({"slippage_bps": 600})
    with pytest.raises(ConfigValidationError, match="commission_per_order: -1 is out of range"):
        check_overrides({"commission_per_order": -1})
    assert check_overrides({"slippage_bps": 3}) == {"slippage_bps": 3.0}


def test_a_broker_fill_keeps_the_brokers_nine_decimals():
    book = Book(cash=1000.0)
    apply_fill(book, Fill("SPY", "BUY", 0.123456789, 500.0, 61.7283945), grid=on_broker_grid)
    apply_fill(book, Fill("SPY", "BUY", 0.000000002, 500.0, 0.000001), grid=on_broker_grid)
    assert book.positions["SPY"].quantity == 0.123456791
