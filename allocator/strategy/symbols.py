"""Ticker symbols as a user gives them: one rule, checked wherever a symbol comes in.

A symbol is an upper-case letter followed by at most 15 upper-case letters, digits, dots or
dashes (``SPY``, ``BRK.B``, ``BF-B``): it fits ``price_history.symbol`` (16 characters) and can
never name a path (no ``/``, no leading ``.``). Lower-case input is upper-cased first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SYMBOL_PATTERN = re.compile(r"[A-Z][A-Z0-9.\-]{0,15}")
#: How the rule reads in an error message.
SYMBOL_RULE = "a symbol is a letter then up to 15 letters, digits, '.' or '-' (e.g. SPY, BRK.B)"
#: At most this much of a bad symbol is quoted in a message.
_SHOWN_CHARS = 40


def shown(text: object) -> str:
    """``repr(text)``, cut to a readable length for a one-line message."""
    quoted = repr(str(text))
    return quoted if len(quoted) <= _SHOWN_CHARS else quoted[: _SHOWN_CHARS - 4] + "...'"


def symbol_problem(symbol: object) -> str | None:
    """Why ``symbol`` (already upper-cased) breaks :data:`SYMBOL_RULE`, or None when it is fine.

    Examples
    --------
    >>> symbol_problem("SPY") is None
    True
    >>> symbol_problem("../X").split(":")[0]
    "'../X' is not a ticker symbol"
    """
    if isinstance(symbol, str) and SYMBOL_PATTERN.fullmatch(symbol):
        return None
    return f"{shown(symbol)} is not a ticker symbol: {SYMBOL_RULE}"


def split_symbols(value: str | Iterable[object]) -> list[str]:
    """``"spy, QQQ"`` or ``["spy", "QQQ"]`` as ``["SPY", "QQQ"]``: split on commas and spaces.

    Nothing is checked here; see :func:`symbol_problem`.
    """
    parts = [value] if isinstance(value, str) else [str(v) for v in value]
    return [s.strip().upper() for part in parts for s in part.replace(",", " ").split()]


def first_symbol_problem(symbols: Iterable[str]) -> str | None:
    """The problem of the first symbol that breaks the rule, a repeated symbol, or None."""
    seen: set[str] = set()
    for symbol in symbols:
        problem = symbol_problem(symbol)
        if problem:
            return problem
        if symbol in seen:
            return f"{symbol} is listed twice"
        seen.add(symbol)
    return None
