"""The reason a PostgreSQL test gives when no server answers: one short line, no password."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from allocator.shell.persistence import make_engine
from tests.conftest import pg_unreachable_reason


def test_an_unreachable_server_is_one_concise_line():
    url = "postgresql://postgres:hunter2@127.0.0.1:9/postgres"  # port 9: nothing listens
    with pytest.raises(sa.exc.OperationalError) as caught:
        make_engine(url, connect_args={"connect_timeout": 2}).connect()

    reason = pg_unreachable_reason(url, caught.value)

    assert reason.startswith("no PostgreSQL at 127.0.0.1:9/postgres: ")
    assert "\n" not in reason and len(reason) < 100
    assert "psycopg2" not in reason and "sqlalche.me" not in reason and "hunter2" not in reason
