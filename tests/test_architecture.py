"""The layout rules of the package, checked by reading its source (nothing here imports it).

- the pure packages (strategy, portfolio, backtest) never import the shell, the jobs, the
  notebook machinery, the CLI, or a library that talks to a database, the network, files or
  processes;
- the pure layers (money, strategy, portfolio, backtest, tuning) import only layers below them;
- a job never imports another job (shared steps live in helper modules of ``allocator.jobs``
  or in ``allocator.research``);
- no module imports itself through others (no import cycle);
- all SQL goes through ``allocator.shell.persistence``;
- modules and functions stay small enough to read in one sitting;
- every package says in its docstring what it holds.

Each rule is parametrised per module, so a failure names the module and what breaks the rule.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "allocator"

PURE_PACKAGES = (
    "allocator.money",
    "allocator.strategy",
    "allocator.portfolio",
    "allocator.backtest",
    "allocator.tuning",
)
#: What a pure module may not import, at module level or inside a function.
FORBIDDEN_IN_PURE = (
    "allocator.shell",
    "allocator.jobs",
    "allocator.notebook",
    "allocator.cli",
    "sqlalchemy",
    "alembic",
    "requests",
    "urllib3",
    "psycopg2",
    "tqdm",
    "papermill",
    "scrapbook",
    "nbformat",
    "nbconvert",
    "nbclient",
    "pandas_market_calendars",
    "dotenv",
    "subprocess",
    "os",
    "socket",
)

#: The jobs of ``allocator.jobs``: each composes the shell and the core for one date.
JOB_MODULES = {
    "fetch",
    "signal",
    "execute",
    "backfill",
    "backtest",
    "sweep",
    "study",
    "tune",
    "walkforward",
}
#: Steps several jobs share; a job may import these, never another job.
JOB_HELPER_MODULES = {"__init__", "ingest", "settlement", "health", "submission", "reconciliation"}
#: The pure layers, lowest first: a layer imports none of the layers above it (the share and
#: cent grids sit below the strategy and the portfolio, which both round to them).
PURE_LAYERS = (
    "allocator.money",
    "allocator.strategy",
    "allocator.portfolio",
    "allocator.backtest",
    "allocator.tuning",
)

PERSISTENCE = "allocator.shell.persistence"
SQL_FUNCTIONS = {"select", "insert", "update", "delete", "text"}

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: Not held to the size limits: a migration is a frozen record of a schema change, never edited
#: once released, and its ``upgrade()`` lists every table and column of that change.
SIZE_EXEMPT = "allocator.shell.persistence.migrations.versions"


@dataclass(frozen=True)
class Module:
    """One source file of the package, read and parsed once."""

    name: str
    path: Path

    @classmethod
    def at(cls, path: Path, root: Path = ROOT) -> Module:
        parts = path.relative_to(root).with_suffix("").parts
        return cls(".".join(parts[:-1] if parts[-1] == "__init__" else parts), path)

    @cached_property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @cached_property
    def tree(self) -> ast.Module:
        return ast.parse(self.text, filename=str(self.path))

    @property
    def package(self) -> str:
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


MODULES = {m.name: m for m in map(Module.at, sorted(PACKAGE.rglob("*.py")))}


def is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def modules_under(*prefixes: str) -> list[str]:
    return [m for m in MODULES if any(is_under(m, p) for p in prefixes)]


def imported_names(module: Module) -> list[tuple[int, str]]:
    """(line, module) for every import anywhere in ``module``, relative ones resolved.

    ``from a.b import c`` yields both ``a.b`` and ``a.b.c``: ``c`` may be a module.
    """
    found = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def imports_of(module: Module, prefixes) -> list[str]:
    """``module:line imports name`` for each import of something under one of ``prefixes``."""
    hits = {
        (line, prefix)
        for line, name in imported_names(module)
        for prefix in prefixes
        if is_under(name, prefix)
    }
    return [f"{module.name}:{line} imports {prefix}" for line, prefix in sorted(hits)]


# --- the pure core ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", modules_under(*PURE_PACKAGES))
def test_pure_modules_import_no_io(name):
    hits = imports_of(MODULES[name], FORBIDDEN_IN_PURE)
    assert not hits, "a pure module imports the shell or an I/O library:\n" + "\n".join(hits)


@pytest.mark.parametrize("layer", range(len(PURE_LAYERS)))
def test_a_pure_layer_imports_no_layer_above_it(layer):
    above = PURE_LAYERS[layer + 1 :]
    hits = [h for m in modules_under(PURE_LAYERS[layer]) for h in imports_of(MODULES[m], above)]
    assert not hits, f"{PURE_LAYERS[layer]} imports a layer above it:\n" + "\n".join(hits)


# --- imports ---------------------------------------------------------------------------------


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in it, functions included)."""
    return {
        name: {n for _, n in imported_names(module) if n in MODULES and n != name}
        for name, module in MODULES.items()
    }


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_import_cycle():
    """No module imports itself through others, even inside a function (the replay machinery
    once did: replay, cluster and monthly in a circle)."""
    assert any(is_under(m, "allocator.research") for m in MODULES)
    cycles = import_cycles(import_graph())
    assert not cycles, f"import cycles: {cycles}"


def test_import_cycles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


# --- jobs ------------------------------------------------------------------------------------


def test_every_jobs_module_is_a_job_or_a_shared_helper():
    stems = {MODULES[m].path.stem for m in modules_under("allocator.jobs")}
    unclassified = sorted(stems - JOB_MODULES - JOB_HELPER_MODULES)
    assert not unclassified, f"add {unclassified} to JOB_MODULES or JOB_HELPER_MODULES"


@pytest.mark.parametrize(
    "name", [m for m in modules_under("allocator.jobs") if MODULES[m].path.stem in JOB_MODULES]
)
def test_a_job_imports_no_other_job(name):
    module = MODULES[name]
    others = [f"allocator.jobs.{job}" for job in sorted(JOB_MODULES - {module.path.stem})]
    hits = imports_of(module, others)
    assert not hits, "move what jobs share to a helper module:\n" + "\n".join(hits)


# --- SQL -------------------------------------------------------------------------------------


def sql_uses(module: Module) -> list[str]:
    """Calls of ``sqlalchemy.select`` & co. (under any alias), and imports of the tables."""
    aliases, direct, hits = set(), set(), set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname or a.name for a in node.names if a.name == "sqlalchemy"}
        elif isinstance(node, ast.ImportFrom) and is_under(node.module or "", "sqlalchemy"):
            for alias in node.names:
                if alias.name in SQL_FUNCTIONS:
                    direct.add(alias.asname or alias.name)
                    hits.add(f"{module.name}:{node.lineno} imports {node.module}.{alias.name}")
    for node in ast.walk(module.tree):
        func = node.func if isinstance(node, ast.Call) else None
        if (
            isinstance(func, ast.Attribute)
            and func.attr in SQL_FUNCTIONS
            and isinstance(func.value, ast.Name)
            and func.value.id in aliases
        ):
            hits.add(f"{module.name}:{node.lineno} calls {func.value.id}.{func.attr}")
        elif isinstance(func, ast.Name) and func.id in direct:
            hits.add(f"{module.name}:{node.lineno} calls {func.id}")
    hits.update(imports_of(module, [f"{PERSISTENCE}.schema"]))
    return sorted(hits, key=lambda hit: (int(hit.split(":")[1].split()[0]), hit))


@pytest.mark.parametrize("name", [m for m in MODULES if not is_under(m, PERSISTENCE)])
def test_no_sql_outside_persistence(name):
    hits = sql_uses(MODULES[name])
    assert not hits, f"all SQL goes through {PERSISTENCE}:\n" + "\n".join(hits)


# --- size ------------------------------------------------------------------------------------

_NOT_CODE = {
    tokenize.COMMENT,
    tokenize.NL,
    tokenize.NEWLINE,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.ENCODING,
    tokenize.ENDMARKER,
}


def code_lines(module: Module) -> set[int]:
    """Line numbers holding code: not blank, not only a comment, not part of a docstring."""
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(module.text).readline):
        if tok.type not in _NOT_CODE:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines -= set(range(first.lineno, first.end_lineno + 1))
    return lines


def long_functions(module: Module) -> list[str]:
    """``module:line name() has N lines of code`` for each function over the limit."""
    code, found = code_lines(module), []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            n = len(code & set(range(node.lineno, node.end_lineno + 1)))
            if n > MAX_FUNCTION_LINES:
                found.append((node.lineno, f"{module.name}:{node.lineno} {node.name}() has {n}"))
    return [f"{text} lines of code" for _, text in sorted(found)]


SIZED = [m for m in MODULES if not is_under(m, SIZE_EXEMPT)]


@pytest.mark.parametrize("name", SIZED)
def test_module_is_small(name):
    n = len(code_lines(MODULES[name]))
    assert n <= MAX_MODULE_LINES, f"{name} has {n} lines of code (at most {MAX_MODULE_LINES})"


@pytest.mark.parametrize("name", SIZED)
def test_functions_are_small(name):
    hits = long_functions(MODULES[name])
    assert not hits, f"at most {MAX_FUNCTION_LINES} lines of code each:\n" + "\n".join(hits)


# --- packages --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", [m for m, mod in MODULES.items() if mod.path.name == "__init__.py"]
)
def test_package_has_a_docstring(name):
    docstring = ast.get_docstring(MODULES[name].tree)
    assert docstring and docstring.strip(), f"{MODULES[name].path} needs a docstring"


# --- the checks themselves, on made-up modules -----------------------------------------------


def made_up(tmp_path: Path, name: str, text: str) -> Module:
    path = tmp_path.joinpath(*name.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return Module.at(path, tmp_path)


def test_code_lines_skip_docstrings_comments_and_blank_lines(tmp_path):
    text = '''"""Module
docstring."""

# a comment
X = 1  # code with a comment


def f(a):
    """Doc."""
    # why
    query = """
    SELECT 1
    """
    return sa.select(a)
'''
    module = made_up(tmp_path, "allocator.example", text)
    assert sorted(code_lines(module)) == [5, 8, 11, 12, 13, 14]
    assert sql_uses(module) == []  # nothing says ``sa`` is sqlalchemy here


def test_long_functions_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.MAX_FUNCTION_LINES", 2)
    text = "def short():\n    return 1\n\n\ndef long():\n    a = 1\n    # why\n    return a\n"
    module = made_up(tmp_path, "allocator.example", text)
    assert long_functions(module) == ["allocator.example:5 long() has 3 lines of code"]


def test_imports_are_resolved_and_sql_calls_found(tmp_path):
    text = (
        "import sqlalchemy as q\n"
        "from sqlalchemy import text as raw\n"
        "from ..shell import calendar\n"
        "def f():\n"
        "    import os.path\n"
        "    from allocator.shell.persistence import schema\n"
        "    return q.select(1), raw('x'), q.func.count()\n"
    )
    module = made_up(tmp_path, "allocator.strategy.example", text)
    assert imports_of(module, FORBIDDEN_IN_PURE) == [
        "allocator.strategy.example:1 imports sqlalchemy",
        "allocator.strategy.example:2 imports sqlalchemy",
        "allocator.strategy.example:3 imports allocator.shell",
        "allocator.strategy.example:5 imports os",
        "allocator.strategy.example:6 imports allocator.shell",
    ]
    assert sql_uses(module) == [
        "allocator.strategy.example:2 imports sqlalchemy.text",
        "allocator.strategy.example:6 imports allocator.shell.persistence.schema",
        "allocator.strategy.example:7 calls q.select",
        "allocator.strategy.example:7 calls raw",
    ]
