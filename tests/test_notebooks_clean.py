"""Committed notebooks are clean, valid, parameterized the way the runner expects, and thin.

``make clean-notebooks`` (``python -m allocator.notebook.render notebooks/*.ipynb``) fixes the first
family of failures.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import papermill
import pytest

from allocator.notebook.jobspec import JOBS
from allocator.notebook.runner import TRADE_DATE

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = sorted((ROOT / "notebooks").glob("*.ipynb"))
TEST_ONLY = sorted((ROOT / "tests" / "notebooks").glob("*.ipynb"))
ALL = PRODUCT + TEST_ONLY
#: Notebooks the runner or a reviewer parameterizes: jobs, and the review.
PARAMETERIZED = [p for p in PRODUCT if p.stem in JOBS or p.stem == "review"] + TEST_ONLY


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_the_review_notebook_exists():
    assert ROOT / "notebooks" / "review.ipynb" in PRODUCT


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_committed_without_outputs_and_valid(path):
    nb = _read(path)
    nbformat.validate(nb)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{_id(path)}: cells {dirty} have outputs; run `make clean-notebooks`"
    assert "papermill" not in nb.metadata, f"{_id(path)} is an executed copy"
    assert nb.metadata.get("kernelspec", {}).get("name") == "capital-allocator"


@pytest.mark.parametrize("path", PARAMETERIZED, ids=_id)
def test_first_code_cell_is_the_parameters_cell(path):
    nb = _read(path)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{_id(path)} has no code"
    tagged = [i for i, cell in enumerate(code) if "parameters" in cell.metadata.get("tags", [])]
    assert tagged == [0], f"{_id(path)}: the first code cell must be the one tagged `parameters`"
    declared = papermill.inspect_notebook(str(path))
    if path.stem in JOBS and JOBS[path.stem].needs_session or path in TEST_ONLY:
        assert TRADE_DATE in declared, f"{_id(path)} must declare trade_date"
    if path.stem == "review":
        assert set(declared) == {"start", "end", "job"}


@pytest.mark.parametrize("path", PRODUCT, ids=_id)
def test_cells_hold_no_logic(path):
    """A cell calls the package and displays: loops, ifs and definitions belong in `allocator`."""
    for i, cell in enumerate(_read(path).cells):
        if cell.cell_type != "code":
            continue
        source = "\n".join(
            line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        for node in ast.walk(ast.parse(source)):
            banned = (ast.For, ast.While, ast.If, ast.FunctionDef, ast.ClassDef, ast.Try)
            assert not isinstance(node, banned), (
                f"{_id(path)} cell {i}: {type(node).__name__} in a notebook cell; "
                "move that logic into the allocator package (with a test)"
            )
