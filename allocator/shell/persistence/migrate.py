"""Alembic migrations, run programmatically so an installed package can migrate a database.

Checking that a database is current (:func:`require_current`, before every job) imports no
Alembic: the head revision is read from the migration files' ``revision`` / ``down_revision``
lines (:func:`head_revision`) and the database's from ``alembic_version`` with one query
(:func:`current_revision`). Alembic itself (~0.1 s of imports) is loaded only to migrate.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from allocator.exceptions import DatabaseError
from allocator.shell.persistence.engine import connect

if TYPE_CHECKING:
    from alembic.config import Config

    from allocator.shell.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Alembic's default version table, which ``migrations/env.py`` keeps.
VERSION_TABLE = "alembic_version"
_ASSIGNMENT = re.compile(
    r"^(revision|down_revision)\s*(?::[^=]+)?=\s*(None|[\"'][^\"']+[\"'])\s*$", re.MULTILINE
)


def alembic_config(connection: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def revisions_from_files(folder: Path = MIGRATIONS_DIR / "versions") -> dict[str, str | None]:
    """Each migration file's ``revision`` -> its ``down_revision`` (None for the first one).

    Read from the files' text, as ``alembic revision`` writes them (one string or None per
    line); a file it cannot read that way is left out, and :func:`head_revision` then asks
    Alembic.
    """
    graph: dict[str, str | None] = {}
    for path in sorted(folder.glob("*.py")):
        found = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
        if "revision" in found and "down_revision" in found:
            down = found["down_revision"]
            graph[found["revision"].strip("\"'")] = None if down == "None" else down.strip("\"'")
    return graph


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest migration's revision: the one no other migration follows.

    Taken from the migration files without importing Alembic (:func:`revisions_from_files`);
    when they do not make one chain with a single head (a merge, a file written by hand), from
    Alembic's ``ScriptDirectory``, which also reports a branched history.
    """
    graph = revisions_from_files()
    heads = set(graph) - set(graph.values())
    count = len(list((MIGRATIONS_DIR / "versions").glob("*.py")))
    if len(heads) == 1 and len(graph) == count:
        return heads.pop()
    return _alembic_head()


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at (``alembic_version``); None when it is not initialised."""
    with connect(engine) as conn:
        if not conn.dialect.has_table(conn, VERSION_TABLE):
            return None
        rows = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(rows) > 1:
        raise DatabaseError(
            f"the database records {len(rows)} revisions ({', '.join(sorted(rows))}) in "
            f"{VERSION_TABLE}: merge the migration branches, then run `allocator db upgrade`"
        )
    return rows[0] if rows else None


def upgrade(engine: sa.Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate to ``revision``; returns (revision before, revision after)."""
    from alembic import command

    before = current_revision(engine)
    with connect(engine) as conn, conn.begin():
        command.upgrade(alembic_config(conn), revision)
    return before, current_revision(engine)


def downgrade(engine: sa.Engine, revision: str) -> None:
    from alembic import command

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
