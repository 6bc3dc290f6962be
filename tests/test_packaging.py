"""environment.yml mirrors pyproject.toml, and the front door files exist."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> tuple[str, str]:
    match = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", requirement)
    name, spec = match.group(1), match.group(2).replace(" ", "")
    return re.sub(r"[-_.]+", "-", name).lower(), spec


def _pyproject_requirements() -> set[tuple[str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {_normalise(r) for r in reqs}


def _environment_requirements() -> set[tuple[str, str]]:
    found = set()
    in_deps = in_pip = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        stripped = line.split("#", 1)[0].rstrip()
        if re.match(r"^[a-z]", stripped):
            in_deps = stripped.startswith("dependencies:")
            continue
        if not in_deps:
            continue
        if re.match(r"^\s+- pip:\s*$", stripped):
            in_pip = True
            continue
        item = re.match(r"^\s+-\s+(.+)$", stripped)
        if not item or in_pip:
            continue
        name, spec = _normalise(item.group(1))
        if name not in ("python", "pip"):
            found.add((name, spec))
    return found


def test_environment_yml_mirrors_pyproject():
    py, env = _pyproject_requirements(), _environment_requirements()
    assert py - env == set(), f"in pyproject.toml but not environment.yml: {sorted(py - env)}"
    assert env - py == set(), f"in environment.yml but not pyproject.toml: {sorted(env - py)}"


def test_user_required_dependencies_are_declared():
    names = {name for name, _ in _pyproject_requirements()}
    for needed in (
        "jupyterlab",
        "papermill",
        "nbconvert",
        "pandas",
        "numpy",
        "sqlalchemy",
        "psycopg2-binary",
        "requests",
        "matplotlib",
        "scrapbook",
        "six",
        "alembic",
        "pandas-market-calendars",
    ):
        assert needed in names


def test_layout_exists():
    for path in (
        "notebooks",
        "allocator",
        "runs",
        "reports",
        "tests",
        "Makefile",
        "environment.yml",
        "README.md",
        "pyproject.toml",
        ".ci/run",
    ):
        assert (ROOT / path).exists(), path


def test_migrations_ship_with_the_package():
    from allocator.shell.persistence.migrate import MIGRATIONS_DIR

    assert (MIGRATIONS_DIR / "env.py").exists()
    assert list((MIGRATIONS_DIR / "versions").glob("0001_*.py"))
