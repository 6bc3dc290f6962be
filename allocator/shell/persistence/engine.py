"""Engines for SQLite (the embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from allocator.exceptions import DatabaseError
from allocator.shell.settings import mask_url


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _on_sqlite_connect(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, **kwargs) -> sa.Engine:
    """An engine for ``url``; an SQLite file's folder is created if missing."""
    try:
        parsed = make_url(url)
    except Exception:
        raise DatabaseError(f"DATABASE_URL {mask_url(url)!r} is not a valid database URL") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, **kwargs)
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    try:
        return sa.create_engine(parsed, pool_pre_ping=True, **kwargs)
    except ModuleNotFoundError as exc:
        raise DatabaseError(
            f"no driver for {mask_url(url)!r} ({exc.name} is not installed)"
        ) from None


def connect(engine: sa.Engine) -> sa.Connection:
    """Open a connection, turning 'cannot connect' into a one-line :class:`DatabaseError`."""
    try:
        return engine.connect()
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(
            f"cannot connect to {mask_url(engine.url.render_as_string(hide_password=True))}: "
            f"{reason}; check DATABASE_URL and that the server is running"
        ) from None
