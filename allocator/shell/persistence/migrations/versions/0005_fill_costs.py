"""Fill costs: ``slippage_bps`` and ``commission_per_order`` on every config version, and the
commission each trade paid.

Versions stored before this revision fill at the open itself with no commission (both 0, the
server defaults), so their past fills are reproduced exactly.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CONFIG_COLUMNS = ("slippage_bps", "commission_per_order")


def upgrade() -> None:
    # Plain ADD COLUMN, as in revision 0002: no table rebuild on SQLite.
    for column in CONFIG_COLUMNS:
        op.add_column(
            "trading_config", sa.Column(column, sa.Double, nullable=False, server_default="0")
        )
    op.add_column("trades", sa.Column("commission", sa.Double, nullable=True))


def _drop(table: str, column: str) -> None:
    # SQLite (3.35+) drops a plain column in place; a batch rebuild would trip on the foreign
    # keys that reference these tables.
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)


def downgrade() -> None:
    _drop("trades", "commission")
    for column in reversed(CONFIG_COLUMNS):
        _drop("trading_config", column)
