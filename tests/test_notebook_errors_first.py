"""A job notebook fails with its own error before any cell shows a result.

A result shown before the check can fail on the very error the check would have named (a plot of
a symbol that stored nothing raised ``IndexError`` and hid the source's "no file ZZZ.csv"). So in
each daily notebook, and in the review, nothing but the job's call and the glued scraps comes
before the cell that raises the job's error.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
from pathlib import Path

import pytest

from allocator.cli.commands import main
from tests.helpers import seed

ROOT = Path(__file__).resolve().parents[1]
#: The notebook, and the calls that raise its job's error (the job's call, then its check).
ERROR_CHECKS = {
    "fetch": ("fetch.run_fetch", "result.raise_for_errors"),
    "signal": ("signal.run_signal",),
    "execute": ("execute.run_execute",),
    "review": ("review.review_window",),
}
DAY = dt.date(2026, 8, 21)


def _calls(source: str) -> set[str]:
    """The dotted names called at the top level of each statement in ``source``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            found.add(ast.unparse(node.func))
    return found


def _plots(source: str) -> bool:
    """Whether ``source`` draws a chart (``plots.setup()`` only styles them)."""
    return any(name.startswith("plots.") and name != "plots.setup" for name in _calls(source))


def _only_glue(source: str) -> bool:
    statements = ast.parse(source).body
    return all(
        isinstance(s, ast.Expr)
        and isinstance(s.value, ast.Call)
        and ast.unparse(s.value.func) in ("sb.glue", "sidecar.glue_table")
        for s in statements
    )


@pytest.mark.parametrize("job", sorted(ERROR_CHECKS))
def test_the_cell_that_checks_for_errors_comes_before_the_cells_that_show_results(job):
    cells = json.loads((ROOT / "notebooks" / f"{job}.ipynb").read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    checks = ERROR_CHECKS[job]
    at = {name: next(i for i, s in enumerate(code) if name in _calls(s)) for name in checks}
    first_call, last_check = at[checks[0]], at[checks[-1]]
    assert list(at.values()) == sorted(at.values()), at
    between = code[first_call + 1 : last_check]
    shown = [s for s in between if not _only_glue(s)]
    assert not shown, f"{job}: shown before the job's error is checked: {shown}"
    assert not [s for s in code[:last_check] if _plots(s)], f"{job}: a plot before the check"


@pytest.mark.notebook
def test_a_fetch_that_stored_nothing_fails_with_the_sources_error_before_any_plot(
    tmp_path, monkeypatch, database_url, engine, capfd
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    seed(engine, DAY, dt.date(2026, 8, 20))  # the config only
    history = tmp_path / "history"
    history.mkdir()
    (history / "SPY.csv").write_text(
        "date,open,high,low,close,volume\n2026-08-21,640.0,645.0,639.0,644.0,1000\n"
    )
    args = ["run", "fetch", "--date", str(DAY), "--source", "csv", "--csv-dir", str(history)]

    assert main([*args, "-p", "symbols", "ZZZ"]) == 1

    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "MarketDataError: ZZZ: no file ZZZ.csv in" in err[0], err
    assert "nothing was stored" in err[0] and "IndexError" not in err[0]
    (archived,) = (tmp_path / "runs").rglob("fetch_*.ipynb")
    cells = json.loads(archived.read_text())["cells"]
    plotted = [c for c in cells if c["cell_type"] == "code" and _plots("".join(c["source"]))]
    assert plotted and all(c["execution_count"] is None and not c["outputs"] for c in plotted)
