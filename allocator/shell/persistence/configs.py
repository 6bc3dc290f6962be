"""``trading_config``: versions of the strategy's parameters, each valid over a date range.

The active version has ``end_date IS NULL`` (the database allows at most one). Opening a new
version closes the active one the day before the new one starts, in one transaction, so the
versions tile time without gaps or overlaps and the version active on any past date is found.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from allocator.exceptions import ConfigNotFoundError, ConfigValidationError
from allocator.shell.persistence.engine import utcnow
from allocator.shell.persistence.schema import trading_config
from allocator.strategy.config import PARAMETER_NAMES, TradingConfig

#: The seeded defaults are valid from this date, before any stored history (SPY starts in 1993).
SEED_START_DATE = dt.date(1990, 1, 1)


@dataclass(frozen=True)
class ConfigVersion:
    """One row of ``trading_config``: a :class:`TradingConfig` and when it applies."""

    id: int
    start_date: dt.date
    end_date: dt.date | None
    config: TradingConfig
    created_by: str
    notes: str | None
    created_at: dt.datetime

    @property
    def is_active(self) -> bool:
        return self.end_date is None

    def covers(self, day: dt.date) -> bool:
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)


def _version(row: sa.Row) -> ConfigVersion:
    data = row._mapping
    return ConfigVersion(
        id=data["id"],
        start_date=data["start_date"],
        end_date=data["end_date"],
        config=TradingConfig.from_mapping({k: data[k] for k in PARAMETER_NAMES}),
        created_by=data["created_by"],
        notes=data["notes"],
        created_at=data["created_at"],
    )


def _values(config: TradingConfig) -> dict:
    values = config.to_dict()
    values["assets"] = list(config.assets)
    return values


def active_version(conn: sa.Connection) -> ConfigVersion:
    """The open-ended version, as the design document's ``WHERE end_date IS NULL``."""
    row = conn.execute(sa.select(trading_config).where(trading_config.c.end_date.is_(None))).first()
    if row is None:
        raise ConfigNotFoundError("no active trading config: run `allocator config seed`")
    return _version(row)


def version_for_date(conn: sa.Connection, day: dt.date) -> ConfigVersion:
    """The version active on ``day`` (``start_date <= day <= end_date``, open end included)."""
    row = conn.execute(
        sa.select(trading_config)
        .where(trading_config.c.start_date <= day)
        .where(sa.or_(trading_config.c.end_date.is_(None), trading_config.c.end_date >= day))
        .order_by(trading_config.c.start_date.desc())
    ).first()
    if row is None:
        raise ConfigNotFoundError(
            f"no trading config covers {day}: run `allocator config seed` (valid from "
            f"{SEED_START_DATE}) or open a version starting on or before {day}"
        )
    return _version(row)


def all_versions(conn: sa.Connection) -> list[ConfigVersion]:
    rows = conn.execute(sa.select(trading_config).order_by(trading_config.c.start_date))
    return [_version(r) for r in rows]


def seed_default_config(
    conn: sa.Connection,
    config: TradingConfig | None = None,
    start_date: dt.date = SEED_START_DATE,
    preset_name: str = "default",
) -> tuple[bool, ConfigVersion]:
    """Insert ``config`` (default: the product default) once; returns (inserted?, the active one).

    Idempotent: when any version exists, nothing is written. Runs in the caller's transaction.
    """
    if conn.execute(sa.select(sa.func.count()).select_from(trading_config)).scalar_one():
        return False, active_version(conn)
    conn.execute(
        trading_config.insert().values(
            start_date=start_date,
            end_date=None,
            **_values(config or TradingConfig()),
            created_by="seed",
            notes=f"preset {preset_name!r}"
            + (" (the design document's table)" if preset_name == "seed" else " (product default)"),
            created_at=utcnow(),
        )
    )
    return True, active_version(conn)


def open_version(
    conn: sa.Connection,
    config: TradingConfig,
    start_date: dt.date,
    *,
    created_by: str,
    notes: str | None = None,
) -> ConfigVersion:
    """Close the active version on ``start_date - 1 day`` and open ``config`` from ``start_date``.

    Both statements run in the caller's transaction (the CLI and the tuning job wrap them in
    ``engine.begin()``), so a failure leaves the old version active. On PostgreSQL the active row
    is locked first, so two concurrent tuning runs cannot both open a version.
    """
    stmt = sa.select(trading_config).where(trading_config.c.end_date.is_(None))
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise ConfigNotFoundError("no active trading config to close: run `allocator config seed`")
    current = _version(row)
    if start_date <= current.start_date:
        raise ConfigValidationError(
            "start_date",
            f"{start_date} must be after the active version's start {current.start_date}",
        )
    conn.execute(
        trading_config.update()
        .where(trading_config.c.id == current.id)
        .values(end_date=start_date - dt.timedelta(days=1))
    )
    conn.execute(
        trading_config.insert().values(
            start_date=start_date,
            end_date=None,
            **_values(config),
            created_by=created_by,
            notes=notes,
            created_at=utcnow(),
        )
    )
    return active_version(conn)


def format_version(version: ConfigVersion) -> str:
    """A human-readable block for ``allocator config show``."""
    end = version.end_date.isoformat() if version.end_date else "open (active)"
    lines = [
        f"trading_config #{version.id}: {version.start_date} .. {end}",
        f"  created {version.created_at:%Y-%m-%d %H:%M} by {version.created_by}"
        + (f" — {version.notes}" if version.notes else ""),
    ]
    width = max(len(n) for n in PARAMETER_NAMES)
    for name, value in version.config.to_dict().items():
        shown = (
            ", ".join(value)
            if name == "assets"
            else value
            if isinstance(value, str)
            else f"{value:g}"
        )
        lines.append(f"  {name:<{width}}  {shown}")
    return "\n".join(lines)


def version_by_id(conn: sa.Connection, version_id: int) -> ConfigVersion:
    row = conn.execute(sa.select(trading_config).where(trading_config.c.id == version_id)).first()
    if row is None:
        raise ConfigNotFoundError(f"trading_config #{version_id} does not exist")
    return _version(row)


def version_starting(conn: sa.Connection, start_date: dt.date) -> ConfigVersion | None:
    """The version that starts on ``start_date``, if any (a month's tuned version)."""
    row = conn.execute(
        sa.select(trading_config).where(trading_config.c.start_date == start_date)
    ).first()
    return _version(row) if row else None


def replace_version(
    conn: sa.Connection, version_id: int, config: TradingConfig, *, created_by: str, notes: str
) -> ConfigVersion:
    """Overwrite the parameters of version ``version_id`` (only while no signal uses it)."""
    conn.execute(
        trading_config.update()
        .where(trading_config.c.id == version_id)
        .values(**_values(config), created_by=created_by, notes=notes, created_at=utcnow())
    )
    return version_by_id(conn, version_id)


def withdraw_version(conn: sa.Connection, version_id: int) -> ConfigVersion:
    """Delete the open version ``version_id`` and reopen the one that ended the day before it
    (only while no signal uses it); returns the version active again."""
    version = version_by_id(conn, version_id)
    conn.execute(trading_config.delete().where(trading_config.c.id == version_id))
    conn.execute(
        trading_config.update()
        .where(trading_config.c.end_date == version.start_date - dt.timedelta(days=1))
        .values(end_date=None)
    )
    return active_version(conn)
