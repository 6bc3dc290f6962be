"""One run per job and trade date: a lock the runner holds for the whole run.

- **PostgreSQL:** a session-level advisory lock, on a connection the runner keeps open for the
  run. The server releases it when that connection closes, so also when the runner dies. The
  connection's ``application_name`` carries the holder's PID and host, so a refused run can name
  it (with the time the holder connected). Advisory locks belong to one database of the server,
  however the URL spells it.
- **SQLite:** an exclusive ``flock`` on a lock file in a folder named by the database file's
  identity (device and inode), not by the path it was opened by: a hard link, a symlink or
  ``./x/../db.sqlite3`` reach the same locks. The folder is ``/run/lock/capital-allocator/
  sqlite-<device>-<inode>/`` (the system's lock folder, emptied at boot), or the same under the
  temporary folder where ``/run/lock`` is not writable. The operating system releases a ``flock``
  when the runner dies. The holder writes its PID, host and start time into the file.

Both are released by the death of the process that holds them, which is what makes a ``running``
row with a free lock an abandoned run (:func:`lock_is_free`).

Every run also holds the database's own lock, shared (:data:`DATABASE_LOCK`): runs of different
jobs and dates go on together, but ``allocator db restore`` takes it exclusively
(:func:`restore_lock`), so a restore waits for, or refuses, live runs, and a run does not start
while a restore replaces the database (:class:`RestoreInProgress`, exit 75).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import stat
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import sqlalchemy as sa

from allocator.exceptions import AllocatorError, DatabaseError

#: The first key of every advisory lock this project takes ("ALLC"), so they cannot collide with
#: another application's locks in the same database.
LOCK_NAMESPACE = 0x414C4C43
#: The lock every run holds shared and a restore holds exclusively.
DATABASE_LOCK = "database"
#: The system's folder for lock files (FHS); the temporary folder when it is not writable.
SYSTEM_LOCK_DIR = Path("/run/lock")
LOCK_FOLDER = "capital-allocator"
#: Seconds between a waiting restore's attempts at the database's lock.
RESTORE_POLL = 0.25


@dataclass(frozen=True)
class Holder:
    """Who holds a run lock: the runner's PID, its host and since when (None when unknown)."""

    pid: int | None
    host: str | None
    since: dt.datetime | None

    def describe(self) -> str:
        who = f"PID {self.pid}" if self.pid else "an unknown process"
        where = f" on {self.host}" if self.host else ""
        when = f", started {self.since:%Y-%m-%d %H:%M:%S %Z}".rstrip() if self.since else ""
        return f"{who}{where}{when}"


#: Makes the exception raised when a lock taken without waiting is held by ``Holder``.
Busy = Callable[[Holder], Exception]


class RunLocked(AllocatorError):
    """Another runner holds the lock of this job and trade date."""

    def __init__(self, job: str, trade_date: dt.date, holder: Holder) -> None:
        self.job, self.trade_date, self.holder = job, trade_date, holder
        super().__init__(
            f"{job} {trade_date} is already running: held by {holder.describe()}. "
            f"Wait for it, or if that process is gone run `allocator runs --repair`"
        )


class RestoreInProgress(RunLocked):
    """A database restore holds the database: no run starts until it is done."""

    def __init__(self, job: str, trade_date: dt.date, holder: Holder) -> None:
        self.job, self.trade_date, self.holder = job, trade_date, holder
        AllocatorError.__init__(
            self,
            f"{job} {trade_date} cannot start: a database restore is in progress "
            f"({holder.describe()}); run it again once the restore is done",
        )


class DatabaseInUse(AllocatorError):
    """Runs are live: a restore would replace the database under them."""

    def __init__(self, live: list[str], waited: float) -> None:
        self.live = live
        what = "; ".join(live) if live else "a run whose row is not recorded"
        after = f" after waiting {waited:g} s" if waited else ""
        super().__init__(
            f"the database is in use by live runs{after}: {what}. A restore would replace it "
            f"under them: wait for them (--wait SECONDS), or stop them first"
        )


class _Busy(Exception):
    """The lock is held elsewhere (internal: turned into a user's error by the caller)."""

    def __init__(self, holder: Holder) -> None:
        self.holder = holder


def this_holder() -> Holder:
    """This process as a lock holder."""
    return Holder(os.getpid(), socket.gethostname(), dt.datetime.now(dt.UTC))


def _key(name: str) -> int:
    """The advisory lock's second key: a signed 32-bit hash of the lock's name."""
    value = zlib.crc32(name.encode())
    return value - (1 << 32) if value >= 1 << 31 else value


def _run_name(job: str, trade_date: dt.date) -> str:
    return f"{job}-{trade_date.isoformat()}"


def _sqlite_file(engine: sa.Engine) -> Path:
    database = engine.url.database or ""
    if database.startswith("file:"):  # a URI filename (sqlite:///file:PATH?mode=ro&uri=true)
        database = database.removeprefix("file:").split("?", 1)[0]
    if not database or database == ":memory:":
        raise DatabaseError("a run lock needs a SQLite database file, not an in-memory database")
    return Path(database).expanduser()


def lock_root() -> Path:
    """The machine's folder of this project's lock folders (see the module docstring)."""
    base = SYSTEM_LOCK_DIR
    if not (base.is_dir() and os.access(base, os.W_OK | os.X_OK)):
        base = Path(tempfile.gettempdir())
    return base / LOCK_FOLDER


def _make_lock_root(root: Path) -> None:
    """Create ``root`` shared like ``/run/lock`` (any user, sticky), whatever the umask."""
    try:
        root.mkdir()
    except FileExistsError:
        return
    root.chmod(stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO | stat.S_ISVTX)


def sqlite_lock_dir(engine: sa.Engine) -> Path:
    """The lock folder of the SQLite file ``engine`` opens, named by its device and inode."""
    path = _sqlite_file(engine)
    try:
        identity = path.stat()  # follows symlinks: the file itself
    except OSError as exc:
        raise DatabaseError(
            f"cannot lock the SQLite database {path}: {exc.strerror}; check DATABASE_URL "
            f"(`allocator db upgrade` creates the database)"
        ) from None
    return lock_root() / f"sqlite-{identity.st_dev}-{identity.st_ino}"


@contextlib.contextmanager
def _sqlite_lock(
    engine: sa.Engine, name: str, busy: Busy | None, shared: bool = False
) -> Iterator[None]:
    folder = sqlite_lock_dir(engine)
    path = folder / f"{name}.lock"
    try:
        _make_lock_root(folder.parent)
        folder.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise DatabaseError(
            f"cannot create the run lock {path}: {exc.strerror}; {folder.parent} must be "
            f"writable by every user who runs jobs"
        ) from None
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode | (fcntl.LOCK_NB if busy else 0))
        except BlockingIOError:
            raise busy(_read_holder(fd)) from None
        if not shared:  # sharers would overwrite one another's record
            me = this_holder()
            record = {"pid": me.pid, "host": me.host, "since": me.since.isoformat()}
            record["database"] = str(_sqlite_file(engine))
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


def _read_holder(fd: int) -> Holder:
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
        since = dt.datetime.fromisoformat(record["since"]) if record.get("since") else None
        return Holder(record.get("pid"), record.get("host"), since)
    except (ValueError, TypeError, OSError):
        return Holder(None, None, None)


@contextlib.contextmanager
def _postgres_lock(
    engine: sa.Engine, name: str, busy: Busy | None, shared: bool = False
) -> Iterator[None]:
    me = this_holder()
    keys = {"a": LOCK_NAMESPACE, "b": _key(name)}
    kind = "_shared" if shared else ""  # pg_advisory_lock_shared & co.
    with engine.connect() as conn:
        conn.execute(
            sa.text("SELECT set_config('application_name', :name, false)"),
            {"name": f"allocator {me.pid}@{me.host}"[:63]},
        )
        if busy is None:
            conn.execute(sa.text(f"SELECT pg_advisory_lock{kind}(:a, :b)"), keys)
        elif not conn.execute(sa.text(f"SELECT pg_try_advisory_lock{kind}(:a, :b)"), keys).scalar():
            conn.commit()
            raise busy(_postgres_holder(conn, name))
        conn.commit()
        try:
            yield
        finally:
            with contextlib.suppress(sa.exc.DBAPIError):
                conn.execute(sa.text(f"SELECT pg_advisory_unlock{kind}(:a, :b)"), keys)
                conn.commit()


def _postgres_holder(conn: sa.Connection, name: str) -> Holder:
    row = conn.execute(
        sa.text(
            "SELECT a.application_name, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = CAST(:a AS oid) "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.objid = CAST(:b AS oid) AND l.objsubid = 2"
        ),
        {"a": LOCK_NAMESPACE, "b": _key(name) & 0xFFFFFFFF},
    ).first()
    conn.rollback()
    if row is None:
        return Holder(None, None, None)
    name, since = row
    pid, _, host = str(name or "").removeprefix("allocator ").partition("@")
    return Holder(int(pid) if pid.isdigit() else None, host or None, since)


@contextlib.contextmanager
def run_lock(engine: sa.Engine, job: str, trade_date: dt.date) -> Iterator[None]:
    """Hold the lock of ``job`` on ``trade_date``, and the database's shared, for the block.

    Raises
    ------
    RunLocked
        Another process holds it; the exception names it (:class:`Holder`).
    RestoreInProgress
        A database restore holds the database (a :class:`RunLocked` too).
    DatabaseError
        The lock cannot be taken (e.g. the lock folder is not writable).
    """
    with (
        _lock(engine, DATABASE_LOCK, partial(RestoreInProgress, job, trade_date), shared=True),
        _lock(engine, _run_name(job, trade_date), partial(RunLocked, job, trade_date)),
    ):
        yield


def _lock(
    engine: sa.Engine, name: str, busy: Busy | None, *, shared: bool = False
) -> contextlib.AbstractContextManager:
    backend = engine.dialect.name
    if backend == "postgresql":
        return _postgres_lock(engine, name, busy, shared)
    if backend == "sqlite":
        return _sqlite_lock(engine, name, busy, shared)
    raise DatabaseError(f"no lock for a {backend} database")  # pragma: no cover


@contextlib.contextmanager
def restore_lock(engine: sa.Engine, wait: float = 0.0) -> Iterator[None]:
    """Hold the database's lock exclusively for the block: no run is live, none starts.

    Tries again every :data:`RESTORE_POLL` seconds for ``wait`` seconds (0: once), then raises
    :class:`DatabaseInUse` naming the live runs. Trying rather than queueing keeps a waiting
    restore from blocking the runs it waits for (a run's kernel may take the lock too).
    """
    deadline = time.monotonic() + max(wait, 0.0)
    with contextlib.ExitStack() as held:
        while True:
            try:
                held.enter_context(_lock(engine, DATABASE_LOCK, _Busy))
                break
            except _Busy:
                if time.monotonic() >= deadline:
                    raise DatabaseInUse(_live_runs(engine), wait) from None
                time.sleep(RESTORE_POLL)
        yield


def _live_runs(engine: sa.Engine) -> list[str]:
    """``job date (run N, PID P on HOST)`` of each ``running`` row, for a refused restore."""
    from allocator.shell.persistence.jobruns import list_runs

    try:
        running = list_runs(engine, status="running")
    except sa.exc.DBAPIError:
        return []
    return [f"{r.job} {r.trade_date} (run {r.id}, PID {r.pid} on {r.host})" for r in running]


@contextlib.contextmanager
def writer_lock(engine: sa.Engine, name: str) -> Iterator[None]:
    """Wait for, then hold, the lock ``name`` (e.g. ``prices``): its writers take turns.

    Writers that each hold it for their whole work give the result of running them one after
    the other, never a mix of the two.
    """
    with _lock(engine, name, None):
        yield


def lock_is_free(engine: sa.Engine, job: str, trade_date: dt.date) -> bool:
    """True when nobody holds the lock of ``job`` on ``trade_date`` (it is taken and released)."""
    try:
        with run_lock(engine, job, trade_date):
            return True
    except RunLocked:
        return False
