"""How reports show numbers: one formatting layer for every report, page and terminal line.

The metrics themselves are decimals (0.062 is 6.2 %) and dollars as floats; these functions only
turn them into text, the same in a notebook table, a rendered report, the web app and the
terminal. Each kind of figure has one function: :func:`dollars` (whole dollars), :func:`cents`
(dollars and cents: prices, fills), :func:`compact_dollars` (axis ticks, ``$1.2M``),
:func:`percent`, :func:`ratio` (Sharpe, Sortino, Calmar), :func:`decimal` (fixed decimals),
:func:`shares` (4 decimals, the share grid), :func:`count`, :func:`date` and :func:`days`.

A value with no meaning (None, NaN, ±inf: a cash benchmark has no Sharpe ratio) is shown as
``—`` (:data:`MISSING`); :func:`unavailable` adds the reason, ``— (needs 63 sessions)``. An
annualised figure (CAGR, volatility, Sharpe...) over fewer than :data:`MIN_ANNUALISED_SESSIONS`
sessions (about three months) says nothing about a year: :func:`metric` shows it as ``—`` with
that reason instead of, say, "Sharpe −6.32" from four sessions.

No pandas here: the CLI imports this module to print a backtest's headline.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping

MISSING = "—"
#: Sessions an annualised figure needs before it is shown (about three months of sessions).
MIN_ANNUALISED_SESSIONS = 63
#: The metrics that are annualised (or a ratio of annualised figures).
ANNUALISED = frozenset({"cagr", "mwr", "volatility", "sharpe", "sortino", "calmar", "turnover"})


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def unavailable(reason: str | None = None) -> str:
    """``—``, with the reason in brackets when one is given: ``— (no sells yet)``."""
    return f"{MISSING} ({reason})" if reason else MISSING


def _signed(text: str, number: float, signed: bool) -> str:
    return f"+{text}" if signed and number > 0 else text


def percent(value: object, digits: int = 1, *, signed: bool = False) -> str:
    """A decimal as a percentage: ``0.0618`` -> ``6.2 %``, ``-0.191`` -> ``-19.1 %``.

    ``signed``: a ``+`` before a gain (``+6.2 %``), for returns shown beside losses.
    """
    number = _number(value)
    if number is None:
        return MISSING
    text = f"{number * 100:,.{digits}f} %"
    return _signed("0.0 %" if text == "-0.0 %" and digits == 1 else text, number, signed)


def ratio(value: object, digits: int = 2) -> str:
    """A ratio (Sharpe, Sortino, Calmar) with two decimals: ``0.6612`` -> ``0.66``."""
    number = _number(value)
    return MISSING if number is None else f"{number:.{digits}f}"


def decimal(value: object, digits: int = 2, *, signed: bool = False) -> str:
    """A number with ``digits`` fixed decimals and thousands separators: ``1234.5`` -> ``1,234.50``.

    ``signed``: a ``+`` before a positive number (``+0.031``), for gains and scores.
    """
    number = _number(value)
    return MISSING if number is None else _signed(f"{number:,.{digits}f}", number, signed)


def dollars(value: object) -> str:
    """Whole dollars with thousands separators: ``3664029.4`` -> ``$3,664,029``."""
    number = _number(value)
    if number is None:
        return MISSING
    sign = "-" if round(number) < 0 else ""
    return f"{sign}${abs(number):,.0f}"


def count(value: object) -> str:
    """A whole number with thousands separators: ``1234.0`` -> ``1,234``."""
    number = _number(value)
    return MISSING if number is None else f"{number:,.0f}"


def shares(value: object) -> str:
    """A quantity of shares on the 4-decimal grid: ``13.26061`` -> ``13.2606``."""
    return decimal(value, 4)


def date(value: object) -> str:
    """A date as ``YYYY-MM-DD`` from a date, a datetime, a pandas Timestamp or ISO text; None,
    NaT and NaN are ``—``."""
    if value is None or value != value:  # NaN and NaT are not equal to themselves
        return MISSING
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        return MISSING


def days(value: object, unit: str = "day") -> str:
    """A length in whole days (or ``unit``, e.g. ``session``): ``1`` -> ``1 day``, ``23`` ->
    ``23 days``."""
    number = _number(value)
    if number is None:
        return MISSING
    n = round(number)
    return f"{n:,} {unit}" + ("" if n == 1 else "s")


def multiple(value: object, digits: int = 2) -> str:
    """A multiple: ``3.344`` -> ``3.34×`` (turnover, profit factor)."""
    number = _number(value)
    return MISSING if number is None else f"{number:,.{digits}f}×"


#: How each backtest metric is shown: its label and its format, in the order of the tables.
METRIC_FORMATS: dict[str, tuple[str, Callable[[object], str]]] = {
    "twr": ("TWR", percent),
    "cagr": ("CAGR", percent),
    "mwr": ("MWR (IRR)", percent),
    "volatility": ("volatility", percent),
    "sharpe": ("Sharpe", ratio),
    "sortino": ("Sortino", ratio),
    "max_drawdown": ("max drawdown", percent),
    "calmar": ("Calmar", ratio),
    "exposure": ("exposure", percent),
    "matched_exposure": ("matched to exposure", percent),
    "final_value": ("final value", dollars),
    "total_deposits": ("deposits", dollars),
    "n_trades": ("trades", count),
    "hit_rate": ("win rate", percent),
    "turnover": ("turnover a year", multiple),
    "n_sessions": ("sessions", count),
    "max_drawdown_peak": ("max drawdown peak", date),
    "max_drawdown_trough": ("max drawdown trough", date),
    "max_drawdown_recovery": ("max drawdown recovery", date),
}
#: The metrics of a backtest's one-line headline.
HEADLINE = ("twr", "cagr", "sharpe", "max_drawdown", "exposure", "final_value")


def too_short(key: str, sessions: object) -> bool:
    """True when ``key`` is annualised and ``sessions`` is below :data:`MIN_ANNUALISED_SESSIONS`."""
    n = _number(sessions)
    return key in ANNUALISED and n is not None and n < MIN_ANNUALISED_SESSIONS


def short_reason(sessions: object) -> str:
    """Why an annualised figure is not shown: ``needs 63 sessions, has 4``."""
    return f"needs {MIN_ANNUALISED_SESSIONS} sessions, has {count(sessions)}"


def metric(key: str, value: object, sessions: object = None, *, reason: bool = True) -> str:
    """One metric as text in its format (:data:`METRIC_FORMATS`).

    An annualised metric over fewer than :data:`MIN_ANNUALISED_SESSIONS` ``sessions`` is ``—``
    (with the reason unless ``reason`` is False: a table says it once, under itself).
    """
    if too_short(key, sessions):
        return unavailable(short_reason(sessions) if reason else None)
    show = METRIC_FORMATS[key][1] if key in METRIC_FORMATS else decimal
    return show(value)


def metrics_headline(metrics: Mapping[str, object]) -> str:
    """One line: ``TWR 81.8 %, CAGR 6.2 %, Sharpe 0.66, max drawdown -19.1 %, ...``."""
    sessions = metrics.get("n_sessions")
    parts = []
    for key in HEADLINE:
        label = METRIC_FORMATS[key][0]
        parts.append(f"{label} {metric(key, metrics.get(key), sessions)}")
    return ", ".join(parts)


def versus_mix(subject: str, strategy: Mapping[str, object], mix: Mapping[str, object]) -> str:
    """One sentence: does ``subject`` beat the SPY + cash mix at its own exposure on both a
    higher Sharpe ratio and a shallower maximum drawdown? With the four figures.

    ``strategy`` and ``mix`` hold ``sharpe`` and ``max_drawdown`` (the mix also
    ``matched_exposure``, the strategy's exposure it was matched to). E.g. "The strategy does not
    beat the SPY + cash mix at the same 60.1 % exposure: its Sharpe 0.66 is below the mix's 0.68,
    and its max drawdown -19.1 % is shallower than the mix's -21.6 %."
    """
    figures = [{}, {}]
    clauses = []
    for key, label, show, better, worse in (
        ("sharpe", "Sharpe", ratio, "above", "below"),
        ("max_drawdown", "max drawdown", percent, "shallower than", "deeper than"),
    ):
        ours, theirs = _number(strategy.get(key)), _number(mix.get(key))
        figures[0][key], figures[1][key] = _or_nan(ours), _or_nan(theirs)
        if ours is None or theirs is None:
            verb = "not comparable with"
        else:
            verb = better if ours > theirs else worse if ours < theirs else "equal to"
        clauses.append(f"{label} {show(ours)} is {verb} the mix's {show(theirs)}")
    from allocator.backtest.benchmarks import beats  # here: the CLI imports this module, not pandas

    beat = "beats" if beats(*figures) else "does not beat"
    at = f"the SPY + cash mix at the same {percent(mix.get('matched_exposure'))} exposure"
    return f"{subject} {beat} {at}: its {clauses[0]}, and its {clauses[1]}."


def _or_nan(number: float | None) -> float:
    return math.nan if number is None else number


def cents(value: object) -> str:
    """Dollars to the cent, for prices and trade amounts: ``8561.554`` -> ``$8,561.55``."""
    number = _number(value)
    if number is None:
        return MISSING
    sign = "-" if number < 0 else ""
    return f"{sign}${abs(number):,.2f}"


def compact_dollars(value: object) -> str:
    """Dollars in a few characters, for chart axes: ``250000`` -> ``$250k``, ``1.5e6`` -> ``$1.5M``.

    Whole thousands and millions lose their decimals (``$2M``, not ``$2.0M``); below $1,000 it is
    whole dollars.
    """
    number = _number(value)
    if number is None:
        return MISSING
    sign, size = ("-" if number < 0 else ""), abs(number)
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= scale:
            shown = f"{size / scale:.1f}".removesuffix(".0")
            return f"{sign}${shown}{suffix}"
    return f"{sign}${size:,.0f}"
