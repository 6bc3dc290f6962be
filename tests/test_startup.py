"""What a process imports before it answers: the start-up cost of the CLI and of every kernel.

No timing here (``make bench`` measures the CPU): these tests pin down the imports that made it
slow, in fresh processes, so a change that brings one back fails by name.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

import papermill
import pytest

from allocator.notebook.parameters import declared_parameters

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
    (ROOT / "tests" / "notebooks").glob("*.ipynb")
)
#: Modules a usage error or ``--help`` must not import (each costs 0.2-2 s of CPU).
HEAVY = ("pandas", "numpy", "pandas_market_calendars", "papermill", "nbformat", "nbconvert")
PROBE = """
import json, sys
from allocator.cli.commands import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def imports_of(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """Run ``allocator ARGV`` in a fresh process; its exit code and the top-level modules loaded."""
    import json

    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], {name.split(".")[0] for name in result["modules"]}


def test_notebook_libraries_do_not_build_the_iri_grammar():
    """jsonschema >= 4.25 imports rfc3987_syntax (38 lark parsers, 1-2.5 s) in every process
    that imports nbformat: the CLI and each kernel. pyproject.toml caps jsonschema for it."""
    probe = "import sys, nbformat, papermill, scrapbook; print('rfc3987_syntax' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", (
        "importing nbformat loaded rfc3987_syntax: jsonschema was upgraded past the cap in "
        "pyproject.toml (python-jsonschema/jsonschema#1428)"
    )


def test_help_imports_neither_pandas_nor_the_notebook_stack():
    code, modules = imports_of(["--help"])

    assert code == 0
    assert modules.isdisjoint({*HEAVY, "sqlalchemy", "alembic"}), modules & {*HEAVY, "sqlalchemy"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "nosuchjob"], "unknown job"),
        (["run", "fetch", "--date", "2024-13-45"], "is not a date"),
        (["run", "fetch", "--date", "2025-01-06", "-p", "nosuch", "1"], "unknown parameter"),
        (["run", "signal", "-p", "replace", "maybe"], "takes True or False"),
    ],
)
def test_usage_errors_answer_before_the_notebook_stack_is_imported(argv, message):
    code, modules = imports_of(argv)

    assert code == 2
    assert modules.isdisjoint(HEAVY), modules & set(HEAVY)


def test_usage_errors_still_say_what_is_wrong(capfd):
    from allocator.cli.commands import main

    assert main(["run", "fetch", "--date", "2024-13-45"]) == 2
    assert "--date '2024-13-45' is not a date: use YYYY-MM-DD" in capfd.readouterr().err
    assert main(["run", "nosuchjob", "--date", "2024-13-45"]) == 2
    assert "unknown job 'nosuchjob'" in capfd.readouterr().err


def test_config_show_imports_neither_pandas_nor_the_notebook_stack(database_url):
    env = dict(os.environ, DATABASE_URL=database_url)
    for argv in (["db", "upgrade"], ["config", "seed"]):
        subprocess.run(
            [sys.executable, "-m", "allocator", *argv], env=env, check=True, capture_output=True
        )

    code, modules = imports_of(["config", "show"], env)

    assert code == 0
    assert modules.isdisjoint(HEAVY), modules & set(HEAVY)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_declared_parameters_read_the_notebook_as_papermill_does(notebook):
    ours = declared_parameters(notebook)
    papermills = papermill.inspect_notebook(str(notebook))

    assert list(ours) == list(papermills)
    for name, spec in ours.items():
        default = ast.literal_eval(spec["default"])
        assert default == ast.literal_eval(papermills[name]["default"]), name
