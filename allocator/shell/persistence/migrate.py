"""Alembic migrations, run programmatically so an installed package can migrate a database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from allocator.exceptions import DatabaseError
from allocator.shell.persistence.engine import connect

if TYPE_CHECKING:
    from allocator.shell.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with connect(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate to ``revision``; returns (revision before, revision after)."""
    before = current_revision(engine)
    with connect(engine) as conn, conn.begin():
        command.upgrade(alembic_config(conn), revision)
    return before, current_revision(engine)


def downgrade(engine: sa.Engine, revision: str) -> None:
    with connect(engine) as conn, conn.begin():
        command.downgrade(alembic_config(conn), revision)


def require_current(engine: sa.Engine) -> None:
    """Raise a clear error unless the database is migrated to the head revision."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        state = "not initialised" if current is None else f"at revision {current}, not {head}"
        raise DatabaseError(f"the database is {state}: run `allocator db upgrade`")


@contextlib.contextmanager
def migrated_engine(settings: Settings | None = None) -> Iterator[sa.Engine]:
    """An engine on ``DATABASE_URL`` that is migrated to head (else a clear error), disposed after.

    The jobs' notebook entry points (``run_fetch``, ``run_signal`` …) open their database here.
    """
    from allocator.shell.persistence.engine import make_engine
    from allocator.shell.settings import get_settings

    engine = make_engine((settings or get_settings()).database_url)
    try:
        require_current(engine)
        yield engine
    finally:
        engine.dispose()
