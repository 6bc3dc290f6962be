"""Notebook hygiene: git strips outputs (the clean filter ``make install`` sets up), nbdime diffs
notebooks, and an archived run records what its checkout changed against HEAD.

Each git test works in a repository of its own under ``tmp_path``, set up as ``make install``
sets up the checkout (:func:`allocator.notebook.hygiene.setup_git`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from allocator.notebook import hygiene, runner

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "tests" / "notebooks" / "probe.ipynb"
#: What JupyterLab's "Run all" then "Save" leaves: every code cell with an output and a count.
LAB_OUTPUT = "x" * 50_000


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _run_all_and_save(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=LAB_OUTPUT)]
        cell.execution_count = i + 1
    nbformat.write(nb, path)  # as Lab saves: a trailing newline


def _edit_a_cell(path: Path, line: str) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    code[-1].source += f"\n{line}"
    nbformat.write(nb, path)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A checkout with the project's .gitattributes and one committed job notebook."""
    repo = tmp_path / "checkout"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / ".gitattributes", repo / ".gitattributes")
    shutil.copy(PROBE, repo / "notebooks" / "signal.ipynb")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "start")
    return repo


def test_the_clean_filter_strips_outputs_and_passes_anything_else_through():
    text = PROBE.read_text()
    with_outputs = nbformat.reads(text, as_version=4)
    with_outputs.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi")]
    with_outputs.cells[2].execution_count = 7
    dirty = nbformat.writes(with_outputs) + "\n"

    assert hygiene.clean(dirty) == text  # byte for byte the committed notebook
    assert hygiene.clean(text) == text
    conflict = "<<<<<<< HEAD\n{}\n=======\n[]\n>>>>>>> other\n"
    assert hygiene.clean(conflict) == conflict
    done = subprocess.run(
        [sys.executable, "-m", "allocator.notebook.hygiene", "clean"],
        input=dirty.encode(),
        capture_output=True,
        check=True,
    )
    assert done.stdout == text.encode()


def test_after_setup_git_never_sees_outputs_and_nbdime_diffs_the_source(repo):
    assert hygiene.setup_git(repo, Path(sys.executable))[0].startswith("git filter")
    assert (repo / ".gitattributes").read_text() == (ROOT / ".gitattributes").read_text()
    notebook = repo / "notebooks" / "signal.ipynb"
    committed = notebook.read_text()

    _run_all_and_save(notebook)
    assert notebook.stat().st_size > 300_000  # the outputs are on disk...
    assert _git(repo, "diff", "--no-ext-diff") == ""  # ...but no change to git
    assert _git(repo, "diff") == ""
    _git(repo, "add", "-A")  # stages nothing (git status listed the file until then: its size)
    assert _git(repo, "show", ":notebooks/signal.ipynb") == committed
    assert _git(repo, "status", "--porcelain") == ""

    _edit_a_cell(notebook, "print('edited')")
    assert _git(repo, "status", "--porcelain") == " M notebooks/signal.ipynb\n"
    plain = _git(repo, "diff", "--no-ext-diff")
    assert "+    \"print('edited')\"" in plain and LAB_OUTPUT[:100] not in plain
    readable = _git(repo, "diff", "--no-color")  # nbdime's driver, through the filter
    assert "nbdiff" in readable and "print('edited')" in readable
    assert "outputs" not in readable and "execution_count" not in readable
    command = _git(repo, "config", "--get", "diff.jupyternotebook.command")
    assert command.startswith(f'"{Path(sys.executable).parent}/git-nbdiffdriver" diff')


def test_nbdime_is_a_dependency_with_its_jupyterlab_extension():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(r.startswith("nbdime") for r in project["dependencies"])
    assert "nbdime" in (ROOT / "environment.yml").read_text()
    labextension = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "nbdime-jupyterlab"
    assert labextension.is_dir()
    assert (
        Path(sys.prefix) / "etc" / "jupyter" / "jupyter_server_config.d" / "nbdime.json"
    ).is_file()


def test_checkout_changes_hold_the_notebooks_own_diff_bounded(repo, monkeypatch):
    notebook = repo / "notebooks" / "signal.ipynb"
    assert hygiene.checkout_changes(notebook) is None  # clean: the commit says it all
    (repo / "notes.txt").write_text("scratch")
    untouched = hygiene.checkout_changes(notebook)
    assert untouched["changed_files"] == ["notes.txt"] and untouched["notebook_diff"] == ""

    _edit_a_cell(notebook, "label = 'tried something'")
    changes = hygiene.checkout_changes(notebook)
    assert changes["commit"] == _git(repo, "rev-parse", "HEAD").strip()
    assert sorted(changes["changed_files"]) == ["notebooks/signal.ipynb", "notes.txt"]
    assert changes["notebook"] == "notebooks/signal.ipynb" and changes["notebook_tracked"]
    assert "+    \"label = 'tried something'\"" in changes["notebook_diff"]
    assert not changes["notebook_diff_truncated"]

    monkeypatch.setattr(hygiene, "MAX_DIFF_CHARS", 200)
    bounded = hygiene.checkout_changes(notebook)
    assert bounded["notebook_diff_truncated"] and len(bounded["notebook_diff"]) < 300
    assert "more characters (run git diff)" in bounded["notebook_diff"]


@pytest.mark.notebook
def test_an_archived_run_records_what_its_checkout_changed(repo, tmp_path, monkeypatch):
    from allocator.shell.persistence import make_engine
    from allocator.shell.persistence.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'runs.sqlite3'}"
    upgrade(make_engine(url))
    monkeypatch.setenv("DATABASE_URL", url)
    _edit_a_cell(repo / "notebooks" / "signal.ipynb", "label = 'an experiment'")

    result = runner.run_job("signal", date="2026-11-25", notebooks_dir=repo / "notebooks")

    assert result.status == "succeeded", result.error
    recorded = json.loads(result.paths.notebook.read_text())["metadata"]["allocator"]["checkout"]
    assert recorded["notebook"] == "notebooks/signal.ipynb"
    assert "+    \"label = 'an experiment'\"" in recorded["notebook_diff"]
    assert "papermill" in json.loads(result.paths.notebook.read_text())["metadata"]
    shown = subprocess.run(
        [sys.executable, "-m", "allocator.notebook.hygiene", "show", str(result.paths.notebook)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "notebooks/signal.ipynb differs from HEAD:" in shown and "an experiment" in shown


def test_the_pre_commit_hook_strips_the_job_notebooks():
    import re

    yaml = pytest.importorskip("yaml")
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    strip = next(h for h in hooks if h["id"] == "strip-notebook-outputs")
    assert strip["entry"].endswith("-m allocator.notebook.render --strip")
    assert re.search(strip["files"], "notebooks/signal.ipynb")
    assert re.search(strip["files"], "tests/notebooks/hold.ipynb")
    assert not re.search(strip["files"], "runs/2026/11/25/signal_2026-11-25_x.ipynb")
