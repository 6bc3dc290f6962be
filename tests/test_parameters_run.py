"""A real ``allocator run`` with a relative SQLite URL and ``-p symbols SPY``.

The CLI resolves ``sqlite:///relative.sqlite3`` against its own working directory and hands the
absolute URL to the kernel (whose working directory is the notebooks folder), so both write one
file; ``-p symbols SPY`` reaches the notebook as the list ``["SPY"]``, not as S, P and Y.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from allocator.shell.persistence import make_engine
from allocator.shell.persistence.schema import job_runs, price_history

ROOT = Path(__file__).resolve().parents[1]


def _allocator(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "allocator", *args],
        cwd=cwd,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.notebook
def test_relative_sqlite_url_is_one_file_for_the_cli_and_the_kernel(tmp_path):
    work = tmp_path / "work"
    notebooks = tmp_path / "notebooks"
    work.mkdir()
    notebooks.mkdir()
    shutil.copy(ROOT / "notebooks" / "fetch.ipynb", notebooks / "fetch.ipynb")
    env = {"DATABASE_URL": "sqlite:///relative.sqlite3", "ALLOCATOR_DOTENV": "off"}

    upgraded = _allocator(["db", "upgrade"], work, env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"sqlite:///{work / 'relative.sqlite3'}" in upgraded.stdout
    args = ["run", "fetch", "--date", "2025-01-03", "--source", "synthetic", "-p", "symbols", "SPY"]
    done = _allocator([*args, "--notebooks-dir", str(notebooks)], work, env)

    assert done.returncode == 0, done.stderr
    assert [p.name for p in work.glob("*.sqlite3")] == ["relative.sqlite3"]
    assert not list(notebooks.glob("*.sqlite3")), "the kernel opened another file"
    engine = make_engine(f"sqlite:///{work / 'relative.sqlite3'}")
    with engine.connect() as conn:
        runs = conn.execute(sa.select(job_runs.c.job, job_runs.c.status)).all()
        symbols = conn.execute(sa.select(price_history.c.symbol).distinct()).scalars().all()
    engine.dispose()
    assert [tuple(r) for r in runs] == [("fetch", "succeeded")]  # written by the CLI
    assert symbols == ["SPY"]  # written by the kernel
