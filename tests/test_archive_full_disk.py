"""A full disk under the archive leaves whole files or none, and a run that says so on one line.

The fetch job (with its figure) runs with its archive on a small tmpfs: with 4 KB nothing fits,
with 40 KB the notebook's first saves fit and the report does not, with 4 MB everything fits.
Where mounting is not possible, ``ENOSPC`` is injected where a file system reports it, at the
``fsync`` of a notebook save, a figure (PNG or SVG) or the runs index. Whatever fills up:

- no truncated file, no empty file, no temporary file is left;
- the run is ``failed`` with one line naming the file and the cause, or ``succeeded`` with every
  file it printed and recorded in place;
- ``job_runs`` names only files that exist.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from PIL import Image

from allocator.notebook import runner
from allocator.shell import atomic
from allocator.shell.persistence.jobruns import list_runs
from tests.helpers import seed

pytestmark = pytest.mark.notebook

DAY = dt.date(2024, 12, 31)
NO_SPACE = os.strerror(errno.ENOSPC)


@pytest.fixture
def fetch_env(tmp_path, monkeypatch, database_url, engine):
    """A database with a config and a year of synthetic bars before ``DAY``."""
    seed(engine, dt.date(2024, 1, 2), dt.date(2024, 12, 30))
    monkeypatch.setenv("DATABASE_URL", database_url)
    return engine


def assert_archive_whole(root: Path) -> list[Path]:
    """Every file under ``root`` is whole: no temporary or empty file, each readable as itself."""
    files = [p for p in root.rglob("*") if p.is_file()]
    for path in files:
        assert not (path.name.startswith(".") and path.name.endswith(".tmp")), path
        assert path.stat().st_size > 0, path
        if path.suffix == ".ipynb":
            nbformat.validate(nbformat.read(path, as_version=4))
        elif path.suffix == ".png":
            Image.open(path).load()
        elif path.suffix == ".html":
            assert path.read_text().rstrip().endswith("</html>"), path
    return files


def assert_recorded_files_exist(engine, status: str) -> None:
    (run,) = list_runs(engine)
    assert run.status == status, run.error
    recorded = [run.notebook_path, run.html_path, run.md_path]
    assert all(Path(p).is_file() for p in recorded if p), recorded
    if status == "succeeded":
        assert all(recorded) and run.sha256
    if run.notebook_path is None:
        assert run.sha256 is None


@pytest.fixture
def small_archive(tmp_path, request):
    """A tmpfs of ``request.param`` bytes for runs/ and reports/ (root only, else skipped)."""
    mount = tmp_path / "archive"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the injected ENOSPC tests below still run")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={request.param}", "tmpfs", str(mount)],
        capture_output=True,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.mark.parametrize(
    "small_archive, expected",
    [("4k", "failed"), ("40k", None), ("4m", "succeeded")],
    indirect=["small_archive"],
)
def test_a_run_on_a_full_archive_leaves_whole_files_and_one_line(
    fetch_env, small_archive, expected
):
    env = {
        **os.environ,
        "ALLOCATOR_RUNS_DIR": str(small_archive / "runs"),
        "ALLOCATOR_REPORTS_DIR": str(small_archive / "reports"),
    }
    command = [sys.executable, "-m", "allocator", "run", "fetch", "--date", str(DAY)]
    done = subprocess.run(
        [*command, "--source", "synthetic"], env=env, capture_output=True, text=True
    )

    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    assert_archive_whole(small_archive)
    status = "succeeded" if done.returncode == 0 else "failed"
    assert status == (expected or status)
    assert_recorded_files_exist(fetch_env, status)
    if status == "failed":
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("allocator: fetch"), lines
        assert re.search(rf"cannot write {small_archive}/\S+: {NO_SPACE}", lines[0]), lines[0]
    printed = re.findall(r"(?:report|notebook) (/[^\s;]+)", done.stdout + done.stderr)
    assert all(Path(p).is_file() for p in printed), printed
    if status == "succeeded":
        assert printed
    if expected == "failed":  # nothing fits: not even the first save of the notebook
        assert list_runs(fetch_env)[0].notebook_path is None


# --- injected ENOSPC -----------------------------------------------------------------------------


def fail_fsync(monkeypatch, matches) -> list[str]:
    """Make ``fsync`` of a temporary file whose target ``matches`` fail with ``ENOSPC``."""
    real = os.fsync
    failed: list[str] = []

    def fsync(descriptor: int) -> None:
        name = os.readlink(f"/proc/self/fd/{descriptor}")
        if name.endswith(".tmp") and matches(name):
            failed.append(name)
            raise OSError(errno.ENOSPC, NO_SPACE)
        real(descriptor)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    return failed


def _run(tmp_path) -> runner.RunResult:
    result = runner.run_job("fetch", date=DAY, parameters={"source": "synthetic"})
    assert_archive_whole(tmp_path / "runs")
    assert_archive_whole(tmp_path / "reports")
    return result


def test_the_first_notebook_save_failing_leaves_no_notebook(fetch_env, tmp_path, monkeypatch):
    failed = fail_fsync(monkeypatch, lambda name: ".ipynb." in name)

    result = _run(tmp_path)

    assert failed and result.status == "failed"
    assert re.fullmatch(rf"cannot write {tmp_path}/runs/\S+\.ipynb: {NO_SPACE}", result.error)
    assert not list((tmp_path / "runs").rglob("*.ipynb"))
    assert not list((tmp_path / "reports").rglob("fetch_*"))
    assert_recorded_files_exist(fetch_env, "failed")
    assert list_runs(fetch_env)[0].notebook_path is None
    assert "report" not in result.summary_line() and "notebook /" not in result.summary_line()


def test_a_figure_that_cannot_be_written_fails_the_run_and_leaves_no_report(
    fetch_env, tmp_path, monkeypatch
):
    figure = re.compile(r"\.(png|svg|jpg)\.\d+\.")  # a temporary file of a figure
    failed = fail_fsync(monkeypatch, figure.search)

    result = _run(tmp_path)

    assert failed and result.status == "failed"
    written = rf"cannot write {tmp_path}/reports/\S+\.(png|svg|jpg): {NO_SPACE}"
    assert re.fullmatch(written, result.error), result.error
    assert not list((tmp_path / "reports").rglob("fetch_*"))  # no report, no figure folder
    (notebook,) = (tmp_path / "runs").rglob("fetch_*.ipynb")  # the whole notebook is kept
    assert f"notebook {notebook}" in result.summary_line()
    assert_recorded_files_exist(fetch_env, "failed")
    (run,) = list_runs(fetch_env)
    assert (run.html_path, run.md_path) == (None, None) and run.sha256


def test_an_index_that_cannot_be_written_is_said_and_the_old_one_kept(
    fetch_env, tmp_path, monkeypatch
):
    before = _run(tmp_path)
    index = tmp_path / "reports" / "index.html"
    page = index.read_text()
    fail_fsync(monkeypatch, lambda name: "index.html" in name)

    result = _run(tmp_path)

    assert before.status == result.status == "succeeded"
    assert result.paths.html.is_file() and f"report {result.paths.html}" in result.summary_line()
    assert f"index not regenerated: cannot write {index}: {NO_SPACE}" in result.summary_line()
    assert index.read_text() == page
    json.dumps(result.notes)  # plain text


def test_no_space_to_claim_the_runs_name_is_one_line_and_no_bad_argument(
    fetch_env, tmp_path, monkeypatch, capsys
):
    from allocator.cli.commands import main

    def full(runs_dir, *args):
        raise OSError(errno.ENOSPC, NO_SPACE, str(runs_dir / "2024"))

    monkeypatch.setattr(runner, "reserve_run_paths", full)

    assert main(["run", "fetch", "--date", str(DAY), "--source", "synthetic"]) == 1

    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"allocator: cannot write {tmp_path / 'runs' / '2024'}: {NO_SPACE}; "
        "free space on the archive's disk"
    ]
    assert list_runs(fetch_env) == []
