"""Secrets stay out of every artifact: archived notebooks, reports, the index, logs, job_runs.

A job runs with a known fake ALPHAVANTAGE_API_KEY and (on PostgreSQL) a DATABASE_URL with a
password (the test server trusts local connections, so any password works), then every file the
run left and everything it printed are searched for both.

To cover a job notebook, add it to ``JOBS_TO_CHECK``: (job name, notebook, extra CLI arguments).
The real fetch notebook is checked against the fake vendor, including the vendor's daily-limit
answer, which quotes the caller's key back (so a careless error message would leak it).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from allocator.cli.commands import main
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.shell.persistence.schema import job_runs
from tests.helpers import seed

ROOT = Path(__file__).resolve().parents[1]
TEST_NOTEBOOKS = Path(__file__).parent / "notebooks"
FAKE_KEY = "FAKEKEY9c1f2e7aQZ"
PASSWORD = "S3cretPw"
SESSION = "2026-11-25"

JOBS_TO_CHECK = [
    ("fetch", TEST_NOTEBOOKS / "probe.ipynb", []),
]


@pytest.fixture
def secret_env(tmp_path, monkeypatch, database_url, engine):
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        url = url.set(password=PASSWORD)
    secret_url = url.render_as_string(hide_password=False)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    monkeypatch.setenv("DATABASE_URL", secret_url)
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", FAKE_KEY)
    monkeypatch.setenv("ALLOCATOR_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("ALLOCATOR_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("ALLOCATOR_NOTEBOOKS_DIR", str(notebooks))
    secrets = [FAKE_KEY] + ([PASSWORD] if url.password else [])
    return tmp_path, notebooks, secrets


def leaks(tmp_path: Path, secrets: list[str], *texts: str) -> list[str]:
    found = []
    # Every file: archive, reports, index, figures, and the SQLite database itself.
    for path in sorted(p for p in tmp_path.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path}: {s}" for s in secrets if s.encode() in data]
    for i, text in enumerate(texts):
        found += [f"output {i}: {s}" for s in secrets if s in text]
    return found


def job_run_rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(job_runs))]


@pytest.mark.notebook
@pytest.mark.parametrize(
    ("job", "notebook", "args"), JOBS_TO_CHECK, ids=[f"{j}-{n.stem}" for j, n, _ in JOBS_TO_CHECK]
)
def test_no_secret_in_any_artifact_or_output(secret_env, engine, capfd, job, notebook, args):
    tmp_path, notebooks, secrets = secret_env
    shutil.copy(notebook, notebooks / f"{job}.ipynb")

    code = main(["run", job, "--date", SESSION, *args])

    out, err = capfd.readouterr()
    assert code == 0, err
    artifacts = [p for p in (tmp_path / "runs").rglob("*.ipynb")]
    assert len(artifacts) == 1 and list((tmp_path / "reports").rglob("*.html"))
    assert leaks(tmp_path, secrets, out, err) == []
    (row,) = job_run_rows(engine)
    assert row["status"] == "succeeded"
    assert row["error"] is None, "nothing had to be redacted"
    assert all(s not in str(row) for s in secrets)


@pytest.mark.notebook
def test_a_leaking_notebook_is_redacted_and_flagged(secret_env, engine, capfd):
    tmp_path, notebooks, secrets = secret_env
    shutil.copy(TEST_NOTEBOOKS / "leaky.ipynb", notebooks / "fetch.ipynb")

    code = main(["run", "fetch", "--date", SESSION])

    out, err = capfd.readouterr()
    assert code == 0
    assert leaks(tmp_path, secrets, out, err) == []
    (archived,) = (tmp_path / "runs").rglob("*.ipynb")
    assert "***" in archived.read_text()
    (row,) = job_run_rows(engine)
    assert "1 secret value(s) found in the outputs were replaced by ***" in row["error"]
    assert "secret value(s)" in err, "the operator is warned in the log"


@pytest.fixture
def vendor(fake_vendor, engine, monkeypatch):
    """The fake vendor serving synthetic bars through ``SESSION``, expecting the fake key."""
    day = dt.date.fromisoformat(SESSION)
    source = SyntheticSource()
    for symbol in ("SPY", "QQQ", "DIA"):
        fake_vendor.set_bars(symbol, source.fetch(symbol, dt.date(2026, 6, 1), day))
    fake_vendor.expected_api_key = FAKE_KEY
    fake_vendor.visible_through = day
    monkeypatch.setenv("ALPHAVANTAGE_BASE_URL", fake_vendor.url)
    monkeypatch.setenv("ALPHAVANTAGE_CALL_DELAY", "0")
    monkeypatch.setenv("ALPHAVANTAGE_MAX_RETRIES", "0")
    seed(engine, day, day - dt.timedelta(days=1))  # the default config, no bars
    return fake_vendor


@pytest.mark.notebook
@pytest.mark.parametrize("daily_limit", [None, 0], ids=["stores-bars", "vendor-quotes-the-key"])
def test_real_fetch_notebook_keeps_key_and_password_out(
    secret_env, vendor, engine, capfd, daily_limit
):
    tmp_path, notebooks, secrets = secret_env
    shutil.copy(ROOT / "notebooks" / "fetch.ipynb", notebooks / "fetch.ipynb")
    vendor.daily_limit = daily_limit

    code = main(["run", "fetch", "--date", SESSION])

    out, err = capfd.readouterr()
    (row,) = job_run_rows(engine)
    assert vendor.requests and all(r["apikey"] == FAKE_KEY for r in vendor.requests)
    if daily_limit is None:
        assert (code, row["status"]) == (0, "succeeded"), err
    else:
        assert (code, row["status"]) == (1, "failed"), err
    assert list((tmp_path / "runs").rglob("*.ipynb")) and list((tmp_path / "reports").rglob("*.md"))
    assert leaks(tmp_path, secrets, out, err) == []
    assert all(s not in str(row) for s in secrets)
    assert "secret value(s)" not in str(row["error"]), "the notebook itself kept the key out"
