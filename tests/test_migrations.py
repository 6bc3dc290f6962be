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


def test_head_revision_from_the_files_is_alembics_head(tmp_path):
    from alembic.script import ScriptDirectory

    from allocator.shell.persistence.migrate import alembic_config, revisions_from_files

    alembic = ScriptDirectory.from_config(alembic_config())
    assert head_revision() == alembic.get_current_head()
    assert revisions_from_files() == {
        rev.revision: rev.down_revision for rev in alembic.walk_revisions()
    }
    # A branched history has two heads: the files alone cannot say which, Alembic is asked.
    (tmp_path / "0001_a.py").write_text('revision = "0001"\ndown_revision = None\n')
    (tmp_path / "0002_b.py").write_text('revision: str = "0002"\ndown_revision = "0001"\n')
    (tmp_path / "0003_c.py").write_text("revision = '0003'\ndown_revision = '0001'\n")
    graph = revisions_from_files(tmp_path)
    assert graph == {"0001": None, "0002": "0001", "0003": "0001"}
    assert set(graph) - set(graph.values()) == {"0002", "0003"}


def test_current_revision_is_read_with_one_query_and_names_a_branched_database(engine):
    assert current_revision(engine) == head_revision()
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES ('0003')"))
    with pytest.raises(
        DatabaseError, match=rf"2 revisions \(0003, {head_revision()}\).*allocator db upgrade"
    ):
        require_current(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM alembic_version"))
    assert current_revision(engine) is None
    with pytest.raises(DatabaseError, match="not initialised: run `allocator db upgrade`"):
        require_current(engine)
