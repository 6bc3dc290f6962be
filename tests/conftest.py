"""Shared fixtures: a fresh, migrated database on SQLite and on PostgreSQL for every DB test.

The PostgreSQL leg uses ``TEST_DATABASE_URL`` (a server URL; each test creates and drops its own
database there) or, when unset, ``postgresql://postgres@127.0.0.1:5432/postgres``. Without a
reachable server the PostgreSQL leg is skipped, unless ``ALLOCATOR_REQUIRE_POSTGRES=1`` (set by
``.ci/run``), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from allocator.shell.persistence import make_engine
from allocator.shell.persistence.migrate import upgrade
from tests.fakealpaca import fake_alpaca  # noqa: F401 - a fixture for every test module
from tests.faketiingo import fake_tiingo  # noqa: F401 - a fixture for every test module
from tests.fakevendor import fake_vendor  # noqa: F401 - a fixture for every test module

# The suite never reads a developer's .env: every test states the settings it needs.
os.environ["ALLOCATOR_DOTENV"] = "off"
APP_VARIABLES = (
    "DATABASE_URL",
    "ALPHAVANTAGE_API_KEY",
    "ALPHAVANTAGE_BASE_URL",
    "ALPHAVANTAGE_CALL_DELAY",
    "ALPHAVANTAGE_TIMEOUT",
    "ALPHAVANTAGE_MAX_RETRIES",
    "ALPHAVANTAGE_RETRY_BACKOFF",
    "TIINGO_API_KEY",
    "TIINGO_BASE_URL",
    "TIINGO_CALL_DELAY",
    "TIINGO_TIMEOUT",
    "TIINGO_MAX_RETRIES",
    "TIINGO_RETRY_BACKOFF",
    "DASK_SCHEDULER_ADDRESS",
    "ALLOCATOR_API_TOKEN",
    "ALLOCATOR_CORS_ORIGINS",
    "ALLOCATOR_QUOTE_SOURCE",
    "ALLOCATOR_RUNS_DIR",
    "ALLOCATOR_REPORTS_DIR",
    "ALLOCATOR_LOG_DIR",
    "ALERT_WEBHOOK_URL",
    "ALLOCATOR_BACKUP_DIR",
    "ALLOCATOR_JOB_TIMEOUT",
    "ALLOCATOR_RUNNER_PID",
    "ALLOCATOR_NOTEBOOKS_DIR",
    "ALLOCATOR_CELL_TIMEOUT",
    "ALLOCATOR_START_TIMEOUT",
    "ALLOCATOR_KERNEL",
    "ALLOCATOR_BROKER",
    "ALLOCATOR_BROKER_LIVE",
    "APCA_API_KEY_ID",
    "APCA_API_SECRET_KEY",
    "APCA_API_BASE_URL",
)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """No app variable leaks in from the shell; artifacts go to the test's own folders."""
    for name in APP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALLOCATOR_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("ALLOCATOR_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("ALLOCATOR_LOG_DIR", str(tmp_path / "log"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'default.sqlite3'}")


DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")


def pg_server_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG_URL


_pg_reachable: bool | None = None


def pg_unreachable_reason(url: str, exc: BaseException) -> str:
    """One short line for a skipped PostgreSQL test: where, and the driver's own reason.

    SQLAlchemy wraps the driver's error in several lines (the class, a hint, a link); a skip
    reason repeated for every PostgreSQL test should be just ``no PostgreSQL at HOST:PORT/DB:
    Connection refused``.
    """
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    reason = lines[0].rsplit(" failed: ", 1)[-1].strip() if lines else type(exc).__name__
    try:
        server = make_url(url)
        where = f"{server.host or 'localhost'}:{server.port or 5432}/{server.database or ''}"
    except Exception:  # noqa: BLE001 - a malformed URL is reported by the driver's reason
        where = "TEST_DATABASE_URL"
    return f"no PostgreSQL at {where}: {reason}"


def _require_pg() -> None:
    global _pg_reachable
    if _pg_reachable is None:
        try:
            engine = make_engine(pg_server_url())
            with engine.connect():
                pass
            engine.dispose()
            _pg_reachable = True
        except Exception as exc:  # noqa: BLE001 - any failure means the leg cannot run
            _pg_reachable = False
            pytest.postgres_error = pg_unreachable_reason(pg_server_url(), exc)
    if not _pg_reachable:
        message = getattr(pytest, "postgres_error", "no PostgreSQL")
        if os.environ.get("ALLOCATOR_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{message} (ALLOCATOR_REQUIRE_POSTGRES=1)", pytrace=False)
        pytest.skip(message)


def create_database_url(backend: str, tmp_path) -> tuple[str, callable]:
    """A URL of a new empty database on ``backend`` and a function that drops it."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}", lambda: None
    _require_pg()
    name = f"alloc_test_{uuid.uuid4().hex[:12]}"
    server = make_url(pg_server_url())
    admin = make_engine(server.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        _while_checkpoints_fail(conn, f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
            _while_checkpoints_fail(conn, f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()

    return server.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """A URL of a fresh, empty (not migrated) database, on each backend."""
    url, drop = create_database_url(request.param, tmp_path)
    yield url
    drop()


@pytest.fixture
def engine(database_url):
    """A fresh database migrated to head, on each backend."""
    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def _while_checkpoints_fail(conn, statement: str, attempts: int = 60) -> None:
    """Run ``statement``, again while the server answers "checkpoint request failed".

    A test that fills a tablespace's disk on purpose (tests/test_database_faults.py) makes every
    checkpoint fail until its database is dropped, a few seconds at most; CREATE and DROP
    DATABASE of the tests running beside it wait for that instead of failing.
    """
    for attempt in range(attempts):
        try:
            conn.execute(sa.text(statement))
            return
        except sa.exc.DBAPIError as exc:  # psycopg2 reports it as an internal error (XX000)
            if "checkpoint request failed" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(1.0)
