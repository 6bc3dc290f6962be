"""The parameters of a job notebook: ``-p NAME VALUE`` parsed, and checked against the notebook.

:func:`parse_parameters` turns the command line's ``-p`` pairs into Python values;
:func:`check_parameters` refuses, before any kernel starts, a parameter the notebook does not
declare, the reserved ``trade_date`` and anything that looks like a secret (secrets reach a
notebook through the environment, never as parameters: a parameter is saved in the archive).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from allocator.exceptions import JobError
from allocator.notebook.jobspec import JobSpec
from allocator.shell.settings import mask_url

#: The parameter the runner injects itself, from ``--date``.
TRADE_DATE = "trade_date"

_SECRET_NAME = re.compile(r"(?i)(key|password|passwd|secret|token|credential|database_url|dsn)")
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")
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
    """The notebook's ``parameters`` cell, as papermill reads it: name -> {default, ...}."""
    import papermill

    try:
        return papermill.inspect_notebook(str(notebook))
    except Exception as exc:  # noqa: BLE001 - any unreadable notebook is the same user error
        raise JobError(f"cannot read the parameters of {notebook}: {exc}") from None


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
    if "force" in spec.runner_parameters and not isinstance(given.get("force", False), bool):
        raise JobError(f"parameter 'force' must be True or False, not {given['force']!r}")


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
    word = str(value).strip().lower()
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


def coerce_parameters(given: Mapping[str, object], declared: Mapping[str, dict]) -> dict:
    """``-p`` values read by the type of each notebook parameter's default, or a JobError.

    A bool default takes True/False, yes/no, 1/0 (anything else is refused, never read as true);
    an int or float default a number; a str default keeps the text as given. Parameters whose
    default is None keep :func:`parse_value`'s reading. Over-long values are refused.
    """
    out: dict[str, object] = {}
    for name, value in given.items():
        if len(str(value)) > MAX_VALUE_CHARS:
            raise JobError(f"parameter {name!r} is {len(str(value)):,} characters long")
        default = _default_of(declared[name]) if name in declared else None
        if isinstance(default, bool):
            value = _as_bool(name, value)
        elif isinstance(default, int | float):
            value = _as_number(name, value, type(default))
        elif isinstance(default, str) and not isinstance(value, str):
            value = str(value)
        out[name] = value
    return out


def checked_parameters(
    spec: JobSpec, given: Mapping[str, object], declared: Mapping[str, dict], secrets: list[str]
) -> dict:
    """:func:`check_parameters`, then :func:`coerce_parameters`: the values to inject."""
    check_parameters(spec, given, declared, secrets)
    return coerce_parameters(given, declared)
