import os
from pathlib import Path

import pytest

from allocator.cli.commands import main
from allocator.exceptions import SettingsError
from allocator.shell.logs import SecretMaskingFilter
from allocator.shell.settings import PROJECT_ROOT, get_settings, mask_url


def test_defaults_point_into_the_checkout():
    s = get_settings({})
    assert s.database_url == f"sqlite:///{PROJECT_ROOT / 'var' / 'allocator.sqlite3'}"
    assert s.runs_dir == PROJECT_ROOT / "runs"
    assert s.reports_dir == PROJECT_ROOT / "reports"
    assert s.alphavantage_base_url == "https://www.alphavantage.co/query"
    assert s.alphavantage_api_key is None


def test_environment_values_are_used_and_relative_dirs_resolved():
    s = get_settings(
        {
            "DATABASE_URL": "postgresql://u:pw@db:5432/x",
            "ALLOCATOR_RUNS_DIR": "archive/runs",
            "ALLOCATOR_REPORTS_DIR": "/srv/reports",
            "ALPHAVANTAGE_API_KEY": "K3Y",
            "ALPHAVANTAGE_CALL_DELAY": "0.5",
        }
    )
    assert s.runs_dir == PROJECT_ROOT / "archive" / "runs"
    assert s.reports_dir == Path("/srv/reports")
    assert s.alphavantage_delay == 0.5
    assert s.require_api_key() == "K3Y"


def test_missing_api_key_names_the_variable():
    with pytest.raises(SettingsError, match="ALPHAVANTAGE_API_KEY is not set"):
        get_settings({}).require_api_key()


@pytest.mark.parametrize(
    "env, needle",
    [
        ({"DATABASE_URL": "just-a-path.db"}, "DATABASE_URL"),
        ({"ALPHAVANTAGE_CALL_DELAY": "soon"}, "ALPHAVANTAGE_CALL_DELAY"),
        ({"ALPHAVANTAGE_CALL_DELAY": "-1"}, "ALPHAVANTAGE_CALL_DELAY"),
    ],
)
def test_malformed_settings_name_the_variable(env, needle):
    with pytest.raises(SettingsError, match=needle):
        get_settings(env)


@pytest.mark.parametrize(
    "url, masked",
    [
        ("postgresql://user:s3cr3t@host:5432/db", "postgresql://user:***@host:5432/db"),
        ("postgresql+psycopg2://u:p%40ss@h/db", "postgresql+psycopg2://u:***@h/db"),
        ("sqlite:///var/a.sqlite3", "sqlite:///var/a.sqlite3"),
        (
            "https://x/query?function=F&apikey=ABC123&symbol=SPY",
            "https://x/query?function=F&apikey=***&symbol=SPY",
        ),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_repr_never_shows_secrets():
    s = get_settings(
        {"DATABASE_URL": "postgresql://u:hunter22@h/db", "ALPHAVANTAGE_API_KEY": "KEYKEY"}
    )
    assert "hunter22" not in repr(s) and "KEYKEY" not in repr(s)


def test_log_filter_masks_known_secrets(caplog):
    import logging

    logger = logging.getLogger("test.masking")
    logger.addFilter(SecretMaskingFilter(["KEYKEY", "hunter22"]))
    with caplog.at_level(logging.INFO):
        logger.info("calling %s with %s", "https://x?apikey=KEYKEY", "postgresql://u:hunter22@h/db")
    assert "KEYKEY" not in caplog.text and "hunter22" not in caplog.text


def test_log_filter_finds_the_secrets_at_the_first_record_only(caplog):
    import logging

    calls = []
    settings = get_settings({"DATABASE_URL": "postgresql://u:hunter22@h/db"})

    def secrets():
        calls.append(1)
        return settings.secret_values()

    logger = logging.getLogger("test.masking.lazy")
    logger.addFilter(SecretMaskingFilter(secrets))
    assert calls == [], "nothing logged, nothing looked up"
    with caplog.at_level(logging.INFO):
        logger.info("the password is %s", "hunter22")
        logger.info("again %s", "hunter22")
    assert calls == [1] and "hunter22" not in caplog.text and caplog.text.count("***") == 2


def test_cli_reports_a_bad_setting_on_one_line(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "not a url")
    assert main(["db", "current"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "DATABASE_URL" in err


def test_cli_masks_the_password_of_an_unreachable_database(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:Pa55word@127.0.0.1:1/nothing")
    assert main(["db", "current"]) == 1
    err = capsys.readouterr().err
    assert "Pa55word" not in err and "cannot connect" in err and err.strip().count("\n") == 0


@pytest.mark.parametrize(
    "url, expected",
    [
        ("sqlite:///relative.sqlite3", "sqlite:///{cwd}/relative.sqlite3"),
        (
            "sqlite+pysqlite:///../up/x.db?timeout=5",
            "sqlite+pysqlite:///{parent}/up/x.db?timeout=5",
        ),
        ("sqlite:////srv/allocator.sqlite3", "sqlite:////srv/allocator.sqlite3"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("sqlite:///file:x.db?mode=ro&uri=true", "sqlite:///file:x.db?mode=ro&uri=true"),
        ("postgresql://u:pw@db:5432/x", "postgresql://u:pw@db:5432/x"),
    ],
)
def test_a_relative_sqlite_url_is_made_absolute_against_the_working_directory(
    url, expected, tmp_path, monkeypatch
):
    cwd = tmp_path / "here"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    want = expected.format(cwd=cwd, parent=tmp_path)
    assert get_settings({"DATABASE_URL": url}).database_url == want


def test_the_resolved_url_is_what_a_kernel_inherits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "sqlite:///relative.sqlite3")
    assert get_settings().database_url == f"sqlite:///{tmp_path}/relative.sqlite3"
    assert os.environ["DATABASE_URL"] == f"sqlite:///{tmp_path}/relative.sqlite3"
    monkeypatch.chdir(PROJECT_ROOT / "notebooks")  # where a kernel runs: still the same file
    assert get_settings().database_url == f"sqlite:///{tmp_path}/relative.sqlite3"
