"""Settings read from the environment and an optional ``.env`` file.

Secrets (the API key, database passwords) live only here: they never become notebook parameters,
and every URL that is printed or logged goes through :func:`mask_url` first.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from allocator.exceptions import SettingsError

#: The checkout this package was installed from (editable install) or the working directory.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
PROJECT_ROOT = (
    PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").exists() else Path.cwd()
)

ALPHAVANTAGE_DEFAULT_URL = "https://www.alphavantage.co/query"
#: Seconds between vendor calls. The free tier allows 25 calls a day and refuses bursts; the
#: documented per-minute limit has been 5 calls, so 12 s keeps a 3-symbol fetch safely under both.
ALPHAVANTAGE_DEFAULT_DELAY = 12.0
#: Retries of a transient vendor failure, the n-th (from 0) after ``backoff * 2**n`` seconds.
ALPHAVANTAGE_DEFAULT_RETRIES = 3
ALPHAVANTAGE_DEFAULT_BACKOFF = 2.0
TIINGO_DEFAULT_URL = "https://api.tiingo.com"
#: Seconds between Tiingo calls. The free plan allows about 50 requests an hour and 1,000 a day,
#: but one request returns a symbol's whole date range (a 3-symbol, 20-year backfill is 3
#: requests), so the delay only keeps a run from bursting, not under the hourly budget.
TIINGO_DEFAULT_DELAY = 1.5
TIINGO_DEFAULT_RETRIES = 3
TIINGO_DEFAULT_BACKOFF = 2.0
#: ``ALLOCATOR_QUOTE_SOURCE`` values: where the execute job may learn a day's open at 9:30.
QUOTE_SOURCES = ("none", "alphavantage")
#: ``ALLOCATOR_BROKER`` values: fill at the bars' official open, or send orders to Alpaca.
BROKERS = ("simulated", "alpaca")
#: Alpaca's paper-trading endpoint (the default) and its live one; paper is the live API at
#: another host.
ALPACA_PAPER_URL = "https://paper-api.alpaca.markets"
ALPACA_LIVE_URL = "https://api.alpaca.markets"
#: Hosts that are never a live account: Alpaca's paper host, and this machine (a fake server).
PAPER_HOSTS = ("paper-api.alpaca.markets", "127.0.0.1", "localhost", "::1")

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)@")
_APIKEY_PARAM = re.compile(r"(?i)((?:apikey|token)=)[^&\s]+")


def mask_url(url: str) -> str:
    """Return ``url`` with any password and ``apikey=``/``token=`` value replaced by ``***``."""
    masked = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}***@", str(url))
    return _APIKEY_PARAM.sub(r"\1***", masked)


def load_dotenv_file(path: Path | None = None) -> None:
    """Load ``.env`` (checkout root, else working directory); the environment wins."""
    from dotenv import load_dotenv

    for candidate in [path] if path else [PROJECT_ROOT / ".env", Path.cwd() / ".env"]:
        if candidate and candidate.is_file():
            load_dotenv(candidate, override=False)
            return


@dataclass(frozen=True)
class Settings:
    """A snapshot of the environment, taken once per process or per job."""

    database_url: str
    runs_dir: Path
    reports_dir: Path
    log_dir: Path
    #: Where ``allocator db backup`` writes (``ALLOCATOR_BACKUP_DIR``, default ``var/backup``).
    backup_dir: Path = PROJECT_ROOT / "var" / "backup"
    alphavantage_api_key: str | None = field(default=None, repr=False)
    alphavantage_base_url: str = ALPHAVANTAGE_DEFAULT_URL
    alphavantage_delay: float = ALPHAVANTAGE_DEFAULT_DELAY
    alphavantage_timeout: float = 30.0
    alphavantage_max_retries: int = ALPHAVANTAGE_DEFAULT_RETRIES
    alphavantage_backoff: float = ALPHAVANTAGE_DEFAULT_BACKOFF
    tiingo_api_key: str | None = field(default=None, repr=False)
    tiingo_base_url: str = TIINGO_DEFAULT_URL
    tiingo_delay: float = TIINGO_DEFAULT_DELAY
    tiingo_timeout: float = 30.0
    tiingo_max_retries: int = TIINGO_DEFAULT_RETRIES
    tiingo_backoff: float = TIINGO_DEFAULT_BACKOFF
    #: ``alphavantage`` or ``None`` (no live quotes: orders wait for the fetch job's bar).
    quote_source: str | None = None
    kernel_name: str = "capital-allocator"
    #: Where alerts are posted (Slack-compatible webhook); its path holds a token: a secret.
    alert_webhook_url: str | None = field(default=None, repr=False)
    #: ``simulated`` (fills at the bars' open) or ``alpaca`` (orders at the broker).
    broker: str = "simulated"
    apca_key_id: str | None = field(default=None, repr=False)
    apca_secret_key: str | None = field(default=None, repr=False)
    apca_base_url: str = ALPACA_PAPER_URL
    #: ``ALLOCATOR_BROKER_LIVE=yes``: the operator allows a live (real money) endpoint.
    broker_live: bool = False

    def require_api_key(self) -> str:
        """The Alpha Vantage key, or a one-line error naming the variable to set."""
        if not self.alphavantage_api_key:
            raise SettingsError(
                "ALPHAVANTAGE_API_KEY is not set: export it or add it to .env "
                "(or use --source csv|synthetic for offline data)"
            )
        return self.alphavantage_api_key

    def require_tiingo_key(self) -> str:
        """The Tiingo token, or a one-line error naming the variable to set."""
        if not self.tiingo_api_key:
            raise SettingsError(
                "TIINGO_API_KEY is not set: export it or add it to .env (the token shown on "
                "tiingo.com under Account > API after a free sign-up)"
            )
        return self.tiingo_api_key

    def require_alpaca_keys(self) -> tuple[str, str]:
        """The Alpaca key id and secret, or a one-line error naming the variable to set."""
        for name, value in (
            ("APCA_API_KEY_ID", self.apca_key_id),
            ("APCA_API_SECRET_KEY", self.apca_secret_key),
        ):
            if not value:
                raise SettingsError(
                    f"{name} is not set: ALLOCATOR_BROKER=alpaca needs the account's API key id "
                    "and secret (Alpaca dashboard > API keys); export them or add them to .env"
                )
        return self.apca_key_id, self.apca_secret_key

    @property
    def broker_is_live(self) -> bool:
        """Whether orders go to a live (real money) account: ``alpaca`` at an endpoint that is
        not the paper one nor this machine."""
        return self.broker == "alpaca" and not is_paper_endpoint(self.apca_base_url)

    @property
    def broker_label(self) -> str:
        """How reports name the broker: ``simulated``, ``alpaca paper`` or ``alpaca LIVE``."""
        if self.broker != "alpaca":
            return "simulated"
        return "alpaca LIVE" if self.broker_is_live else "alpaca paper"

    def secret_values(self) -> list[str]:
        """The values no artifact or log may contain: API keys, the database password and URL."""
        from sqlalchemy.engine import make_url

        found = [
            self.alphavantage_api_key or "",
            self.tiingo_api_key or "",
            self.alert_webhook_url or "",
            self.apca_key_id or "",
            self.apca_secret_key or "",
        ]
        try:
            password = make_url(self.database_url).password
        except Exception:  # noqa: BLE001 - a malformed URL has no password to hide
            password = None
        if password:
            found += [str(password), self.database_url]
        # Short values would mask innocent text; nothing that short is a real secret.
        return [value for value in found if len(value) >= 4]

    @property
    def masked_database_url(self) -> str:
        return mask_url(self.database_url)

    def __repr__(self) -> str:  # never print a password, even in a traceback
        return (
            f"Settings(database_url={self.masked_database_url!r}, runs_dir={str(self.runs_dir)!r}, "
            f"reports_dir={str(self.reports_dir)!r}, alphavantage_base_url="
            f"{mask_url(self.alphavantage_base_url)!r})"
        )


def default_database_url() -> str:
    return f"sqlite:///{PROJECT_ROOT / 'var' / 'allocator.sqlite3'}"


_SQLITE_URL = re.compile(r"^(?P<scheme>sqlite(?:\+\w+)?):///(?P<path>[^?]*)(?P<query>\?.*)?$", re.S)


def absolute_sqlite_url(url: str, cwd: Path | None = None) -> str:
    """``url`` with a relative SQLite file path made absolute against ``cwd`` (default: here).

    SQLite opens a relative path against the working directory of each process, and a job's
    kernel runs in ``notebooks/``: ``sqlite:///relative.sqlite3`` would be one file for the CLI
    and another for the notebook. Other URLs, in-memory and ``file:`` URI databases are returned
    as they are; ``~`` is expanded.
    """
    match = _SQLITE_URL.match(url)
    path = match["path"] if match else ""
    if not path or path == ":memory:" or path.startswith("file:"):
        return url
    absolute = Path(path).expanduser()
    if not absolute.is_absolute():
        absolute = Path(os.path.normpath((cwd or Path.cwd()) / absolute))
    elif absolute == Path(path):
        return url
    return f"{match['scheme']}:///{absolute}{match['query'] or ''}"


def _float_env(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number: set it to seconds, e.g. 12") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r} is negative: set it to 0 or more seconds")
    return value


def _int_env(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number: set it to e.g. 3") from None
    if value < 0:
        raise SettingsError(f"{name}={raw!r} is negative: set it to 0 or more")
    return value


def _quote_source_env(env: dict[str, str]) -> str | None:
    raw = (env.get("ALLOCATOR_QUOTE_SOURCE") or "").strip()
    value = raw.lower() or "none"
    if value not in QUOTE_SOURCES:
        raise SettingsError(
            f"ALLOCATOR_QUOTE_SOURCE={raw!r} is not a quote source: use "
            f"{' or '.join(QUOTE_SOURCES)} (empty means none)"
        )
    return None if value == "none" else value


def is_paper_endpoint(url: str) -> bool:
    """True for Alpaca's paper host and for this machine (a local fake); anything else may be
    a live account."""
    from urllib.parse import urlsplit

    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return host in PAPER_HOSTS


def _broker_env(env: dict[str, str]) -> tuple[str, str, bool]:
    """(broker, base URL, live allowed); a live endpoint without ``ALLOCATOR_BROKER_LIVE=yes``
    is refused here, before any job can place an order."""
    raw = (env.get("ALLOCATOR_BROKER") or "").strip()
    broker = raw.lower() or "simulated"
    if broker not in BROKERS:
        raise SettingsError(
            f"ALLOCATOR_BROKER={raw!r} is not a broker: use {' or '.join(BROKERS)} "
            "(empty means simulated)"
        )
    url = (env.get("APCA_API_BASE_URL") or "").strip().rstrip("/") or ALPACA_PAPER_URL
    url = url.removesuffix("/v2")
    if "://" not in url:
        raise SettingsError(
            f"APCA_API_BASE_URL={mask_url(url)!r} is not a URL: use {ALPACA_PAPER_URL} (paper)"
        )
    live_raw = (env.get("ALLOCATOR_BROKER_LIVE") or "").strip().lower()
    if live_raw not in ("", "no", "yes"):
        raise SettingsError(
            f"ALLOCATOR_BROKER_LIVE={live_raw!r}: set it to yes to allow a live account, or unset"
        )
    live = live_raw == "yes"
    if broker == "alpaca" and not is_paper_endpoint(url) and not live:
        raise SettingsError(
            f"APCA_API_BASE_URL={mask_url(url)} is not Alpaca's paper endpoint "
            f"({ALPACA_PAPER_URL}): orders there trade real money. Refused unless "
            "ALLOCATOR_BROKER_LIVE=yes is also set"
        )
    return broker, url, live


def _dir_env(env: dict[str, str], name: str, default: Path) -> Path:
    raw = env.get(name)
    path = Path(raw).expanduser() if raw else default
    return path if path.is_absolute() else (PROJECT_ROOT / path)


def get_settings(environ: dict[str, str] | None = None, *, dotenv: bool = True) -> Settings:
    """Read settings from ``environ`` (default: ``os.environ`` after loading ``.env``)."""
    from_process = environ is None
    if environ is None:
        if dotenv and os.environ.get("ALLOCATOR_DOTENV", "").lower() not in ("0", "off", "no"):
            load_dotenv_file()
        environ = dict(os.environ)
    url = environ.get("DATABASE_URL") or default_database_url()
    if "://" not in url:
        raise SettingsError(
            f"DATABASE_URL={mask_url(url)!r} is not a database URL: use e.g. "
            "sqlite:///path/to/file.sqlite3 or postgresql://user:password@host:5432/name"
        )
    url = absolute_sqlite_url(url)
    if from_process and environ.get("DATABASE_URL") and url != environ["DATABASE_URL"]:
        # Resolved once, here: every kernel this process starts inherits the absolute URL.
        os.environ["DATABASE_URL"] = url
    broker, broker_url, broker_live = _broker_env(environ)
    return Settings(
        database_url=url,
        runs_dir=_dir_env(environ, "ALLOCATOR_RUNS_DIR", PROJECT_ROOT / "runs"),
        reports_dir=_dir_env(environ, "ALLOCATOR_REPORTS_DIR", PROJECT_ROOT / "reports"),
        log_dir=_dir_env(environ, "ALLOCATOR_LOG_DIR", PROJECT_ROOT / "var" / "log"),
        backup_dir=_dir_env(environ, "ALLOCATOR_BACKUP_DIR", PROJECT_ROOT / "var" / "backup"),
        alphavantage_api_key=environ.get("ALPHAVANTAGE_API_KEY") or None,
        alphavantage_base_url=environ.get("ALPHAVANTAGE_BASE_URL") or ALPHAVANTAGE_DEFAULT_URL,
        alphavantage_delay=_float_env(
            environ, "ALPHAVANTAGE_CALL_DELAY", ALPHAVANTAGE_DEFAULT_DELAY
        ),
        alphavantage_timeout=_float_env(environ, "ALPHAVANTAGE_TIMEOUT", 30.0),
        alphavantage_max_retries=_int_env(
            environ, "ALPHAVANTAGE_MAX_RETRIES", ALPHAVANTAGE_DEFAULT_RETRIES
        ),
        alphavantage_backoff=_float_env(
            environ, "ALPHAVANTAGE_RETRY_BACKOFF", ALPHAVANTAGE_DEFAULT_BACKOFF
        ),
        tiingo_api_key=environ.get("TIINGO_API_KEY") or None,
        tiingo_base_url=environ.get("TIINGO_BASE_URL") or TIINGO_DEFAULT_URL,
        tiingo_delay=_float_env(environ, "TIINGO_CALL_DELAY", TIINGO_DEFAULT_DELAY),
        tiingo_timeout=_float_env(environ, "TIINGO_TIMEOUT", 30.0),
        tiingo_max_retries=_int_env(environ, "TIINGO_MAX_RETRIES", TIINGO_DEFAULT_RETRIES),
        tiingo_backoff=_float_env(environ, "TIINGO_RETRY_BACKOFF", TIINGO_DEFAULT_BACKOFF),
        quote_source=_quote_source_env(environ),
        kernel_name=environ.get("ALLOCATOR_KERNEL") or "capital-allocator",
        # Not validated here: a malformed webhook must not stop the jobs (the alerts say so).
        alert_webhook_url=(environ.get("ALERT_WEBHOOK_URL") or "").strip() or None,
        broker=broker,
        apca_key_id=(environ.get("APCA_API_KEY_ID") or "").strip() or None,
        apca_secret_key=(environ.get("APCA_API_SECRET_KEY") or "").strip() or None,
        apca_base_url=broker_url,
        broker_live=broker_live,
    )
