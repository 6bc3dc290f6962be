"""Fills at the open and the book's accounting, with numbers worked by hand and properties."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from allocator.money.quantities import fraction_of_holding, shares_for_dollars
from allocator.portfolio.book import Book, Position, unrealized_pnl
from allocator.portfolio.fills import (
    ExecutionError,
    Order,
    fill_orders_at_open,
    orders_from_allocations,
)


def on_grid(quantity: float) -> float:
    """``quantity`` rounded down to the 4-decimal share grid."""
    return fraction_of_holding(quantity, 1.0)


def test_buy_is_sized_down_to_four_decimals_and_costed_at_the_open():
    # 400 / 123.45 = 3.240178... -> 3.2401 shares; amount = 3.2401 * 123.45 = 399.990345
    fills, book = fill_orders_at_open(
        [Order("SPY", "BUY", amount=400.0)], {"SPY": 123.45}, Book(cash=1000.0)
    )
    (fill,) = fills
    assert fill.quantity == 3.2401 and fill.price == 123.45
    assert fill.amount == pytest.approx(399.990345, abs=1e-9)
    assert book.cash == pytest.approx(600.009655, abs=1e-9)
    assert book.positions["SPY"] == Position("SPY", 3.2401, 123.45)


def test_average_cost_is_weighted_on_buy_and_unchanged_on_sell():
    book = Book(cash=10_000.0, positions={"QQQ": Position("QQQ", 2.0, 100.0)})
    # buy 100 dollars at 200 -> 0.5 shares; avg = (2*100 + 0.5*200) / 2.5 = 120
    _, book = fill_orders_at_open([Order("QQQ", "BUY", amount=100.0)], {"QQQ": 200.0}, book)
    assert book.positions["QQQ"].quantity == 2.5
    assert book.positions["QQQ"].avg_cost == pytest.approx(120.0)
    # sell 1 share at 150 -> realised 1 * (150 - 120) = 30; avg cost stays 120
    fills, book = fill_orders_at_open([Order("QQQ", "SELL", quantity=1.0)], {"QQQ": 150.0}, book)
    assert fills[0].realized_pnl == pytest.approx(30.0)
    assert book.positions["QQQ"] == Position("QQQ", 1.5, pytest.approx(120.0))


def test_selling_everything_removes_the_position():
    book = Book(cash=0.0, positions={"DIA": Position("DIA", 1.2345, 300.0)})
    fills, after = fill_orders_at_open(
        [Order("DIA", "SELL", quantity=1.2345)], {"DIA": 310.0}, book
    )
    assert "DIA" not in after.positions
    assert after.cash == pytest.approx(1.2345 * 310.0)
    assert fills[0].realized_pnl == pytest.approx(1.2345 * 10.0)
    assert book.positions["DIA"].quantity == 1.2345  # the input book is not changed


def test_sells_fill_before_buys_so_proceeds_are_available():
    book = Book(cash=0.0, positions={"SPY": Position("SPY", 2.0, 100.0)})
    orders = [Order("QQQ", "BUY", amount=150.0), Order("SPY", "SELL", quantity=2.0)]
    fills, after = fill_orders_at_open(orders, {"SPY": 100.0, "QQQ": 50.0}, book)
    assert [f.action for f in fills] == ["SELL", "BUY"]
    assert after.cash == pytest.approx(50.0)


@pytest.mark.parametrize(
    "orders, opens, book, message",
    [
        ([Order("SPY", "BUY", amount=10.0)], {}, Book(cash=100.0), "SPY: no open price"),
        (
            [Order("SPY", "BUY", amount=500.0)],
            {"SPY": 10.0},
            Book(cash=100.0),
            "needs more than the 100.00 cash",
        ),
        (
            [Order("SPY", "SELL", quantity=3.0)],
            {"SPY": 10.0},
            Book(positions={"SPY": Position("SPY", 2.0, 1.0)}),
            "sells 3.0 shares but 2.0 are held",
        ),
        (
            [Order("SPY", "BUY", amount=5.0)],
            {"SPY": -1.0},
            Book(cash=100.0),
            "not a positive number",
        ),
    ],
)
def test_impossible_orders_are_refused_with_the_symbol(orders, opens, book, message):
    with pytest.raises(ExecutionError, match=message):
        fill_orders_at_open(orders, opens, book)


def test_orders_need_sensible_amounts():
    with pytest.raises(ExecutionError, match="positive dollar amount"):
        Order("SPY", "BUY", amount=0.0)
    with pytest.raises(ExecutionError, match="positive quantity"):
        Order("SPY", "SELL", quantity=None)


def test_orders_from_allocations():
    orders = orders_from_allocations({"SPY": 400.0, "QQQ": 0.0, "DIA": -50.0}, {"DIA": 0.5})
    assert orders == [Order("DIA", "SELL", quantity=0.5), Order("SPY", "BUY", amount=400.0)]


def test_share_rounding_is_exact_decimal_arithmetic():
    assert 0.3 / 0.1 == 2.9999999999999996  # float noise that must not lose a share step
    assert shares_for_dollars(0.3, 0.1) == 3.0
    assert shares_for_dollars(400.0, 123.45) == 3.2401
    assert on_grid(1.23456789) == 1.2345
    assert on_grid(0.00004) == 0.0
    assert fraction_of_holding(10.0, 0.33333) == 3.3333
    assert fraction_of_holding(0.0, 0.5) == 0.0


def test_a_buy_exceeding_the_cash_by_float_noise_is_sized_to_the_cash():
    # 1000.00 asked with 999.999999 in cash: bought as far as the cash goes, never below zero
    fills, book = fill_orders_at_open(
        [Order("SPY", "BUY", amount=1000.0)], {"SPY": 0.5}, Book(cash=999.999999)
    )
    assert fills[0].quantity == 1999.9999 and book.cash >= 0
    with pytest.raises(ExecutionError, match="SPY: buying 1000.00 needs more than the 999.99"):
        fill_orders_at_open([Order("SPY", "BUY", amount=1000.0)], {"SPY": 0.5}, Book(cash=999.99))


prices = st.floats(1.0, 2000.0, allow_nan=False)
amounts = st.floats(1.0, 1000.0, allow_nan=False)


@given(
    cash=st.floats(0.0, 5000.0),
    held=st.dictionaries(
        st.sampled_from(["SPY", "QQQ", "DIA"]),
        st.tuples(st.floats(0.001, 50.0), prices),
        max_size=3,
    ),
    buys=st.dictionaries(st.sampled_from(["SPY", "QQQ", "DIA", "IWM"]), amounts, max_size=4),
    sell_fraction=st.floats(0.0, 1.0),
    opens=st.fixed_dictionaries({s: prices for s in ["SPY", "QQQ", "DIA", "IWM"]}),
)
def test_accounting_identities_hold_for_any_fills(cash, held, buys, sell_fraction, opens):
    book = Book(
        cash=cash,
        positions={s: Position(s, on_grid(q), p) for s, (q, p) in held.items() if on_grid(q) > 0},
    )
    sells = {s: fraction_of_holding(p.quantity, sell_fraction) for s, p in book.positions.items()}
    orders = orders_from_allocations({}, {s: q for s, q in sells.items() if q > 0})
    total_buy = 0.0
    for symbol, dollars in buys.items():
        if symbol in sells:
            continue
        orders.append(Order(symbol, "BUY", amount=dollars))
        total_buy += dollars
    proceeds = sum(q * opens[s] for s, q in sells.items())
    try:
        fills, after = fill_orders_at_open(orders, opens, book)
    except ExecutionError:
        # refused only for a real shortfall: more dollars asked than cash plus the day's sales
        assert total_buy > cash + proceeds
        return
    # cash never negative, and moves exactly by the fills
    assert after.cash >= 0
    assert after.cash == pytest.approx(cash + sum(f.cash_change for f in fills), abs=1e-6)
    # a fill never costs more than the dollars allocated
    for f in fills:
        if f.action == "BUY":
            assert f.amount <= buys[f.symbol] + 1e-9 and f.quantity == on_grid(f.quantity)
    # trading at the open leaves the value at the open unchanged (money is only exchanged)
    value_before = book.cash + sum(p.quantity * opens[s] for s, p in book.positions.items())
    value_after = after.cash + sum(p.quantity * opens[s] for s, p in after.positions.items())
    assert value_after == pytest.approx(value_before, rel=1e-9, abs=1e-6)
    # realised + unrealised P&L at the open is preserved too
    pnl_before = sum(unrealized_pnl(book, opens).values())
    pnl_after = sum(unrealized_pnl(after, opens).values()) + sum(f.realized_pnl for f in fills)
    assert pnl_after == pytest.approx(pnl_before, rel=1e-9, abs=1e-6)
    # positions stay positive with a finite average cost
    for p in after.positions.values():
        assert p.quantity > 0 and math.isfinite(p.avg_cost)
