"""Backups of the database and their restore, each backup checked by its SHA-256 checksum.

PostgreSQL is dumped with ``pg_dump --format=custom``; SQLite is copied with SQLite's online
backup API, a consistent snapshot even while a job writes. A backup is written under a temporary
name (mode 0600, in a folder created 0700), renamed to ``capital_allocator_<UTC stamp>.dump`` or
``.sqlite3`` only once complete, and its checksum is written beside it as ``FILE.sha256`` in
``sha256sum`` format. Each backup run then deletes this tool's backups older than
:data:`RETENTION_DAYS` in that folder (files named by its own pattern only, never the new one).

A restore verifies the checksum first, refuses a target that holds rows unless forced, and
replaces the target's contents in one transaction: a restore that fails leaves the target as it
was. The target ends at the schema revision stored in the backup. It holds the database's lock
exclusively from before it counts the target's rows until it is done
(:func:`~allocator.shell.persistence.runlock.restore_lock`): it waits for live runs (``wait``
seconds) or refuses them, and no run starts meanwhile.

A password never appears on a command line: the PostgreSQL client programs get the connection
in ``PG*`` variables of their own environment, and every message shows the URL masked.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from allocator.exceptions import DatabaseError
from allocator.shell.digest import sha256_of
from allocator.shell.persistence.engine import (
    connect,
    create_private_file,
    make_engine,
    make_private_folder,
)
from allocator.shell.persistence.migrate import current_revision
from allocator.shell.persistence.runlock import restore_lock
from allocator.shell.settings import mask_url

RETENTION_DAYS = 30
BACKUP_PREFIX = "capital_allocator_"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
EXTENSIONS = {"postgresql": ".dump", "sqlite": ".sqlite3"}
#: The first bytes of a pg_dump custom-format archive and of an SQLite database file.
MAGIC = {"postgresql": b"PGDMP", "sqlite": b"SQLite format 3\x00"}
#: Tables a freshly migrated database already fills: they do not make a target "non-empty".
BOOKKEEPING_TABLES = frozenset({"alembic_version", "book_lock"})
#: Where the PostgreSQL client programs are looked for after ``PATH`` (Debian's layout).
PG_BIN_DIRS = ("/usr/bin", "/usr/lib/postgresql/*/bin")

_NAME = re.compile(
    rf"^{BACKUP_PREFIX}(?P<stamp>\d{{8}}T\d{{6}}Z)(?:_\d+)?(?:\.dump|\.sqlite3)(?:\.sha256)?$"
)
_CHECKSUM_LINE = re.compile(r"^(?P<digest>[0-9a-fA-F]{64}) [ *](?P<name>.+)$")
#: libpq settings a database URL may carry in its query string, and their environment variables.
_PG_QUERY_VARIABLES = {
    "host": "PGHOST",
    "port": "PGPORT",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


class BackupError(DatabaseError):
    """A backup or a restore failed; the database was left as it was."""


class RestoreRefused(BackupError):
    """A restore refused before anything was changed: the wrong file, or a non-empty target."""


@dataclass(frozen=True)
class Backup:
    """A backup just written: its file, size in bytes, SHA-256, and the old backups removed."""

    path: Path
    size: int
    sha256: str
    removed: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Restore:
    """A restore done: the file, the rows the target held before, its revision now."""

    path: Path
    replaced_rows: int
    revision: str | None


def backend_of(database_url: str) -> str:
    """``postgresql`` or ``sqlite`` (a file), else a one-line :class:`BackupError`."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite" and (not url.database or url.database == ":memory:"):
        raise BackupError(
            "DATABASE_URL is an in-memory SQLite database: there is no file to back up"
        )
    if backend not in EXTENSIONS:
        raise BackupError(
            f"DATABASE_URL {mask_url(database_url)!r} is a {backend} database: backup and "
            "restore support PostgreSQL and SQLite"
        )
    return backend


def stamp_of(path: Path) -> dt.datetime | None:
    """The UTC time in the name of one of this tool's backups (or checksums), else None."""
    match = _NAME.match(path.name)
    if not match:
        return None
    return dt.datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=dt.UTC)


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def write_checksum(path: Path) -> str:
    """Write ``path``'s SHA-256 to ``path.sha256`` (mode 0600) as ``sha256sum`` does; return it."""
    digest = sha256_of(path)
    target = checksum_path(path)
    create_private_file(target)
    target.write_text(f"{digest}  {path.name}\n")
    return digest


def verify_checksum(path: Path) -> str:
    """Check ``path`` against ``path.sha256``; a missing or different checksum is refused."""
    target = checksum_path(path)
    if not target.is_file():
        raise BackupError(
            f"{target} is missing, so {path.name} cannot be verified: restore a backup made by "
            f"`allocator db backup`, or, if you trust this file, run `sha256sum {path.name} > "
            f"{target.name}` in its folder first"
        )
    match = _CHECKSUM_LINE.match(target.read_text().strip())
    if not match or Path(match["name"]).name != path.name:
        raise BackupError(f"{target} is not a sha256sum line for {path.name}: nothing restored")
    digest = sha256_of(path)
    if digest != match["digest"].lower():
        raise BackupError(
            f"{path} does not match its checksum {target.name} (the file is damaged or was "
            "changed): nothing restored; restore an earlier backup"
        )
    return digest


def prune_backups(folder: Path, now: dt.datetime, keep: Path) -> list[Path]:
    """Delete this tool's backups (and checksums) in ``folder`` older than the retention.

    Only files named like ``capital_allocator_<UTC stamp>.dump|.sqlite3[.sha256]`` are candidates,
    their age is the stamp in the name, and ``keep`` (the backup just made) is never deleted.
    Returns the backups deleted, oldest first.
    """
    cutoff = now - dt.timedelta(days=RETENTION_DAYS)
    removed = []
    for path in sorted(folder.iterdir()):
        stamp = stamp_of(path)
        if stamp is None or stamp >= cutoff or path in (keep, checksum_path(keep)):
            continue
        if path.is_file() and not path.is_symlink():
            path.unlink()
            if path.suffix != ".sha256":
                removed.append(path)
    return removed


def _free_name(folder: Path, backend: str, now: dt.datetime) -> Path:
    """The backup's file name: the UTC stamp, with ``_N`` when a backup of that second exists."""
    stem = f"{BACKUP_PREFIX}{now.astimezone(dt.UTC).strftime(STAMP_FORMAT)}"
    for n in range(1000):
        name = f"{stem}{f'_{n}' if n else ''}{EXTENSIONS[backend]}"
        if not (folder / name).exists() and not (folder / f".{name}.partial").exists():
            return folder / name
    raise BackupError(f"{folder} already holds 1000 backups of {stem}: clean it up")


def backup_database(database_url: str, folder: Path, *, now: dt.datetime | None = None) -> Backup:
    """Back up the database at ``database_url`` into ``folder``; then apply the retention."""
    backend = backend_of(database_url)
    now = now or dt.datetime.now(dt.UTC)
    folder = Path(folder).expanduser().resolve()
    try:
        make_private_folder(folder)
        final = _free_name(folder, backend, now)
        partial = folder / f".{final.name}.partial"
        create_private_file(partial)
    except OSError as exc:
        raise BackupError(f"cannot write to the backup folder {folder}: {exc.strerror}") from None
    try:
        if backend == "postgresql":
            _pg_dump(database_url, partial)
        else:
            _sqlite_copy(Path(make_url(database_url).database).expanduser(), partial)
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    digest = write_checksum(final)
    removed = prune_backups(folder, now, keep=final)
    return Backup(final, final.stat().st_size, digest, tuple(removed))


def _sqlite_copy(source: Path, target: Path, *, check: bool = False) -> None:
    """Copy ``source`` into ``target`` page by page in one step (one consistent snapshot)."""
    if not source.is_file():
        raise BackupError(f"the SQLite database {source} does not exist: check DATABASE_URL")
    try:
        with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as src:
            if check and src.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise BackupError(f"{source} fails SQLite's integrity check: nothing restored")
            with closing(sqlite3.connect(target, timeout=30)) as dst:
                src.backup(dst)
    except sqlite3.Error as exc:
        raise BackupError(f"copying {source} to {target} failed: {exc}") from None


def find_pg_binary(name: str) -> str:
    """The path of PostgreSQL's ``name`` program: on ``PATH``, else in :data:`PG_BIN_DIRS`."""
    found = shutil.which(name)
    if found:
        return found
    for pattern in PG_BIN_DIRS:
        # The newest installed major version first: it reads dumps of every older server.
        candidates = sorted(glob.glob(os.path.join(pattern, name)), key=_version_key, reverse=True)
        for candidate in candidates:
            if os.access(candidate, os.X_OK):
                return candidate
    raise BackupError(
        f"{name} not found on PATH, in /usr/bin or /usr/lib/postgresql/*/bin: install the "
        "PostgreSQL client programs (e.g. apt-get install postgresql-client)"
    )


def _version_key(path: str) -> int:
    """The major version in ``/usr/lib/postgresql/<major>/bin/...`` (0 elsewhere)."""
    match = re.search(r"/postgresql/(\d+)/", path)
    return int(match.group(1)) if match else 0


def _pg_environment(database_url: str) -> dict[str, str]:
    """The child's environment: this one plus the URL as ``PG*`` variables (the password too)."""
    url = make_url(database_url)
    env = dict(os.environ)
    for key, variable in _PG_QUERY_VARIABLES.items():
        value = url.query.get(key)
        if isinstance(value, str) and value:
            env[variable] = value
    parts = {
        "PGHOST": url.host,
        "PGPORT": url.port,
        "PGUSER": url.username,
        "PGDATABASE": url.database,
        "PGPASSWORD": url.password,
    }
    env.update({name: str(value) for name, value in parts.items() if value not in (None, "")})
    return env


def _run_client(database_url: str, args: list[str], what: str) -> None:
    """Run a PostgreSQL client program; its failure becomes one masked line."""
    result = subprocess.run(
        args,
        env=_pg_environment(database_url),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = next((line for line in lines if "error" in line.lower()), None)
        reason = (reason or (lines[0] if lines else f"exit code {result.returncode}")).split(
            "error: ", 1
        )[-1]
        password = make_url(database_url).password
        if password:
            reason = reason.replace(str(password), "***")
        raise BackupError(f"{what} of {mask_url(database_url)} failed: {mask_url(reason)}")


def _pg_dump(database_url: str, target: Path) -> None:
    args = [find_pg_binary("pg_dump"), "--format=custom", "--no-password", f"--file={target}"]
    _run_client(database_url, args, "pg_dump")


def table_row_counts(conn: sa.Connection) -> dict[str, int]:
    """Rows in each table of the database's default schema, bookkeeping tables left out."""
    names = sa.inspect(conn).get_table_names()
    return {
        name: conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one()
        for name in sorted(names)
        if name not in BOOKKEEPING_TABLES and not name.startswith("sqlite_")
    }


def _drop_statements(conn: sa.Connection) -> list[str]:
    """SQL that empties the default schema: its views, tables and free sequences."""
    inspector = sa.inspect(conn)
    quote = conn.dialect.identifier_preparer.quote
    out = [f"DROP VIEW IF EXISTS {quote(v)} CASCADE;" for v in inspector.get_view_names()]
    out += [f"DROP TABLE IF EXISTS {quote(t)} CASCADE;" for t in inspector.get_table_names()]
    out += [f"DROP SEQUENCE IF EXISTS {quote(s)} CASCADE;" for s in inspector.get_sequence_names()]
    return out


def backup_kind(path: Path) -> str | None:
    """``postgresql`` or ``sqlite`` by the file's first bytes, else None."""
    with path.open("rb") as handle:
        head = handle.read(16)
    return next((kind for kind, magic in MAGIC.items() if head.startswith(magic)), None)


def _check_restorable(database_url: str, path: Path) -> str:
    """The backend, once ``path`` is a verified backup of the same kind as the target."""
    backend = backend_of(database_url)
    if not path.is_file():
        raise RestoreRefused(f"{path} does not exist: give a file written by `allocator db backup`")
    kind = backup_kind(path)
    if kind is None:
        raise RestoreRefused(
            f"{path} is not a backup made by `allocator db backup` (neither a pg_dump "
            "custom-format archive nor an SQLite database)"
        )
    if kind != backend:
        raise RestoreRefused(
            f"{path} is a {kind} backup but DATABASE_URL {mask_url(database_url)} is {backend}: "
            f"restore it into a {kind} database"
        )
    verify_checksum(path)
    return backend


def restore_database(
    database_url: str, path: Path, *, force: bool = False, wait: float = 0.0
) -> Restore:
    """Replace the contents of the database at ``database_url`` with the backup ``path``.

    Refused (:class:`RestoreRefused`, nothing changed) when ``path`` is not a verified backup of
    the target's engine, or when the target holds rows and ``force`` is false; refused with
    :class:`~allocator.shell.persistence.runlock.DatabaseInUse` when runs are still live after
    ``wait`` seconds.
    """
    path = Path(path).expanduser().resolve()
    backend = _check_restorable(database_url, path)
    locks = make_engine(database_url)  # its own engine: the target's is disposed on the way
    try:
        _rows_to_replace(locks, backend, force)  # a usage error comes before any waiting
        with restore_lock(locks, wait):
            return _restore_locked(database_url, path, backend, force)
    finally:
        locks.dispose()


def _rows_to_replace(engine: sa.Engine, backend: str, force: bool) -> tuple[int, list[str]]:
    """The target's rows and the SQL that drops its tables; refused when it holds rows unforced.

    A missing SQLite file is created on the way, so that it can be locked.
    """
    with connect(engine) as conn:
        counts = table_row_counts(conn)
        drops = _drop_statements(conn) if backend == "postgresql" else []
    rows = sum(counts.values())
    if rows and not force:
        filled = sum(1 for n in counts.values() if n)
        raise RestoreRefused(
            f"database {mask_url(engine.url.render_as_string(hide_password=True))} is not "
            f"empty ({rows} rows in {filled} tables): a restore replaces everything in it; add "
            "--force if you mean it (`allocator db backup` keeps a copy of it first)"
        )
    return rows, drops


def _restore_locked(database_url: str, path: Path, backend: str, force: bool) -> Restore:
    engine = make_engine(database_url)
    try:
        rows, drops = _rows_to_replace(engine, backend, force)
        engine.dispose()
        if backend == "postgresql":
            _pg_restore(database_url, path, drops)
        else:
            target = Path(make_url(database_url).database).expanduser()
            _sqlite_copy(path, target, check=True)
        return Restore(path, rows, current_revision(engine))
    finally:
        engine.dispose()


def _pg_restore(database_url: str, path: Path, drops: list[str]) -> None:
    """Drop the target's tables and load the dump, in one transaction (psql --single-transaction).

    pg_restore first turns the archive into SQL, completely, so a damaged archive is found
    before the target is touched; psql then runs the drops and that SQL, and rolls everything
    back on the first error.
    """
    with tempfile.TemporaryDirectory(prefix="allocator-restore-") as scratch:
        script, drop_file = Path(scratch) / "restore.sql", Path(scratch) / "drop.sql"
        create_private_file(drop_file)
        drop_file.write_text("\n".join(drops) + "\n")
        create_private_file(script)
        to_sql = [find_pg_binary("pg_restore"), "--no-owner", "--no-privileges", f"--file={script}"]
        _run_client(database_url, [*to_sql, str(path)], "pg_restore")
        load = [find_pg_binary("psql"), "--no-psqlrc", "--quiet", "--no-password"]
        load += ["--set=ON_ERROR_STOP=1", "--single-transaction"]
        load += [f"--file={drop_file}", f"--file={script}"]
        _run_client(database_url, load, "restore")
