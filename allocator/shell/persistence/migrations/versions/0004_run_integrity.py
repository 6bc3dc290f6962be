"""Run integrity: who runs a job (``pid``, ``host``), the archive's ``sha256``, ``abandoned`` runs.

A run whose runner process is gone is marked ``abandoned`` (by the next run or by ``allocator runs
--repair``) instead of staying ``running`` forever; the SHA-256 of the archived notebook lets
``allocator runs --verify`` and the review notebook tell an edited or deleted artifact.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OLD = "status IN ('running', 'succeeded', 'failed', 'skipped')"
NEW = "status IN ('running', 'succeeded', 'failed', 'skipped', 'abandoned')"


def _rebuild(check: str, add: bool, old_name: str, new_name: str) -> None:
    # SQLite cannot alter a CHECK constraint in place: batch mode copies the table (nothing
    # references job_runs, so the copy is safe); PostgreSQL alters the table in place. Revision
    # 0001 named the constraint through the naming convention twice, hence the doubled prefix.
    with op.batch_alter_table("job_runs") as batch:
        batch.drop_constraint(op.f(f"ck_job_runs_{old_name}"), type_="check")
        batch.create_check_constraint(new_name, check)
        if add:
            batch.add_column(sa.Column("pid", sa.Integer, nullable=True))
            batch.add_column(sa.Column("host", sa.String(255), nullable=True))
            batch.add_column(sa.Column("sha256", sa.String(64), nullable=True))
        else:
            batch.drop_column("sha256")
            batch.drop_column("host")
            batch.drop_column("pid")


def upgrade() -> None:
    _rebuild(NEW, add=True, old_name="ck_job_runs_status_known", new_name="status_known")


def downgrade() -> None:
    op.execute("UPDATE job_runs SET status = 'failed' WHERE status = 'abandoned'")
    _rebuild(OLD, add=False, old_name="status_known", new_name="ck_job_runs_status_known")
