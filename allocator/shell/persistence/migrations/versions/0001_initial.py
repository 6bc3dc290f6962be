"""Initial schema: prices, config versions, signals, trades, portfolio, cash, valuations, job runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "price_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("open", sa.Double, nullable=False),
        sa.Column("high", sa.Double, nullable=False),
        sa.Column("low", sa.Double, nullable=False),
        sa.Column("close", sa.Double, nullable=False),
        sa.Column("volume", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("fetched_at", TZ, nullable=False),
        sa.UniqueConstraint("symbol", "date", name="uq_price_history_symbol_date"),
        sa.CheckConstraint("low > 0 AND high >= low", name="ck_price_history_positive_range"),
    )
    op.create_table(
        "trading_config",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date, nullable=True),
        sa.Column("daily_capital", sa.Double, nullable=False),
        sa.Column("assets", sa.JSON, nullable=False),
        sa.Column("lookback_days", sa.Integer, nullable=False),
        *(
            sa.Column(name, sa.Double, nullable=False)
            for name in (
                "regime_bullish_threshold",
                "regime_bearish_threshold",
                "risk_high_threshold",
                "risk_medium_threshold",
                "max_drawdown_tolerance",
                "min_sharpe_target",
                "allocation_low_risk",
                "allocation_medium_risk",
                "allocation_high_risk",
                "allocation_neutral",
                "sell_percentage",
                "momentum_weight",
                "price_momentum_weight",
            )
        ),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("notes", sa.Text, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.CheckConstraint(
            "end_date IS NULL OR end_date >= start_date", name="ck_trading_config_dates_ordered"
        ),
    )
    op.create_index(
        "uq_trading_config_one_active",
        "trading_config",
        [sa.text("(end_date IS NULL)")],
        unique=True,
        sqlite_where=sa.text("end_date IS NULL"),
        postgresql_where=sa.text("end_date IS NULL"),
    )
    op.create_table(
        "daily_signals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("trade_date", sa.Date, nullable=False),
        sa.Column("model_type", sa.String(32), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("confidence_score", sa.Double, nullable=False),
        sa.Column("allocations", sa.JSON, nullable=False),
        sa.Column("features_used", sa.JSON, nullable=False),
        sa.Column(
            "config_id",
            sa.Integer,
            sa.ForeignKey("trading_config.id", name="fk_daily_signals_config_id_trading_config"),
            nullable=False,
        ),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("trade_date", name="uq_daily_signals_trade_date"),
        sa.CheckConstraint(
            "action IN ('BUY', 'SELL', 'HOLD')", name="ck_daily_signals_action_known"
        ),
    )
    op.create_index("ix_daily_signals_config_id", "daily_signals", ["config_id"])
    op.create_table(
        "trades",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("trade_date", sa.Date, nullable=False),
        sa.Column("symbol", sa.String(16), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ordered_amount", sa.Double, nullable=True),
        sa.Column("ordered_quantity", sa.Double, nullable=True),
        sa.Column("quantity", sa.Double, nullable=True),
        sa.Column("price", sa.Double, nullable=True),
        sa.Column("amount", sa.Double, nullable=True),
        sa.Column("realized_pnl", sa.Double, nullable=True),
        sa.Column(
            "signal_id",
            sa.Integer,
            sa.ForeignKey("daily_signals.id", name="fk_trades_signal_id_daily_signals"),
            nullable=False,
        ),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("filled_at", TZ, nullable=True),
        sa.UniqueConstraint("signal_id", "symbol", name="uq_trades_signal_symbol"),
        sa.CheckConstraint("action IN ('BUY', 'SELL')", name="ck_trades_action_known"),
        sa.CheckConstraint(
            "status IN ('pending', 'filled', 'cancelled')", name="ck_trades_status_known"
        ),
    )
    op.create_index("ix_trades_trade_date", "trades", ["trade_date"])
    op.create_table(
        "portfolio",
        sa.Column("symbol", sa.String(16), primary_key=True),
        sa.Column("quantity", sa.Double, nullable=False),
        sa.Column("avg_cost", sa.Double, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_portfolio_quantity_positive"),
    )
    op.create_table(
        "cash_ledger",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("entry_date", sa.Date, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.Double, nullable=False),
        sa.Column("balance", sa.Double, nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column(
            "trade_id",
            sa.Integer,
            sa.ForeignKey("trades.id", name="fk_cash_ledger_trade_id_trades"),
            nullable=True,
        ),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("ref", name="uq_cash_ledger_ref"),
        sa.CheckConstraint(
            "kind IN ('deposit', 'buy', 'sell', 'adjustment')", name="ck_cash_ledger_kind_known"
        ),
        sa.CheckConstraint("balance >= -0.005", name="ck_cash_ledger_cash_not_negative"),
    )
    op.create_index("ix_cash_ledger_entry_date", "cash_ledger", ["entry_date"])
    op.create_table(
        "valuations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("valuation_date", sa.Date, nullable=False),
        sa.Column("cash", sa.Double, nullable=False),
        sa.Column("positions_value", sa.Double, nullable=False),
        sa.Column("total_value", sa.Double, nullable=False),
        sa.Column("cumulative_deposits", sa.Double, nullable=False),
        sa.Column("positions", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("valuation_date", name="uq_valuations_valuation_date"),
    )
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job", sa.String(32), nullable=False),
        sa.Column("trade_date", sa.Date, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        sa.Column("notebook_path", sa.Text, nullable=True),
        sa.Column("html_path", sa.Text, nullable=True),
        sa.Column("md_path", sa.Text, nullable=True),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("parameters", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'skipped')",
            name="ck_job_runs_status_known",
        ),
    )
    op.create_index("ix_job_runs_job_trade_date", "job_runs", ["job", "trade_date"])


def downgrade() -> None:
    for table in (
        "job_runs",
        "valuations",
        "cash_ledger",
        "portfolio",
        "trades",
        "daily_signals",
        "trading_config",
        "price_history",
    ):
        op.drop_table(table)
