"""How reports show numbers: percentages, ratios and dollars, as text a reviewer reads.

The metrics themselves are decimals (0.062 is 6.2 %) and dollars as floats; these functions only
turn them into text, the same in a notebook table, a rendered report and the terminal. A missing
value (None, NaN, ±inf: a cash benchmark has no Sharpe ratio) is shown as ``—``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

MISSING = "—"


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def percent(value: object, digits: int = 1) -> str:
    """A decimal as a percentage: ``0.0618`` -> ``6.2 %``, ``-0.191`` -> ``-19.1 %``."""
    number = _number(value)
    return MISSING if number is None else f"{number * 100:.{digits}f} %"


def ratio(value: object) -> str:
    """A ratio (Sharpe, Sortino, Calmar) with two decimals: ``0.6612`` -> ``0.66``."""
    number = _number(value)
    return MISSING if number is None else f"{number:.2f}"


def dollars(value: object) -> str:
    """Whole dollars with thousands separators: ``3664029.4`` -> ``$3,664,029``."""
    number = _number(value)
    if number is None:
        return MISSING
    sign = "-" if number < 0 else ""
    return f"{sign}${abs(number):,.0f}"


def count(value: object) -> str:
    """A whole number with thousands separators: ``1234.0`` -> ``1,234``."""
    number = _number(value)
    return MISSING if number is None else f"{number:,.0f}"


#: How each backtest metric is shown: its label and its format, in the order of the tables.
METRIC_FORMATS = {
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
}
#: The metrics of a backtest's one-line headline.
HEADLINE = ("twr", "cagr", "sharpe", "max_drawdown", "exposure", "final_value")


def metrics_headline(metrics: Mapping[str, object]) -> str:
    """One line: ``TWR 81.8 %, CAGR 6.2 %, Sharpe 0.66, max drawdown -19.1 %, ...``."""
    parts = []
    for key in HEADLINE:
        label, show = METRIC_FORMATS[key]
        parts.append(f"{label} {show(metrics.get(key))}")
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
