"""The database schema, as SQLAlchemy Core tables: one schema on SQLite and PostgreSQL.

Migrations in ``migrations/versions`` create exactly these tables; ``tests/test_migrations.py``
checks that the migrated database and this metadata agree. Constraints, not checks in code, make
duplicates impossible: one bar per symbol and date, one signal per trade date, one trade per signal
and symbol, one ledger entry per reference, at most one active config version.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Prices and money are IEEE doubles on both engines, so a value round-trips bit for bit and the
# backtest (in memory) and the daily jobs (through the database) compute identical numbers.
Money = sa.Double

price_history = sa.Table(
    "price_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("symbol", sa.String(16), nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("open", Money, nullable=False),
    sa.Column("high", Money, nullable=False),
    sa.Column("low", Money, nullable=False),
    sa.Column("close", Money, nullable=False),
    sa.Column("volume", sa.BigInteger, nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("symbol", "date", name="uq_price_history_symbol_date"),
    sa.CheckConstraint("low > 0 AND high >= low", name="positive_range"),
)

trading_config = sa.Table(
    "trading_config",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("end_date", sa.Date, nullable=True),
    sa.Column("daily_capital", Money, nullable=False),
    sa.Column("assets", sa.JSON, nullable=False),
    sa.Column("lookback_days", sa.Integer, nullable=False),
    sa.Column("regime_bullish_threshold", sa.Double, nullable=False),
    sa.Column("regime_bearish_threshold", sa.Double, nullable=False),
    sa.Column("risk_high_threshold", sa.Double, nullable=False),
    sa.Column("risk_medium_threshold", sa.Double, nullable=False),
    sa.Column("max_drawdown_tolerance", sa.Double, nullable=False),
    sa.Column("min_sharpe_target", sa.Double, nullable=False),
    sa.Column("allocation_low_risk", sa.Double, nullable=False),
    sa.Column("allocation_medium_risk", sa.Double, nullable=False),
    sa.Column("allocation_high_risk", sa.Double, nullable=False),
    sa.Column("allocation_neutral", sa.Double, nullable=False),
    sa.Column("sell_percentage", sa.Double, nullable=False),
    sa.Column("momentum_weight", sa.Double, nullable=False),
    sa.Column("price_momentum_weight", sa.Double, nullable=False),
    # Revision 0002: the values older versions decided with are the server defaults.
    sa.Column("cash_deploy_rate", sa.Double, nullable=False, server_default="0"),
    sa.Column("sell_trigger", sa.String(16), nullable=False, server_default="every_session"),
    # Revision 0005: fill costs; older versions filled at the open with no commission.
    sa.Column("slippage_bps", sa.Double, nullable=False, server_default="0"),
    sa.Column("commission_per_order", sa.Double, nullable=False, server_default="0"),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("notes", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates_ordered"),
)
# At most one active (open-ended) version: a unique index over a constant, on the active rows only.
sa.Index(
    "uq_trading_config_one_active",
    sa.text("(end_date IS NULL)"),
    unique=True,
    sqlite_where=sa.text("end_date IS NULL"),
    postgresql_where=sa.text("end_date IS NULL"),
)

daily_signals = sa.Table(
    "daily_signals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("trade_date", sa.Date, nullable=False, unique=True),
    sa.Column("model_type", sa.String(32), nullable=False),
    sa.Column("action", sa.String(8), nullable=False),
    sa.Column("confidence_score", sa.Double, nullable=False),
    sa.Column("allocations", sa.JSON, nullable=False),
    sa.Column("features_used", sa.JSON, nullable=False),
    sa.Column(
        "config_id", sa.Integer, sa.ForeignKey("trading_config.id"), nullable=False, index=True
    ),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("action IN ('BUY', 'SELL', 'HOLD')", name="action_known"),
)

trades = sa.Table(
    "trades",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("trade_date", sa.Date, nullable=False, index=True),
    sa.Column("symbol", sa.String(16), nullable=False),
    sa.Column("action", sa.String(8), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # What the signal ordered: dollars for a BUY, shares for a SELL.
    sa.Column("ordered_amount", Money, nullable=True),
    sa.Column("ordered_quantity", sa.Double, nullable=True),
    # The fill, once the open of trade_date is known.
    sa.Column("quantity", sa.Double, nullable=True),
    sa.Column("price", Money, nullable=True),
    sa.Column("amount", Money, nullable=True),
    sa.Column("realized_pnl", Money, nullable=True),
    # Revision 0005: the commission the fill paid (in its cash entry, not in amount).
    sa.Column("commission", Money, nullable=True),
    sa.Column("signal_id", sa.Integer, sa.ForeignKey("daily_signals.id"), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("filled_at", sa.DateTime(timezone=True), nullable=True),
    # Revision 0006: an order sent to a broker. Its client_order_id is deterministic (trade date,
    # signal, symbol) and unique, the broker's own id and status are copied from the broker, and
    # broker_reason keeps a rejection's or a partial fill's explanation.
    sa.Column("client_order_id", sa.String(48), nullable=True),
    sa.Column("broker_order_id", sa.String(64), nullable=True),
    sa.Column("broker_status", sa.String(32), nullable=True),
    sa.Column("broker_reason", sa.Text, nullable=True),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("signal_id", "symbol", name="uq_trades_signal_symbol"),
    sa.CheckConstraint("action IN ('BUY', 'SELL')", name="action_known"),
    sa.CheckConstraint("status IN ('pending', 'filled', 'cancelled')", name="status_known"),
)

sa.Index("uq_trades_client_order_id", trades.c.client_order_id, unique=True)

portfolio = sa.Table(
    "portfolio",
    metadata,
    sa.Column("symbol", sa.String(16), primary_key=True),
    sa.Column("quantity", sa.Double, nullable=False),
    sa.Column("avg_cost", Money, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("quantity > 0", name="quantity_positive"),
)

cash_ledger = sa.Table(
    "cash_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("entry_date", sa.Date, nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("balance", Money, nullable=False),
    # A stable reference per economic event ("deposit:2025-01-02", "trade:17"): re-runs cannot
    # record an event twice.
    sa.Column("ref", sa.String(64), nullable=False, unique=True),
    sa.Column("trade_id", sa.Integer, sa.ForeignKey("trades.id"), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('deposit', 'buy', 'sell', 'adjustment')", name="kind_known"),
    sa.CheckConstraint("balance >= -0.005", name="cash_not_negative"),
)

# The portfolio marked to market at the close of each session it was valued on.
valuations = sa.Table(
    "valuations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("valuation_date", sa.Date, nullable=False, unique=True),
    sa.Column("cash", Money, nullable=False),
    sa.Column("positions_value", Money, nullable=False),
    sa.Column("total_value", Money, nullable=False),
    sa.Column("cumulative_deposits", Money, nullable=False),
    sa.Column("positions", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# One row whose update every change to the book (ledger, orders, positions, valuations) makes
# first: the writers of the book take turns (revision 0003; see ledger.lock_book).
book_lock = sa.Table(
    "book_lock",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger, nullable=False),
)

# The broker account the book trades in, and where it stood before the first order (revision
# 0006): the account may hold cash and shares that are not the strategy's.
broker_accounts = sa.Table(
    "broker_accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("broker", sa.String(32), nullable=False),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("endpoint", sa.String(255), nullable=False),
    sa.Column("live", sa.Boolean, nullable=False),
    sa.Column("baseline_cash", Money, nullable=False),
    sa.Column("baseline_positions", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("broker", "account", name="uq_broker_accounts_broker"),
)

# Each trade date's reconciliation with the broker (a re-run replaces it): what the health check
# reads. positions_diff maps a symbol to {"book": shares, "broker": shares} where they differ.
broker_reconciliations = sa.Table(
    "broker_reconciliations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("trade_date", sa.Date, nullable=False, unique=True),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("broker", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("fills", sa.Integer, nullable=False),
    sa.Column("open_orders", sa.Integer, nullable=False),
    sa.Column("positions_diff", sa.JSON, nullable=False),
    sa.Column("expected_cash", Money, nullable=True),
    sa.Column("broker_cash", Money, nullable=True),
    sa.Column("cash_difference", Money, nullable=True),
    sa.Column("buying_power", Money, nullable=True),
    sa.Column("daily_capital", Money, nullable=True),
    sa.Column("detail", sa.Text, nullable=False),
    sa.CheckConstraint("status IN ('ok', 'mismatch', 'incomplete')", name="status_known"),
)

job_runs = sa.Table(
    "job_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("job", sa.String(32), nullable=False),
    sa.Column("trade_date", sa.Date, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("notebook_path", sa.Text, nullable=True),
    sa.Column("html_path", sa.Text, nullable=True),
    sa.Column("md_path", sa.Text, nullable=True),
    sa.Column("git_commit", sa.String(64), nullable=True),
    sa.Column("parameters", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # Who runs it (a run whose process is gone is abandoned) and the archived notebook's digest.
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("host", sa.String(255), nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.CheckConstraint(
        "status IN ('running', 'succeeded', 'failed', 'skipped', 'abandoned')",
        name="status_known",
    ),
    sa.Index("ix_job_runs_job_trade_date", "job", "trade_date"),
)
