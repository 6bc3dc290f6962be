"""The parameters of a job notebook: ``-p NAME VALUE`` parsed, and checked against the notebook.

:func:`parse_parameters` turns the command line's ``-p`` pairs into Python values;
:func:`check_parameters` refuses, before any kernel starts, a parameter the notebook does not
declare, the reserved ``trade_date`` and anything that looks like a secret (secrets reach a
notebook through the environment, never as parameters: a parameter is saved in the archive).
:func:`coerce_parameters` reads each value by the type of the notebook's default or by its name
(symbol lists, dates, JSON objects) and checks it, so a bad value is refused on one line before a
kernel starts instead of failing inside the notebook. :func:`check_values` then checks what
the values mean together: a choice among fixed values (``source``, ``data_source``,
``config_source``, ``base``, ``job``), a folder that must exist (``csv_dir``, or the one a CSV
source falls back to), and a first date no later than its last (``start`` and ``end``...).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from allocator.exceptions import CalendarError, ConfigValidationError, JobError
from allocator.notebook.jobspec import JOBS, JobSpec
from allocator.shell.settings import mask_url

#: The parameter the runner injects itself, from ``--date``.
TRADE_DATE = "trade_date"

_SECRET_NAME = re.compile(r"(?i)(key|password|passwd|secret|token|credential|database_url|dsn)")
_INT = re.compile(r"^[+-]?\d+\Z")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z")
_LITERALS = {"True": True, "true": True, "False": False, "false": False, "None": None}


def parse_value(text: str) -> object:
    """A ``-p`` value: int, float, ``True``/``False``/``None``, else the string as given.

    ISO dates (``2026-11-26``) stay strings: notebooks receive dates as ISO strings.
    """
    if text in _LITERALS:
        return _LITERALS[text]
    if len(text) > 30:  # no parameter takes such a number: kept as text, checked later
        return text
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def parse_parameters(pairs: Iterable[tuple[str, str]] | None) -> dict[str, object]:
    """``[("rows", "3"), ...]`` from ``-p NAME VALUE`` into ``{"rows": 3}``; duplicates refused."""
    parsed: dict[str, object] = {}
    for name, raw in pairs or ():
        if not name.isidentifier():
            raise JobError(f"parameter name {name!r} is not a Python identifier")
        if name in parsed:
            raise JobError(f"parameter {name!r} is given twice")
        parsed[name] = parse_value(raw) if isinstance(raw, str) else raw
    return parsed


def declared_parameters(notebook: Path) -> dict[str, dict]:
    """The notebook's ``parameters`` cell: name -> ``{"name", "default"}`` (default as source).

    The cell papermill injects after (the first one tagged ``parameters``), read with :mod:`json`
    and :mod:`ast` only: its top-level assignments, in order, like ``papermill.inspect_notebook``
    (tests/test_startup.py compares the two), so a bad ``-p`` is refused without importing
    papermill and nbformat (most of the CLI's start-up).
    """
    import ast

    try:
        cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
        tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
        source = tagged[0]["source"] if tagged else ""
        source = "".join(source) if isinstance(source, list) else source
        tree = ast.parse(source)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SyntaxError) as exc:
        raise JobError(f"cannot read the parameters of {notebook}: {exc}") from None
    declared: dict[str, dict] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            default = ast.get_source_segment(source, node.value)
            for target in targets:
                if isinstance(target, ast.Name):
                    declared[target.id] = {"name": target.id, "default": default}
    return declared


def check_parameters(
    spec: JobSpec, given: Mapping[str, object], declared: Mapping[str, dict], secrets: list[str]
) -> None:
    """Refuse unknown, reserved and secret-looking parameters (names and values)."""
    known = sorted(n for n in declared if n != TRADE_DATE) + list(spec.runner_parameters)
    for name, value in given.items():
        if name == TRADE_DATE:
            raise JobError("trade_date is not a -p parameter: use --date YYYY-MM-DD")
        if _SECRET_NAME.search(name):
            raise JobError(
                f"parameter {name!r} looks like a secret: secrets are read from the environment "
                "(.env), never passed as notebook parameters (they would be saved in the archive)"
            )
        text = str(value)
        if mask_url(text) != text or any(s and s in text for s in secrets):
            raise JobError(
                f"the value of parameter {name!r} contains a password or key: pass secrets "
                "through the environment (.env), never as notebook parameters"
            )
        if name not in declared and name not in spec.runner_parameters:
            listed = ", ".join(known) if known else "none"
            raise JobError(
                f"unknown parameter {name!r} for job {spec.name}: its notebook declares {listed}"
            )
    for name in spec.runner_parameters:
        if not isinstance(given.get(name, False), bool):
            raise JobError(f"parameter {name!r} must be True or False, not {given[name]!r}")


#: The notebook parameter ``allocator run --source`` sets: ``source`` (the fetch job's market
#: data source) or, for the jobs that replay history, ``data_source``.
SOURCE_PARAMETERS = ("source", "data_source")
CSV_DIR = "csv_dir"


def source_options(
    spec: JobSpec,
    declared: Mapping[str, dict],
    given: Mapping[str, object],
    *,
    source: str | None = None,
    csv_dir: str | None = None,
) -> dict[str, object]:
    """``given`` plus ``--source`` and ``--csv-dir`` as the notebook's own parameters.

    ``--source csv`` becomes ``-p source csv`` for the fetch job and ``-p data_source csv`` for a
    job that declares ``data_source`` (backtest, sweep, study...). ``--csv-dir`` becomes
    ``-p csv_dir`` as an absolute path: the kernel runs in the notebooks folder, where a
    relative path would point elsewhere.
    """
    out = dict(given)
    options: list[tuple[str, str, object]] = []
    if source is not None:
        name = next((n for n in SOURCE_PARAMETERS if n in declared), None)
        if name is None:
            raise JobError(f"--source: job {spec.name} reads no market data source")
        options.append(("--source", name, source))
    if csv_dir is not None:
        if CSV_DIR not in declared:
            raise JobError(f"--csv-dir: job {spec.name} reads no CSV folder")
        options.append(("--csv-dir", CSV_DIR, str(Path(csv_dir).expanduser().resolve())))
    for option, name, value in options:
        if name in out:
            raise JobError(f"{option} and -p {name} are both given: give one of them")
        if name in CHOICES:
            _check_choice(name, value, option=f"{option} for job {spec.name}")
        if name == CSV_DIR:
            _require_folder(value, option)
        out[name] = value
    return out


#: How ``-p`` text reads for a parameter whose default is a bool.
TRUE_WORDS = {"true", "yes", "y", "on", "1"}
FALSE_WORDS = {"false", "no", "n", "off", "0"}
#: The longest ``-p`` value taken (a longer one is a mistake, not a parameter).
MAX_VALUE_CHARS = 2000


def _default_of(spec: Mapping) -> object:
    import ast

    try:
        return ast.literal_eval(str(spec.get("default", "None")))
    except (ValueError, SyntaxError):
        return None


def _as_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).lower()  # strict: 'True ' is a typo to show, not a yes to guess
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise JobError(f"parameter {name!r} takes True or False (or yes/no, 1/0), not {value!r}")


def _as_number(name: str, value: object, kind: type) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JobError(f"parameter {name!r} takes a number like its default, not {value!r}")
    if kind is int and not isinstance(value, int):
        raise JobError(f"parameter {name!r} takes a whole number, not {value!r}")
    if abs(value) > 1e12 or value != value:
        raise JobError(f"parameter {name!r}: {value!r} is out of any sensible range")
    return kind(value)


#: Parameters read by their name whatever their default (most of them default to None).
SYMBOL_LIST_PARAMETERS = frozenset({"symbols"})
DATE_PARAMETERS = frozenset({"start", "end", "in_start", "in_end", "out_start", "out_end"})
OVERRIDES_PARAMETERS = frozenset({"overrides"})
#: JSON grids of config values the notebook parses itself: checked here, passed on as text.
GRID_PARAMETERS = frozenset({"grid"})


def _as_list(name: str, value: object) -> list[str]:
    """``SPY,QQQ`` or ``"SPY QQQ"`` as ``["SPY", "QQQ"]``; ``symbols`` are checked one by one."""
    from allocator.strategy.symbols import first_symbol_problem, split_symbols

    parts = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    items = [item for part in parts for item in part.replace(",", " ").split()]
    if not items:
        raise JobError(f"-p {name} is empty: give a list like SPY,QQQ")
    if name in SYMBOL_LIST_PARAMETERS:
        items = split_symbols(items)
        problem = first_symbol_problem(items)
        if problem:
            raise JobError(f"-p {name}: {problem}")
    return items


def _as_date(name: str, value: object) -> str:
    """An ISO date within the calendar's range (:func:`~allocator.shell.calendar.to_date`)."""
    from allocator.shell.calendar import to_date

    try:
        return to_date(str(value), f"-p {name}").isoformat()
    except CalendarError as exc:
        raise JobError(str(exc)) from None


def _json_object(name: str, value: object) -> dict:
    if isinstance(value, Mapping):
        return dict(value)
    try:
        parsed = json.loads(str(value))
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "unreadable"
        raise JobError(
            f"-p {name} is not JSON ({reason}): write e.g. '{{\"daily_capital\": 500}}'"
        ) from None
    if not isinstance(parsed, dict):
        raise JobError(f"-p {name} must be a JSON object, e.g. '{{\"daily_capital\": 500}}'")
    return parsed


def _as_overrides(name: str, value: object) -> dict:
    """A JSON object of config overrides, each checked against its field's type and range."""
    from allocator.strategy.config import check_overrides

    try:
        return check_overrides(_json_object(name, value))
    except ConfigValidationError as exc:
        raise JobError(f"-p {name}: {exc}") from None


def _checked_grid(name: str, value: object) -> object:
    """A grid ``{"parameter": [values]}``: every value checked as an override; text kept."""
    from allocator.strategy.config import check_overrides

    grid = _json_object(name, value)
    try:
        for parameter, values in grid.items():
            for item in values if isinstance(values, list) else [values]:
                check_overrides({parameter: item})
    except ConfigValidationError as exc:
        raise JobError(f"-p {name}: {exc}") from None
    return value if isinstance(value, str) else json.dumps(grid)


_NOT_BY_NAME = object()


def _coerce_by_name(name: str, value: object, default: object) -> object:
    """The value of a list, date or JSON parameter, or :data:`_NOT_BY_NAME` for the others.

    A notebook whose parameter has a bool or number default keeps that reading, whatever its name.
    """
    if value is None or isinstance(default, bool | int | float):
        return _NOT_BY_NAME
    if name in SYMBOL_LIST_PARAMETERS or isinstance(default, list):
        return _as_list(name, value)
    if name in DATE_PARAMETERS:
        return _as_date(name, value)
    if name in OVERRIDES_PARAMETERS:
        return _as_overrides(name, value)
    if isinstance(default, dict):
        return _json_object(name, value)
    if name in GRID_PARAMETERS:
        return _checked_grid(name, value)
    return _NOT_BY_NAME


def coerce_parameters(given: Mapping[str, object], declared: Mapping[str, dict]) -> dict:
    """``-p`` values read by the type of each notebook parameter's default, or a JobError.

    A bool default takes True/False, yes/no, 1/0 (anything else is refused, never read as true);
    an int or float default a number; a str default keeps the text as given. By name (unless the
    default is a bool or a number), or by a list or dict default: ``symbols`` is a list
    (``SPY,QQQ`` or ``"SPY QQQ"``) of valid ticker symbols; ``start``/``end`` (and the ``in_``
    and ``out_`` ones) are ISO dates within the calendar's range; ``overrides`` is a JSON object
    of config parameters within their ranges; ``grid`` is checked the same way, value by value.
    Other parameters whose default is None keep :func:`parse_value`'s reading. Over-long values
    are refused.
    """
    out: dict[str, object] = {}
    for name, value in given.items():
        if len(str(value)) > MAX_VALUE_CHARS:
            raise JobError(
                f"parameter {name!r} is {len(str(value)):,} characters long: "
                f"give at most {MAX_VALUE_CHARS:,}"
            )
        default = _default_of(declared[name]) if name in declared else None
        by_name = _coerce_by_name(name, value, default)
        if by_name is not _NOT_BY_NAME:
            out[name] = by_name
            continue
        if isinstance(default, bool):
            value = _as_bool(name, value)
        elif isinstance(default, int | float):
            value = _as_number(name, value, type(default))
        elif isinstance(default, str) and not isinstance(value, str):
            value = str(value)
        out[name] = value
    return out


#: Parameters that take one of a few values, by name, in every job notebook (a notebook whose
#: default is None also takes None). Written out here, so a usage error imports nothing heavy;
#: tests/test_parameters.py keeps them equal to the lists the package itself accepts
#: (SOURCE_NAMES, DATA_SOURCES, CONFIG_SOURCES, PRESET_NAMES, tuning DESIGNS).
CHOICES: dict[str, tuple[str, ...]] = {
    "source": ("alphavantage", "tiingo", "csv", "synthetic"),
    "data_source": ("database", "csv", "synthetic"),
    "config_source": ("history", "active", "default", "seed", "walk_forward"),
    "base": ("default", "seed"),
    "job": tuple(JOBS),
    "design": (
        "legacy",
        "five_years_empty",
        "five_years_continuing",
        "five_years_subwindows",
        "five_years_subwindows_capped",
        "expanding_subwindows",
        "expanding_empty_subwindows",
        "five_years_ttest",
        "expanding_empty_ttest",
    ),
}
#: (first, last) date parameters of one period: the first may not come after the last.
DATE_PAIRS = (("start", "end"), ("in_start", "in_end"), ("out_start", "out_end"))
#: The folder a CSV source reads when no ``csv_dir`` is given (as ``shell.marketdata`` reads it).
ENV_MARKET_CSV_DIR = "ALLOCATOR_MARKET_CSV_DIR"


def default_values(declared: Mapping[str, dict]) -> dict[str, object]:
    """Each declared parameter's default as a value (None where it is no literal)."""
    return {name: _default_of(spec) for name, spec in declared.items()}


def _check_choice(name: str, value: object, *, option: str | None = None) -> None:
    allowed = CHOICES[name]
    if value not in allowed:
        raise JobError(
            f"{option or '-p ' + name} {str(value)!r} is not one of {', '.join(allowed)}: "
            f"give one of them"
        )


def _require_folder(path: object, what: str) -> None:
    if not Path(str(path)).expanduser().is_dir():
        raise JobError(
            f"{what} {path} is not a folder: give an existing folder of SYMBOL.csv files"
        )


def _check_csv_folder(values: dict[str, object], given: Mapping[str, object]) -> None:
    """A given ``csv_dir`` must be a folder (made absolute); a CSV source needs one."""
    if given.get(CSV_DIR) is not None:
        _require_folder(values[CSV_DIR], f"-p {CSV_DIR}")
        values[CSV_DIR] = str(Path(str(values[CSV_DIR])).expanduser().resolve())
    reading = [n for n in SOURCE_PARAMETERS if values.get(n) == "csv"]
    if not reading or values.get(CSV_DIR) is not None:
        return
    fallback = os.environ.get(ENV_MARKET_CSV_DIR)
    if not fallback:
        raise JobError(
            f"{reading[0]} csv reads a folder of SYMBOL.csv files: give --csv-dir DIR "
            f"(-p {CSV_DIR} DIR) or set {ENV_MARKET_CSV_DIR}"
        )
    _require_folder(fallback, f"{ENV_MARKET_CSV_DIR}=")


def _check_periods(values: Mapping[str, object]) -> None:
    for first, last in DATE_PAIRS:
        a, b = values.get(first), values.get(last)
        if isinstance(a, str) and isinstance(b, str) and a > b:  # ISO dates sort as text
            raise JobError(
                f"-p {first} {a} is after -p {last} {b}: give {first} on or before {last}"
            )


def check_values(given: Mapping[str, object], declared: Mapping[str, dict]) -> dict[str, object]:
    """``given`` (coerced) checked for what the values mean; ``csv_dir`` made absolute.

    Each value of a :data:`CHOICES` parameter must be one of its values; a ``csv_dir`` must be
    a folder, and a CSV source without one needs ``ALLOCATOR_MARKET_CSV_DIR`` to name one; in
    each of :data:`DATE_PAIRS` the first date may not come after the last. The notebook's
    defaults count where a value is not given (``-p end 2004-01-02`` against the default start).
    Raises :class:`JobError` naming the parameter and what it takes.
    """
    out = dict(given)
    for name, value in given.items():
        default = _default_of(declared[name]) if name in declared else None
        if name in CHOICES and not (value is None and default is None):
            _check_choice(name, value)
    values = default_values(declared) | out
    _check_csv_folder(values, given)
    if CSV_DIR in given:
        out[CSV_DIR] = values[CSV_DIR]
    _check_periods(values)
    return out


def checked_parameters(
    spec: JobSpec, given: Mapping[str, object], declared: Mapping[str, dict], secrets: list[str]
) -> dict:
    """:func:`check_parameters`, :func:`coerce_parameters`, then :func:`check_values`."""
    check_parameters(spec, given, declared, secrets)
    return check_values(coerce_parameters(given, declared), declared)
