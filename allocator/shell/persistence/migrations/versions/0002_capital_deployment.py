"""Capital deployment: ``cash_deploy_rate`` and ``sell_trigger`` on every config version.

Versions stored before this revision get the values that reproduce how they decided
(``cash_deploy_rate = 0``: only a share of the day's capital is bought; ``sell_trigger =
every_session``: every bearish session sells), so their past signals can be re-decided exactly.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild on SQLite): the values are validated by TradingConfig,
    # like every other parameter of the table.
    op.add_column(
        "trading_config",
        sa.Column("cash_deploy_rate", sa.Double, nullable=False, server_default="0"),
    )
    op.add_column(
        "trading_config",
        sa.Column("sell_trigger", sa.String(16), nullable=False, server_default="every_session"),
    )


def downgrade() -> None:
    # SQLite (3.35+) drops a plain column in place; a batch rebuild of the table would fail on
    # the foreign keys of the signals that reference it.
    for column in ("sell_trigger", "cash_deploy_rate"):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE trading_config DROP COLUMN {column}")
        else:
            op.drop_column("trading_config", column)
