"""Engines for SQLite (the embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from allocator.exceptions import DatabaseError
from allocator.shell.guard import guard_engine
from allocator.shell.settings import mask_url


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _on_sqlite_connect(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents with mode 0700; existing folders are left as is."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:  # created meanwhile by another process: theirs to keep
            continue
        os.chmod(path, 0o700)  # whatever the umask


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 (its folder 0700 if new); False when it exists."""
    make_private_folder(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    os.close(descriptor)
    os.chmod(path, 0o600)
    return True


def make_engine(url: str, **kwargs) -> sa.Engine:
    """An engine for ``url``; a new SQLite file is created 0600 (a new folder 0700) first.

    The file holds the whole book, so nobody but its owner may read it. An empty file is an
    empty SQLite database; SQLite gives its journal files the database file's mode.
    """
    try:
        parsed = make_url(url)
    except Exception:
        raise DatabaseError(f"DATABASE_URL {mask_url(url)!r} is not a valid database URL") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.query.get("uri"):
            create_private_file(Path(parsed.database).expanduser())
        engine = sa.create_engine(parsed, **kwargs)
        sa.event.listen(engine, "connect", _on_sqlite_connect)
        guard_engine(engine)  # in a job's kernel: commit only while its runner lives
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=True, **kwargs)
        guard_engine(engine)
        return engine
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


#: Words of a driver's message, and what to do about that kind of failure.
_DATABASE_FAULTS = (
    (
        ("read-only", "readonly"),
        "make it writable: the file and its folder for this user, or "
        "the server's read-only setting (default_transaction_read_only)",
    ),
    (("disk is full", "no space", "could not extend", "disk full"), "free space on its disk"),
    (
        ("database is locked", "lock timeout", "could not obtain lock"),
        "another process holds it: wait for that process, then run the command again",
    ),
)


def describe_database_error(url: str, exc: BaseException) -> str:
    """One line for a database command that failed: the URL (masked), the driver's reason, a fix.

    SQLAlchemy's message is the statement, every bound parameter and a link, 20 to 60 lines
    for one full or read-only database; the driver's first line says it all: ``attempt to
    write a readonly database``, ``database or disk is full``, ``database is locked``,
    ``cannot execute INSERT in a read-only transaction``.
    """
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    reason = lines[0].strip() if lines else type(original).__name__
    fix = "check DATABASE_URL, the database's permissions and its disk"
    for words, advice in _DATABASE_FAULTS:
        if any(word in reason.lower() for word in words):
            fix = advice
            break
    return f"cannot write to the database {mask_url(url)}: {reason}; {fix}"
