import datetime as dt

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from allocator.exceptions import DatabaseError
from allocator.shell.persistence import make_engine
from allocator.shell.persistence.migrate import (
    current_revision,
    downgrade,
    head_revision,
    require_current,
    upgrade,
)
from allocator.shell.persistence.schema import metadata, trading_config
from allocator.strategy.config import TradingConfig


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection")
def test_upgrade_creates_the_schema_the_code_expects(database_url):
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    with pytest.raises(DatabaseError, match="allocator db upgrade"):
        require_current(engine)
    before, after = upgrade(engine)
    assert (before, after) == (None, head_revision())
    require_current(engine)
    with engine.connect() as conn:
        diffs = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
    # Index expressions are not reflected the same way by every backend; tables, columns and
    # types must match exactly.
    relevant = [
        d for d in diffs if not (isinstance(d, tuple) and d[0] in ("add_index", "remove_index"))
    ]
    assert relevant == []
    engine.dispose()


def test_upgrade_is_idempotent_and_downgrade_reverses_it(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    assert upgrade(engine) == (head_revision(), head_revision())
    downgrade(engine, "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert "price_history" in sa.inspect(engine).get_table_names()
    engine.dispose()


def _config_row(start, end=None):
    return {
        "start_date": start,
        "end_date": end,
        **TradingConfig().to_dict(),
        "created_by": "test",
        "created_at": dt.datetime.now(dt.UTC),
    }


def test_database_allows_at_most_one_active_config(engine):
    with engine.begin() as conn:
        conn.execute(trading_config.insert(), [_config_row(dt.date(2000, 1, 1))])
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(trading_config.insert(), [_config_row(dt.date(2001, 1, 1))])
    with engine.begin() as conn:  # closed versions are not limited
        conn.execute(
            trading_config.insert(), [_config_row(dt.date(1995, 1, 1), dt.date(1999, 12, 31))]
        )
        conn.execute(
            trading_config.insert(), [_config_row(dt.date(1990, 1, 1), dt.date(1994, 12, 31))]
        )
