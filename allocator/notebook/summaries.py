"""The answer first for the daily jobs' reports (signal, execute, fetch), and their tables.

Each ``*_summary`` function is a report's first block (:class:`~.tables.Cards`): what the run
decided or did, in dollars, percentages and dates (:mod:`.formats`). The tables beside them
show the details with every number in its unit and no index column; a ``—`` cell says why under
the table.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from allocator.notebook.formats import (
    cents,
    count,
    date,
    decimal,
    dollars,
    percent,
    shares,
    unavailable,
)
from allocator.notebook.tables import Card, Cards, Table

# --- signal -------------------------------------------------------------------------------------


def regime_band(regime: float, config) -> str:
    """``bullish``, ``neutral`` or ``bearish`` with the config's thresholds, in words."""
    bull, bear = config.regime_bullish_threshold, config.regime_bearish_threshold
    label = "bullish" if regime > bull else "bearish" if regime < bear else "neutral"
    below, above = decimal(bear, 2, signed=True), decimal(bull, 2, signed=True)
    return f"{label} (bearish below {below}, bullish above {above})"


def risk_band(risk: float, config) -> str:
    """``low``, ``medium`` or ``high`` with the config's thresholds, in words."""
    high, medium = config.risk_high_threshold, config.risk_medium_threshold
    label = "high" if risk > high else "medium" if risk >= medium else "low"
    return f"{label} (medium from {decimal(medium, 0)}, high above {decimal(high, 0)})"


def signal_summary(result) -> Cards:
    """Action, allocations in dollars, regime and risk with their bands, confidence, config."""
    s, config = result.signal, result.version.config
    used = s.features_used
    allocations = result.allocations
    total = sum(allocations.values())
    split = ", ".join(f"{k} {cents(v)}" for k, v in allocations.items()) or "no orders"
    cards = [
        Card("action", s.action, f"trade date {date(result.trade_date)}"),
        Card("allocations", cents(total) if allocations else "none", split),
        Card(
            "regime", decimal(used["regime"], 2, signed=True), regime_band(used["regime"], config)
        ),
        Card("risk", decimal(used["risk"], 0), risk_band(used["risk"], config)),
        Card("confidence", percent(s.confidence_score, 0)),
        Card("config", f"#{s.config_id}", f"signal {result.status}"),
    ]
    return Cards(cards, [result.decision.reason])


def signal_allocations(result) -> Table:
    """One row per order: the dollars (negative for a sell), their share, shares to sell."""
    allocations, sells = result.allocations, result.signal.sell_quantities or {}
    total = sum(abs(v) for v in allocations.values())
    rows = [
        [
            symbol,
            "SELL" if value < 0 else "BUY",
            cents(value),
            percent(abs(value) / total if total else None),
            shares(sells[symbol]) if symbol in sells else "—",
        ]
        for symbol, value in allocations.items()
    ]
    notes = (
        ["— shares: a BUY is in dollars; it buys whole 1/10,000 shares at the open."]
        if rows
        else []
    )
    return Table(
        ["symbol", "action", "dollars", "share", "shares to sell"],
        rows,
        align="llrrr",
        notes=notes,
        empty=f"No orders: {result.signal.action}.",
    )


#: The features table's columns: key, header, format.
FEATURES = (
    ("close", "last close", cents),
    ("returns_5d", "5-day return", lambda v: percent(v, 2)),
    ("returns_20d", "20-day return", lambda v: percent(v, 2)),
    ("returns_60d", "60-day return", lambda v: percent(v, 2)),
    ("volatility", "volatility (daily)", lambda v: percent(v, 2)),
    ("sma20_distance", "vs SMA-20", lambda v: percent(v, 2)),
    ("sma50_distance", "vs SMA-50", lambda v: percent(v, 2)),
    ("score", "score", lambda v: decimal(v, 3, signed=True)),
)


def signal_features(result) -> Table:
    """The features the decision used, one row per asset, each in its unit."""
    assets = result.signal.features_used.get("assets", {})
    rows = [
        [symbol, *(show(values.get(key)) for key, _, show in FEATURES)]
        for symbol, values in assets.items()
    ]
    as_of = result.signal.features_used.get("as_of")
    notes = [f"From the closes up to {date(as_of)}, the session before the trade date."]
    return Table(["symbol", *(h for _, h, _ in FEATURES)], rows, notes=notes)


# --- execute ------------------------------------------------------------------------------------


def _count_amount(trades: pd.DataFrame, status: str) -> tuple[int, float]:
    chosen = trades[trades["status"] == status] if len(trades) else trades
    amounts = pd.to_numeric(chosen["amount"], errors="coerce") if len(chosen) else pd.Series()
    return len(chosen), float(amounts.abs().sum()) if len(amounts) else 0.0


def positions_value(result) -> float:
    """The positions at their latest stored closes, in dollars."""
    return sum(
        p.quantity * result.closes[s]
        for s, p in result.book.positions.items()
        if s in result.closes
    )


def orders_of(trade_date: dt.date | str) -> dict:
    """What the trade date's orders were: ``deposit`` (the daily capital of the signal's config
    version) and ``ordered`` (symbol -> the signal's dollars, negative for a sell)."""
    from allocator.shell import calendar
    from allocator.shell.persistence.configs import version_by_id
    from allocator.shell.persistence.migrate import migrated_engine
    from allocator.shell.persistence.signals import get_signal
    from allocator.shell.settings import get_settings

    day = calendar.to_date(trade_date, "trade_date")
    with migrated_engine(get_settings()) as engine, engine.connect() as conn:
        signal = get_signal(conn, day)
        if signal is None:
            return {"deposit": None, "ordered": {}}
        capital = version_by_id(conn, signal.config_id).config.daily_capital
    return {"deposit": capital, "ordered": dict(signal.allocations)}


def execute_summary(result, orders: dict | None = None) -> Cards:
    """Deposit, fills and pending orders, cash after, positions and P&L; ``orders``
    (:func:`orders_of`) gives the deposit's amount and the pending orders' dollars."""
    trades, orders = result.trades, orders or {"deposit": None, "ordered": {}}
    filled, filled_dollars = _count_amount(trades, "filled")
    pending, _ = _count_amount(trades, "pending")
    waiting = trades[trades["status"] == "pending"]["symbol"] if len(trades) else []
    ordered = sum(abs(orders["ordered"].get(s, 0.0)) for s in waiting)
    deposit = cents(orders["deposit"]) if orders["deposit"] is not None else "—"
    when = "deposited now" if result.deposited else "deposited by an earlier run"
    waits = f"{cents(ordered)} ordered; the 4:35 PM fetch fills them at the open"
    cards = [
        Card("deposit", deposit, f"{when}, {date(result.trade_date)}"),
        Card("filled", count(filled), f"{cents(filled_dollars)} at the open" if filled else "none"),
        Card("pending", count(pending), waits if pending else "none"),
        Card("cash after", cents(result.cash)),
        Card("positions", dollars(positions_value(result)), "at the latest closes"),
        Card("realised P&L", cents(result.realized_pnl), "all sells so far"),
    ]
    day = date(result.trade_date)
    sentences = [
        f"Signal #{result.signal_id}: {result.action}; orders {result.status}. Every trade of the "
        f"day is on the web app's trades page (/trades?start={day}&end={day}, allocator serve)."
    ]
    if result.out_of_order:
        sentences.append("Executed OUT OF ORDER: a later date was already executed.")
    broker = getattr(result, "broker", "simulated")
    if broker != "simulated":
        sentences.append(f"Orders sent to {broker}.")
    return Cards(cards, sentences, tone="bad" if result.out_of_order else "")


def execute_trades(result) -> Table:
    """The signal's orders: status, shares, price, amount and realised P&L."""
    rows = []
    for t in result.trades.itertuples():
        done = t.status == "filled"
        rows.append(
            [
                t.symbol,
                t.action,
                t.status,
                shares(t.quantity) if done else "—",
                cents(t.price) if done else "—",
                cents(t.amount) if done else "—",
                cents(t.realized_pnl) if done and t.action == "SELL" else "—",
            ]
        )
    notes = [
        "— shares, price, amount: a pending order gets them at the trade date's open; a "
        "cancelled one (under 1/10,000 share) never. — realised P&L: only a filled sell has one."
    ]
    columns = ["symbol", "action", "status", "shares", "price", "amount", "realised P&L"]
    return Table(
        columns, rows, align="lllrrrr", notes=notes, empty="No orders: nothing to execute."
    )


def positions_table(result) -> Table:
    """Each position with its average cost, latest close, market value and unrealised P&L."""
    rows = []
    for symbol, p in sorted(result.book.positions.items()):
        close = result.closes.get(symbol)
        value = p.quantity * close if close is not None else None
        rows.append(
            [
                symbol,
                shares(p.quantity),
                cents(p.avg_cost),
                cents(close) if close is not None else unavailable("no close stored"),
                dollars(value),
                cents(result.unrealized_pnl.get(symbol)),
            ]
        )
    columns = ["symbol", "shares", "average cost", "latest close", "market value", "unrealised P&L"]
    return Table(columns, rows, empty="No positions.")


# --- fetch --------------------------------------------------------------------------------------


def closing_value(trade_date: dt.date | str) -> dict | None:
    """The portfolio's valuation at the trade date's close (cash, positions, total, deposits
    so far), or None when it was not valued."""
    from allocator.shell import calendar
    from allocator.shell.persistence import ledger
    from allocator.shell.persistence.migrate import migrated_engine
    from allocator.shell.settings import get_settings

    day = calendar.to_date(trade_date, "trade_date")
    with migrated_engine(get_settings()) as engine, engine.connect() as conn:
        frame = ledger.valuations_frame(conn, day, day)
    return None if frame.empty else frame.iloc[0].to_dict()


def fetch_summary(result, valuation: dict | None) -> Cards:
    """Bars stored per symbol, the last bar, the fills made, and the value at the close."""
    inserted = result.rows_inserted
    stored = ", ".join(f"{s} {count(n)}" for s, n in inserted.items()) or "none"
    fills = sum(n for _, n in result.settled)
    dates = ", ".join(date(d) for d, _ in result.settled)
    cards = [
        Card("bars stored", count(sum(inserted.values())), stored),
        Card("last bar", date(result.last_bar_date), f"trade date {date(result.trade_date)}"),
        Card("fills made", count(fills), f"pending orders of {dates}" if fills else "none pending"),
    ]
    if valuation is not None and result.valued:
        cards += [
            Card(
                "value at the close",
                dollars(valuation["total_value"]),
                f"deposits {dollars(valuation['cumulative_deposits'])}",
            ),
            Card(
                "cash",
                dollars(valuation["cash"]),
                f"positions {dollars(valuation['positions_value'])}",
            ),
        ]
        sentences = []
    else:
        sentences = [
            f"The portfolio was not valued at the close of {date(result.trade_date)}: the "
            "execute job has not run for that date."
        ]
    return Cards(cards, sentences)


def fetch_bars(result) -> Table:
    """One row per symbol: what the source sent and what was stored."""
    frame = result.summary
    errors = bool(frame["error"].astype(bool).any()) if len(frame) else False
    rows = [
        [
            r.symbol,
            r.status,
            count(r.received),
            count(r.inserted),
            count(r.updated),
            count(r.unchanged),
            count(r.skipped_non_sessions),
            date(r.last_bar),
        ]
        + ([r.error or "—"] if errors else [])
        for r in frame.itertuples()
    ]
    columns = [
        "symbol",
        "status",
        "received",
        "new",
        "revised",
        "unchanged",
        "not sessions",
        "last bar",
    ]
    notes = [
        "Revised: the source changed a stored bar (logged with the old and new values). Not "
        "sessions: bars dated on a day the NYSE was closed, dropped."
    ]
    return Table(
        columns + (["error"] if errors else []),
        rows,
        align="ll" + "r" * 5 + "l" + "l" * errors,
        notes=notes,
    )
