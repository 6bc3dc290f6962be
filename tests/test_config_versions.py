import datetime as dt

import pytest

from allocator.cli.commands import main
from allocator.exceptions import ConfigNotFoundError, ConfigValidationError
from allocator.shell.persistence.configs import (
    SEED_START_DATE,
    active_version,
    all_versions,
    open_version,
    seed_default_config,
    version_for_date,
)
from allocator.strategy.config import TradingConfig

D = dt.date


def test_seed_is_idempotent_and_covers_old_history(engine):
    with engine.begin() as conn:
        inserted, v1 = seed_default_config(conn)
        again, v2 = seed_default_config(conn)
    assert inserted and not again and v1 == v2
    assert v1.config == TradingConfig() and v1.start_date == SEED_START_DATE <= D(1993, 1, 29)
    with engine.connect() as conn:
        assert version_for_date(conn, D(1993, 1, 29)).id == v1.id


def test_versioning_closes_the_active_version_and_tiles_time(engine):
    with engine.begin() as conn:
        seed_default_config(conn)
        tuned = TradingConfig().with_changes(allocation_low_risk=0.85)
        v2 = open_version(conn, tuned, D(2025, 2, 3), created_by="tuning", notes="more aggressive")
        v3 = open_version(
            conn, tuned.with_changes(risk_high_threshold=65.0), D(2025, 3, 3), created_by="tuning"
        )
    with engine.connect() as conn:
        versions = all_versions(conn)
        assert [v.end_date for v in versions] == [D(2025, 2, 2), D(2025, 3, 2), None]
        assert active_version(conn).id == v3.id
        assert version_for_date(conn, D(2025, 2, 2)).config == TradingConfig()
        assert version_for_date(conn, D(2025, 2, 3)).id == v2.id
        assert version_for_date(conn, D(2025, 3, 2)).config.allocation_low_risk == 0.85
        assert version_for_date(conn, D(2030, 1, 1)).id == v3.id


def test_versioning_is_one_transaction(engine):
    with engine.begin() as conn:
        seed_default_config(conn)
    with pytest.raises(ConfigValidationError), engine.begin() as conn:
        open_version(conn, TradingConfig(), D(1980, 1, 1), created_by="x")
    with engine.connect() as conn:
        assert len(all_versions(conn)) == 1 and active_version(conn).end_date is None


def test_no_config_gives_a_clear_error(engine):
    with (
        engine.connect() as conn,
        pytest.raises(ConfigNotFoundError, match="allocator config seed"),
    ):
        version_for_date(conn, D(2025, 1, 2))


def test_cli_seed_and_show(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["config", "show"]) == 1  # not migrated yet
    assert "allocator db upgrade" in capsys.readouterr().err
    assert main(["db", "upgrade"]) == 0
    assert main(["config", "seed"]) == 0
    assert main(["config", "seed"]) == 0
    out = capsys.readouterr().out
    assert "seeded the trading config of preset 'default'" in out and "left it as it is" in out
    assert main(["config", "show", "--date", "2001-09-10"]) == 0
    out = capsys.readouterr().out
    assert "regime_bullish_threshold  0.3" in out and "SPY, QQQ, DIA" in out
