"""Performance of a strategy that receives a cash deposit every session: pure metric functions.

Conventions every function here shares:

- A *return* is a simple decimal return per session (0.01 is +1 %), not a percentage and not a log
  return. Return series are 1-D: a pandas Series indexed by date (``datetime.date`` or
  ``Timestamp``, ascending, unique) or any 1-D array of floats.
- Deposits are contributions, never returns. :func:`daily_returns_flow_adjusted` turns a value
  series and a deposit series into time-weighted daily returns; every return-based metric starts
  there.
- Annualisation uses ``periods`` sessions per year (252 by default), as empyrical does: a series of
  ``n`` returns spans ``n / periods`` years.
- Money is in the account currency (dollars); ratios and rates are decimals.
- Inputs that are too short for a metric give ``nan`` (each function says when); inputs that are
  malformed (NaN values, unsorted or mismatched dates, negative deposits) raise ``ValueError``
  naming the argument at fault.

The return-based metrics follow the definitions of empyrical (``cum_returns_final``,
``annual_return``, ``annual_volatility``, ``sharpe_ratio``, ``sortino_ratio``, ``downside_risk``,
``max_drawdown``, ``calmar_ratio``) and the tests check them against it. No function here reads a
file, a database or the clock.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

PERIODS_PER_YEAR = 252
"""Trading sessions per year, the default annualisation factor."""

_MAX_BISECTIONS = 200

__all__ = [
    "PERIODS_PER_YEAR",
    "UNCHECKED_METRICS",
    "DrawdownPeriod",
    "annual_volatility",
    "cagr",
    "calmar_ratio",
    "cumulative_returns",
    "daily_returns_flow_adjusted",
    "downside_risk",
    "drawdown_series",
    "exposure",
    "hit_rate",
    "max_drawdown",
    "max_drawdown_period",
    "money_weighted_return",
    "sharpe_ratio",
    "sortino_ratio",
    "summary",
    "summary_unchecked",
    "time_weighted_return",
    "turnover",
]


class DrawdownPeriod(NamedTuple):
    """The worst peak-to-trough fall of a return series and when it happened.

    ``peak``, ``trough`` and ``recovery`` are labels of the returns' index (dates for a dated
    series, positions for an array). ``depth`` is the fall as a negative decimal (-0.34 is -34 %).
    """

    peak: Hashable | None
    trough: Hashable | None
    recovery: Hashable | None
    depth: float


# --- input checking -----------------------------------------------------------------------------


def _as_series(values: Any, name: str, *, ordered: bool = True) -> pd.Series:
    """``values`` as a float Series; ValueError naming ``name`` if it is not 1-D, finite numbers."""
    if isinstance(values, pd.DataFrame):
        raise ValueError(f"{name} must be one series, not a DataFrame: pass one column")
    if isinstance(values, pd.Series):
        series = values
    else:
        array = np.asarray(values)
        if array.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
        series = pd.Series(array)
    try:
        series = series.astype("float64")
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold numbers only") from None
    bad = ~np.isfinite(series.to_numpy())
    if bad.any():
        labels = ", ".join(str(label) for label in series.index[bad][:3])
        raise ValueError(f"{name} holds NaN or infinite values (at {labels}): drop or fill them")
    if ordered:
        index = series.index
        try:
            in_order = index.is_unique and index.is_monotonic_increasing
        except TypeError:
            in_order = False
        if not in_order:
            raise ValueError(f"{name} must be indexed by unique dates in ascending order: sort it")
    return series


def _returns(returns: Any) -> pd.Series:
    return _as_series(returns, "returns")


def _require_non_negative(series: pd.Series, name: str) -> None:
    negative = np.flatnonzero(series.to_numpy() < 0)
    if len(negative):
        first = negative[0]
        raise ValueError(
            f"{name} must not be negative: {series.iloc[first]!r} at {series.index[first]}"
        )


def _comparable_index(index: pd.Index) -> pd.Index:
    """Dates as Timestamps, so a ``datetime.date`` index equals the same Timestamp index."""
    try:
        return pd.DatetimeIndex(pd.to_datetime(index))
    except (TypeError, ValueError):
        return index


def _require_same_dates(series: pd.Series, name: str, reference: pd.Series, ref_name: str) -> None:
    same_kind = series.index.dtype == reference.index.dtype
    if same_kind and series.index.equals(reference.index):  # the same labels, the same dates
        return
    if not _comparable_index(series.index).equals(_comparable_index(reference.index)):
        raise ValueError(
            f"{name} must have the same dates as {ref_name}, in the same order "
            f"({len(series)} vs {len(reference)} rows): reindex it to {ref_name}'s index"
        )


def _require_periods(periods: float) -> None:
    try:
        valid = math.isfinite(float(periods)) and float(periods) > 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"periods must be a positive number of sessions per year, got {periods!r}")


def _require_rate(value: float, name: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number (a rate per session), got {value!r}") from None
    if not math.isfinite(rate):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return rate


def _annualised_inputs(
    returns: Any, periods: float, rate: float = 0.0, rate_name: str = "rate"
) -> tuple[np.ndarray, float]:
    """The returns as a float array and the per-session ``rate``, both checked.

    ``periods`` is checked first, then ``rate``, then ``returns``: when several are bad, the error
    names the first of these. ``rate`` is a per-session return such as a risk-free rate or a
    required return; metrics without one leave it at 0.
    """
    _require_periods(periods)
    checked_rate = _require_rate(rate, rate_name)
    return _returns(returns).to_numpy(), checked_rate


def _std_or_zero(values: np.ndarray) -> float:
    """Sample standard deviation (ddof=1); exactly 0 when every value is equal.

    Identical values have zero dispersion, but the floating-point mean they are centred on can miss
    them by one ulp; empyrical forces those cases to 0 and so do we.
    """
    if values.max() == values.min():
        return 0.0
    return float(np.std(values, ddof=1))


def _divide(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` with IEEE semantics (±inf, nan) and no warning."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(numerator) / np.float64(denominator))


# --- returns ------------------------------------------------------------------------------------


def daily_returns_flow_adjusted(total_value: pd.Series, deposits: pd.Series) -> pd.Series:
    """Time-weighted daily returns of a portfolio that receives deposits.

    Parameters
    ----------
    total_value : pd.Series
        Portfolio value (cash + positions) at the close of each session, in dollars, indexed by
        session date in ascending order.
    deposits : pd.Series
        Cash deposited on each session, in dollars, ``>= 0``, with exactly the dates of
        ``total_value`` (0 on a session without a deposit).

    Returns
    -------
    pd.Series
        Decimal return of each session, indexed like ``total_value``; never NaN.

    Notes
    -----
    Convention: the deposit of session ``t`` arrives at the start of ``t``, before trading, so it
    is invested during ``t`` and is not part of the return::

        value_before[t] = total_value[t-1] + deposits[t]      (total_value[-1] = 0)
        r[t]            = total_value[t] / value_before[t] - 1

    The first session is therefore ``total_value[0] / deposits[0] - 1``. A session with nothing
    invested (``value_before == 0``) has return 0. Chaining these returns gives the time-weighted
    return (TWR), which measures the strategy independently of the size and timing of deposits.

    Raises
    ------
    ValueError
        If an input holds NaN, is unsorted, is negative, or the two dates differ.
    """
    value = _as_series(total_value, "total_value")
    flows = _as_series(deposits, "deposits")
    _require_same_dates(flows, "deposits", value, "total_value")
    _require_non_negative(value, "total_value")
    _require_non_negative(flows, "deposits")
    out = _flow_adjusted(value.to_numpy(), flows.to_numpy())
    return pd.Series(out, index=value.index, name="return")


def _flow_adjusted(closes: np.ndarray, flows: np.ndarray) -> np.ndarray:
    """:func:`daily_returns_flow_adjusted` on float arrays that are already checked."""
    before = np.concatenate(([0.0], closes[:-1])) + flows
    out = np.zeros(len(closes))
    invested = before > 0
    out[invested] = closes[invested] / before[invested] - 1.0
    return out


def cumulative_returns(returns: pd.Series) -> pd.Series:
    """Compounded return from the start to the close of each session.

    Parameters
    ----------
    returns : pd.Series or array-like
        Decimal returns per session, noncumulative.

    Returns
    -------
    pd.Series
        ``prod(1 + r[0..t]) - 1`` for each ``t``, indexed like ``returns`` (empty if it is empty).
        Equals empyrical's ``cum_returns``.
    """
    series = _returns(returns)
    return pd.Series(np.cumprod(1.0 + series.to_numpy()) - 1.0, index=series.index, name="return")


def time_weighted_return(returns: pd.Series) -> float:
    """Cumulative time-weighted return over the whole series, compounded.

    Parameters
    ----------
    returns : pd.Series or array-like
        Decimal returns per session, noncumulative (flow-adjusted, see
        :func:`daily_returns_flow_adjusted`).

    Returns
    -------
    float
        ``prod(1 + r) - 1`` as a decimal, not annualised; ``nan`` for an empty series. Equals
        empyrical's ``cum_returns_final``.
    """
    return _time_weighted(_returns(returns).to_numpy())


def _time_weighted(values: np.ndarray) -> float:
    if len(values) == 0:
        return math.nan
    return float(np.prod(1.0 + values) - 1.0)


def cagr(returns: pd.Series, periods: float = PERIODS_PER_YEAR) -> float:
    """Compound annual growth rate: the time-weighted return, annualised.

    Parameters
    ----------
    returns : pd.Series or array-like
        Decimal returns per session, noncumulative.
    periods : float, default 252
        Sessions per year.

    Returns
    -------
    float
        ``prod(1 + r) ** (periods / n) - 1`` as a decimal per year, where ``n = len(returns)``
        (the series spans ``n / periods`` years); ``nan`` for an empty series. Equals empyrical's
        ``annual_return`` / ``cagr``.
    """
    values, _ = _annualised_inputs(returns, periods)
    return _cagr(values, periods)


def _cagr(values: np.ndarray, periods: float) -> float:
    if len(values) == 0:
        return math.nan
    growth = np.prod(1.0 + values)
    with np.errstate(invalid="ignore", over="ignore"):
        return float(growth ** (1.0 / (len(values) / periods)) - 1.0)


def money_weighted_return(
    deposits: pd.Series,
    final_value: float,
    dates: Iterable[Hashable] | None = None,
    periods: float = PERIODS_PER_YEAR,
) -> float:
    """Money-weighted return: the annual internal rate of return (IRR) of the investor's flows.

    Parameters
    ----------
    deposits : pd.Series or array-like
        Cash deposited on each session, in dollars, ``>= 0``, one entry per session in ascending
        date order (0 on a session without a deposit).
    final_value : float
        Portfolio value at the close of the last session, in dollars, ``>= 0``.
    dates : array-like, optional
        Session dates of ``deposits`` when it is not a dated Series. Only their order matters:
        the day count is in sessions.
    periods : float, default 252
        Sessions per year.

    Returns
    -------
    float
        The annual rate ``r`` that solves ``sum_i deposits[i] * (1 + r) ** t_i = final_value``,
        as a decimal per year. ``nan`` when nothing was deposited (or the series is empty); -1.0
        when ``final_value`` is 0.

    Notes
    -----
    From the investor's view deposits are outflows (negative) and the final value is an inflow
    (positive); the IRR sets the net value of those flows to zero.

    Day count: sessions/``periods``. Deposit ``i`` (of ``n``) arrives at the start of session
    ``i``, before trading, as in :func:`daily_returns_flow_adjusted`, and ``final_value`` is
    valued at the close of session ``n - 1``, so deposit ``i`` is invested for
    ``t_i = (n - i) / periods`` years. With a single deposit on the first session the MWR
    therefore equals :func:`cagr` of the flow-adjusted returns.

    The left side grows strictly with ``r``, so the root is unique. It is found by bisection on
    ``g = log(1 + r)`` inside the bracket ``log(final_value / sum(deposits)) / t`` for the shortest
    and longest ``t``, which always holds it, to full double precision.

    Raises
    ------
    ValueError
        If ``deposits`` is negative, NaN or unsorted, ``dates`` has a different length, or
        ``final_value`` is negative or not finite.
    """
    _require_periods(periods)
    flows = _as_series(deposits, "deposits", ordered=dates is None)
    if dates is not None:
        labels = pd.Index(list(dates))
        if len(labels) != len(flows):
            raise ValueError(
                f"dates must have one entry per deposit ({len(flows)}), got {len(labels)}"
            )
        _as_series(pd.Series(np.zeros(len(labels)), index=labels), "dates")
    _require_non_negative(flows, "deposits")
    value = _require_rate(final_value, "final_value")
    if value < 0:
        raise ValueError(f"final_value must not be negative, got {final_value!r}")

    return _money_weighted(flows.to_numpy(), value, periods)


def _money_weighted(amounts: np.ndarray, value: float, periods: float) -> float:
    """:func:`money_weighted_return` on checked arrays (the bracket and bisection it documents);
    the research kernel's sweep rows call it too."""
    total = float(amounts.sum())
    if total <= 0:
        return math.nan
    if value == 0:
        return -1.0
    years = (len(amounts) - np.arange(len(amounts))) / periods
    paid = amounts > 0
    log_amounts, years = np.log(amounts[paid]), years[paid]
    log_value = math.log(value)

    def excess(growth: float) -> float:
        # log of the deposits' future value at continuous rate ``growth``, minus log final value.
        exponents = log_amounts + growth * years
        top = exponents.max()
        return float(top + np.log(np.exp(exponents - top).sum())) - log_value

    gap = log_value - math.log(total)
    low, high = sorted((gap / years.max(), gap / years.min()))
    for _ in range(_MAX_BISECTIONS):
        middle = 0.5 * (low + high)
        if not low < middle < high:
            break
        if excess(middle) < 0:
            low = middle
        else:
            high = middle
    with np.errstate(over="ignore"):
        return float(np.expm1(0.5 * (low + high)))


# --- risk ---------------------------------------------------------------------------------------


def annual_volatility(returns: pd.Series, periods: float = PERIODS_PER_YEAR) -> float:
    """Annualised volatility: the sample standard deviation of returns, scaled by ``sqrt(periods)``.

    Parameters
    ----------
    returns : pd.Series or array-like
        Decimal returns per session, noncumulative.
    periods : float, default 252
        Sessions per year.

    Returns
    -------
    float
        ``std(r, ddof=1) * sqrt(periods)`` as a decimal per year; ``nan`` with fewer than two
        returns. Equals empyrical's ``annual_volatility``.
    """
    values, _ = _annualised_inputs(returns, periods)
    return _volatility(values, periods)


def _volatility(values: np.ndarray, periods: float) -> float:
    if len(values) < 2:
        return math.nan
    return float(np.std(values, ddof=1) * math.sqrt(periods))


def sharpe_ratio(
    returns: pd.Series, risk_free: float = 0.0, periods: float = PERIODS_PER_YEAR
) -> float:
    """Annualised Sharpe ratio of the returns in excess of a constant risk-free rate.

    Parameters
    ----------
    returns : pd.Series or array-like
        Decimal returns per session, noncumulative.
    risk_free : float, default 0.0
        Risk-free return **per session** (a decimal), subtracted from every return. To use an
        annual rate ``R``, pass ``(1 + R) ** (1 / periods) - 1``.
    periods : float, default 252
        Sessions per year.

    Returns
    -------
    float
        ``mean(r - risk_free) / std(r - risk_free, ddof=1) * sqrt(periods)``, unitless.
        ``nan`` with fewer than two returns. When every excess return is equal the deviation is 0
        and the ratio is ``+inf`` / ``-inf`` by the sign of the mean, or ``nan`` if the mean is 0.
        Equals empyrical's ``sharpe_ratio``.
    """
    values, rate = _annualised_inputs(returns, periods, risk_free, "risk_free")
    return _sharpe(values, rate, periods)


def _sharpe(values: np.ndarray, rate: float, periods: float) -> float:
    if len(values) < 2:
        return math.nan
    excess = values - rate
    return _divide(np.mean(excess), _std_or_zero(excess)) * math.sqrt(periods)


def downside_risk(
    returns: pd.Series, required_return: float = 0.0, periods: float = PERIODS_PER_YEAR
) -> float:
    """Annualised downside deviation below a required return.

    Parameters
    ----------
    returns : pd.Series or array-like
        Decimal returns per session, noncumulative.
    required_return : float, default 0.0
        Minimum acceptable return per session (a decimal).
    periods : float, default 252
        Sessions per year.

    Returns
    -------
    float
        ``sqrt(mean(min(r - required_return, 0) ** 2)) * sqrt(periods)`` as a decimal per year.
        The mean runs over *all* sessions (those above the target count as 0), not only the losing
        ones. ``nan`` for an empty series. Equals empyrical's ``downside_risk``.
    """
    values, target = _annualised_inputs(returns, periods, required_return, "required_return")
    if len(values) == 0:
        return math.nan
    shortfall = np.minimum(values - target, 0.0)
    return float(np.sqrt(np.mean(np.square(shortfall))) * math.sqrt(periods))


def sortino_ratio(
    returns: pd.Series, required_return: float = 0.0, periods: float = PERIODS_PER_YEAR
) -> float:
    """Annualised Sortino ratio: mean excess return over downside deviation.

    Parameters
    ----------
    returns : pd.Series or array-like
        Decimal returns per session, noncumulative.
    required_return : float, default 0.0
        Minimum acceptable return per session (a decimal).
    periods : float, default 252
        Sessions per year.

    Returns
    -------
    float
        ``mean(r - required_return) * periods / downside_risk(returns, required_return, periods)``,
        unitless: the arithmetic mean excess return per year over the annualised downside
        deviation (see :func:`downside_risk`). ``nan`` with fewer than two returns; ``+inf`` when
        no return falls below the target and the mean is positive, ``nan`` when both are 0.
        Equals empyrical's ``sortino_ratio``.
    """
    values, target = _annualised_inputs(returns, periods, required_return, "required_return")
    if len(values) < 2:
        return math.nan
    mean_per_year = np.mean(values - target) * periods
    return _divide(mean_per_year, downside_risk(values, target, periods))


def drawdown_series(returns: pd.Series) -> pd.Series:
    """Drawdown at the close of each session: how far the compounded value is below its peak.

    Parameters
    ----------
    returns : pd.Series or array-like
        Decimal returns per session, noncumulative.

    Returns
    -------
    pd.Series
        ``W[t] / max(1, W[0..t]) - 1`` with ``W[t] = prod(1 + r[0..t])``, a decimal ``<= 0``,
        indexed like ``returns`` (empty if it is empty). The starting value 1, before the first
        return, counts as a peak, so a loss on the first session is already a drawdown. Equals
        empyrical's ``drawdown_series``.
    """
    series = _returns(returns)
    return pd.Series(_drawdowns(series.to_numpy()), index=series.index, name="drawdown")


def _drawdowns(values: np.ndarray) -> np.ndarray:
    wealth = np.cumprod(1.0 + values)
    peak = np.maximum.accumulate(np.concatenate(([1.0], wealth)))[1:]
    return wealth / peak - 1.0


def max_drawdown(returns: pd.Series) -> float:
    """Maximum drawdown: the worst peak-to-trough fall of the compounded returns.

    Parameters
    ----------
    returns : pd.Series or array-like
        Decimal returns per session, noncumulative.

    Returns
    -------
    float
        ``min(drawdown_series(returns))``, a negative decimal (-0.34 is a 34 % fall), 0.0 if the
        value never fell; ``nan`` for an empty series. Equals empyrical's ``max_drawdown``.
    """
    return _max_drawdown(_returns(returns).to_numpy())


def _max_drawdown(values: np.ndarray) -> float:
    if len(values) == 0:
        return math.nan
    return float(_drawdowns(values).min())


def max_drawdown_period(returns: pd.Series) -> DrawdownPeriod:
    """Dates of the maximum drawdown: its peak, its trough and the recovery.

    Parameters
    ----------
    returns : pd.Series or array-like
        Decimal returns per session, noncumulative.

    Returns
    -------
    DrawdownPeriod
        ``trough``: the first session whose close has the deepest drawdown. ``peak``: the last
        session at or before the trough whose close was a high-water mark (drawdown 0); when the
        value fell from its very start, the peak is the starting value and is labelled with the
        first session (whose start it is). ``recovery``: the first session after the trough whose
        close is back at or above the peak, ``None`` if not recovered yet. ``depth``:
        :func:`max_drawdown`. All three dates are ``None`` if the value never fell, and ``depth``
        is ``nan`` for an empty series.
    """
    drawdowns = drawdown_series(returns)
    values = drawdowns.to_numpy()
    if len(values) == 0:
        return DrawdownPeriod(None, None, None, math.nan)
    trough = int(np.argmin(values))
    if values[trough] >= 0:
        return DrawdownPeriod(None, None, None, 0.0)
    highs_before = np.flatnonzero(values[: trough + 1] >= 0)
    peak = int(highs_before[-1]) if len(highs_before) else 0
    highs_after = np.flatnonzero(values[trough + 1 :] >= 0)
    recovery = drawdowns.index[trough + 1 + int(highs_after[0])] if len(highs_after) else None
    index = drawdowns.index
    return DrawdownPeriod(index[peak], index[trough], recovery, float(values[trough]))


def calmar_ratio(returns: pd.Series, periods: float = PERIODS_PER_YEAR) -> float:
    """Calmar ratio: compound annual growth rate over the size of the maximum drawdown.

    Parameters
    ----------
    returns : pd.Series or array-like
        Decimal returns per session, noncumulative.
    periods : float, default 252
        Sessions per year (for the CAGR).

    Returns
    -------
    float
        ``cagr(returns, periods) / abs(max_drawdown(returns))``, unitless, over the whole series
        (not the trailing 36 months of the original definition). ``nan`` when there was no
        drawdown, for an empty series, or when the ratio is infinite. Equals empyrical's
        ``calmar_ratio``.
    """
    depth = max_drawdown(returns)
    if not depth < 0:
        return math.nan
    ratio = cagr(returns, periods) / abs(depth)
    return ratio if math.isfinite(ratio) else math.nan


# --- trading activity ---------------------------------------------------------------------------


def hit_rate(trade_pnls: Iterable[float | None]) -> float:
    """Fraction of closed (scored) trades that made money.

    Parameters
    ----------
    trade_pnls : iterable of float or None
        Realised P&L of each trade, in dollars. ``None`` or NaN marks a trade that is not closed
        or scored yet (for example a buy) and is left out; a closed trade that broke even must be
        0, not NaN.

    Returns
    -------
    float
        ``count(pnl > 0) / count(scored trades)`` as a decimal in [0, 1]; a trade with P&L exactly
        0 counts as a miss. ``nan`` when no trade is scored.

    Raises
    ------
    ValueError
        If an entry is not a number or is infinite.
    """
    if isinstance(trade_pnls, pd.Series | np.ndarray) and trade_pnls.dtype == np.float64:
        values = np.asarray(trade_pnls)
        if not np.isinf(values).any():  # an infinite value: the loop below names it
            scored = int(np.count_nonzero(~np.isnan(values)))
            hits = int(np.count_nonzero(values > 0))
            return hits / scored if scored else math.nan
    scored = 0
    hits = 0
    for pnl in trade_pnls:
        if pnl is None or (pd.api.types.is_scalar(pnl) and pd.isna(pnl)):
            continue
        try:
            amount = float(pnl)
        except (TypeError, ValueError):
            raise ValueError(f"trade_pnls must hold numbers or None, got {pnl!r}") from None
        if math.isinf(amount):
            raise ValueError(f"trade_pnls must be finite, got {pnl!r}")
        scored += 1
        hits += amount > 0
    return hits / scored if scored else math.nan


def exposure(positions_value: pd.Series, total_value: pd.Series) -> float:
    """Mean fraction of the portfolio invested in positions (the rest is cash).

    Parameters
    ----------
    positions_value : pd.Series
        Market value of the positions at each session's close, in dollars, ``>= 0``.
    total_value : pd.Series
        Portfolio value (cash + positions) at the same closes, in dollars, ``>= 0``, with the same
        dates.

    Returns
    -------
    float
        Mean over sessions of ``positions_value / total_value``, a decimal (1.0 is fully
        invested). Sessions with ``total_value == 0`` have no capital to invest and are left out;
        ``nan`` if no session has capital.

    Raises
    ------
    ValueError
        If an input holds NaN, is negative or unsorted, or the dates differ.
    """
    positions = _as_series(positions_value, "positions_value")
    value = _as_series(total_value, "total_value")
    _require_same_dates(positions, "positions_value", value, "total_value")
    _require_non_negative(positions, "positions_value")
    _require_non_negative(value, "total_value")
    return _exposure(positions.to_numpy(), value.to_numpy())


def _exposure(positions: np.ndarray, capital: np.ndarray) -> float:
    funded = capital > 0
    if not funded.any():
        return math.nan
    return float(np.mean(positions[funded] / capital[funded]))


def turnover(
    traded_amounts: Iterable[float],
    total_value: pd.Series,
    periods: float = PERIODS_PER_YEAR,
) -> float:
    """Annualised turnover: dollars traded per year as a multiple of the average portfolio value.

    Parameters
    ----------
    traded_amounts : iterable of float
        Dollar amount of every fill over the period of ``total_value`` (buys and sells; the sign
        is ignored). Any index; several fills may share a date.
    total_value : pd.Series
        Portfolio value at each session's close, in dollars, one entry per session.
    periods : float, default 252
        Sessions per year.

    Returns
    -------
    float
        ``sum(|traded_amounts|) / mean(total_value) * periods / n_sessions``, per year (1.0 means
        the average portfolio value was traded once a year; buys and sells both count, so a round
        trip of the whole portfolio is 2.0). Buying with new deposits counts as trading.
        ``nan`` when ``total_value`` is empty or averages 0.
    """
    _require_periods(periods)
    amounts = _as_series(traded_amounts, "traded_amounts", ordered=False).to_numpy()
    value = _as_series(total_value, "total_value").to_numpy()
    if len(value) == 0 or value.mean() <= 0:
        return math.nan
    return float(np.abs(amounts).sum() / value.mean() * periods / len(value))


# --- summary ------------------------------------------------------------------------------------

_DAILY_COLUMNS = ("deposit", "positions_value", "total_value")


def _dated(daily: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(daily, pd.DataFrame):
        raise ValueError(f"daily must be a DataFrame, got {type(daily).__name__}")
    missing = [column for column in _DAILY_COLUMNS if column not in daily.columns]
    if missing:
        raise ValueError(f"daily is missing column(s) {', '.join(missing)}")
    return daily.set_index("date") if "date" in daily.columns else daily


def summary(
    daily: pd.DataFrame,
    trades: pd.DataFrame | None = None,
    risk_free: float = 0.0,
    periods: float = PERIODS_PER_YEAR,
) -> dict[str, Any]:
    """Every metric of this module for one run of the strategy, in one dictionary.

    Parameters
    ----------
    daily : pd.DataFrame
        One row per session in ascending date order with columns ``deposit``,
        ``positions_value`` and ``total_value`` (dollars, at the close) and the date either in a
        ``date`` column or as the index. Other columns (``cash``) are ignored.
    trades : pd.DataFrame, optional
        One row per fill with at least ``amount`` (dollars); ``realized_pnl`` (NaN for trades not
        closed or scored) is used for the hit rate when present. ``None`` means no trades.
    risk_free : float, default 0.0
        Risk-free return per session, for the Sharpe ratio.
    periods : float, default 252
        Sessions per year.

    Returns
    -------
    dict
        ``twr``, ``cagr``, ``mwr``, ``volatility``, ``sharpe``, ``sortino``, ``max_drawdown``,
        ``max_drawdown_peak``, ``max_drawdown_trough``, ``max_drawdown_recovery``, ``calmar``,
        ``exposure``, ``turnover`` (see the functions of the same names; returns are
        :func:`daily_returns_flow_adjusted`), ``total_deposits`` and ``final_value`` (dollars),
        ``n_trades`` (rows of ``trades``), ``hit_rate``, ``n_sessions``, ``start`` and ``end``
        (first and last date, ``None`` if empty). Undefined numbers are ``nan``.
    """
    frame = _dated(daily)
    value = frame["total_value"]
    deposits = frame["deposit"]
    returns = daily_returns_flow_adjusted(value, deposits)
    final_value = float(value.iloc[-1]) if len(value) else math.nan
    worst = max_drawdown_period(returns)

    if trades is None:
        amounts: pd.Series = pd.Series([], dtype="float64")
        pnls: Iterable[float] = []
        n_trades = 0
    else:
        if not isinstance(trades, pd.DataFrame) or "amount" not in trades.columns:
            raise ValueError("trades must be a DataFrame with an 'amount' column")
        amounts = trades["amount"]
        pnls = trades["realized_pnl"] if "realized_pnl" in trades.columns else []
        n_trades = len(trades)

    return {
        "twr": time_weighted_return(returns),
        "cagr": cagr(returns, periods),
        "mwr": (
            money_weighted_return(deposits, final_value, periods=periods)
            if len(value)
            else math.nan
        ),
        "volatility": annual_volatility(returns, periods),
        "sharpe": sharpe_ratio(returns, risk_free, periods),
        "sortino": sortino_ratio(returns, 0.0, periods),
        "max_drawdown": worst.depth,
        "max_drawdown_peak": worst.peak,
        "max_drawdown_trough": worst.trough,
        "max_drawdown_recovery": worst.recovery,
        "calmar": calmar_ratio(returns, periods),
        "total_deposits": float(deposits.sum()),
        "final_value": final_value,
        "n_trades": n_trades,
        "hit_rate": hit_rate(pnls),
        "exposure": exposure(frame["positions_value"], value),
        "turnover": turnover(amounts, value, periods),
        "n_sessions": len(frame),
        "start": frame.index[0] if len(frame) else None,
        "end": frame.index[-1] if len(frame) else None,
    }


#: The metrics :func:`summary_unchecked` gives.
UNCHECKED_METRICS = ("twr", "cagr", "volatility", "sharpe", "max_drawdown", "exposure")


def summary_unchecked(
    total_value: np.ndarray,
    deposits: np.ndarray,
    positions_value: np.ndarray,
    risk_free: float = 0.0,
    periods: float = PERIODS_PER_YEAR,
) -> dict[str, float]:
    """The :data:`UNCHECKED_METRICS` of :func:`summary`, equal bit for bit, from float arrays.

    For callers that build the value series themselves and need its figures thousands of times
    (the sweep's exposure-matched benchmark, one per config): the same formulas as the checked
    functions (they share them), without the input checks and the pandas frames that cost about
    0.5 ms per call over 5,000 sessions. The caller guarantees what :func:`summary` checks:
    1-D float64 arrays of one length, finite, ``>= 0``, in session order.
    """
    returns = _flow_adjusted(total_value, deposits)
    return {
        "twr": _time_weighted(returns),
        "cagr": _cagr(returns, periods),
        "volatility": _volatility(returns, periods),
        "sharpe": _sharpe(returns, risk_free, periods),
        "max_drawdown": _max_drawdown(returns),
        "exposure": _exposure(positions_value, total_value),
    }
