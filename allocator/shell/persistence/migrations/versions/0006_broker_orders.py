"""Orders at a broker: each trade's client and broker order ids, the broker's status and reason;
the account's starting point (``broker_accounts``) and each day's reconciliation with it.

A trade with a ``client_order_id`` was sent to a broker (``ALLOCATOR_BROKER=alpaca``): it fills
by reconciliation, at the broker's price, never at the bar's open. The id is unique: one order
per id, so a re-run finds the order it already placed instead of placing another.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TRADE_COLUMNS = (
    ("client_order_id", sa.String(48)),
    ("broker_order_id", sa.String(64)),
    ("broker_status", sa.String(32)),
    ("broker_reason", sa.Text),
    ("submitted_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    for name, type_ in TRADE_COLUMNS:
        op.add_column("trades", sa.Column(name, type_, nullable=True))
    op.create_index("uq_trades_client_order_id", "trades", ["client_order_id"], unique=True)
    op.create_table(
        "broker_accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("broker", sa.String(32), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(255), nullable=False),
        sa.Column("live", sa.Boolean, nullable=False),
        sa.Column("baseline_cash", sa.Double, nullable=False),
        sa.Column("baseline_positions", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("broker", "account", name="uq_broker_accounts_broker"),
    )
    op.create_table(
        "broker_reconciliations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("trade_date", sa.Date, nullable=False, unique=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("broker", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("fills", sa.Integer, nullable=False),
        sa.Column("open_orders", sa.Integer, nullable=False),
        sa.Column("positions_diff", sa.JSON, nullable=False),
        sa.Column("expected_cash", sa.Double, nullable=True),
        sa.Column("broker_cash", sa.Double, nullable=True),
        sa.Column("cash_difference", sa.Double, nullable=True),
        sa.Column("buying_power", sa.Double, nullable=True),
        sa.Column("daily_capital", sa.Double, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        # Named through the metadata's naming convention (ck_<table>_status_known).
        sa.CheckConstraint("status IN ('ok', 'mismatch', 'incomplete')", name="status_known"),
    )


def downgrade() -> None:
    op.drop_table("broker_reconciliations")
    op.drop_table("broker_accounts")
    op.drop_index("uq_trades_client_order_id", table_name="trades")
    for name, _ in reversed(TRADE_COLUMNS):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE trades DROP COLUMN {name}")
        else:
            op.drop_column("trades", name)
