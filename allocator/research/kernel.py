"""The research replay kernel: the session step of the backtest, compiled with numba.

:func:`replay` runs the sessions of one config schedule over precomputed arrays (built by
:mod:`allocator.research.kernel_inputs`: its ``Inputs`` and ``KernelBook``) and returns what
:func:`allocator.backtest.engine.simulate` returns, bit for bit: the same decision
(:func:`allocator.strategy.decision.decide`), the same fills
(:func:`allocator.portfolio.fills.fill_orders_in_place`) and the same valuation, with the same
float operations in the same order:

- cash changes by each fill in fill order (SELLs, then BUYs, each by symbol);
- ``positions_value`` sums ``quantity x close`` left to right in the book's insertion order (a
  position sold to zero is removed and goes to the end when bought again);
- every rounding to the share or cent grid takes the float shortcut of
  :mod:`allocator.money.quantities` where that module proves it exact, and otherwise calls the
  Python function itself (``numba.objmode``): the decimal path is taken exactly when the
  reference takes it (``on_share_grid`` has its own provably exact shortcut, see
  :func:`_on_share_grid`).

Constants of the reference (the rounding margin, the sell floor, the rank weights…) are passed
in at every call (:func:`constants`), never frozen into the compiled code: numba's on-disk cache
(``cache=True``) only notices changes to this file, which is why every compiled function of the
kernel lives here.

Where the reference would raise (a missing open, a held symbol without a price, a BUY beyond
the cash) the kernel stops and returns an error code; the caller then runs the reference, which
raises the reference's error. Why numba and not numpy across configs: each session depends on
the book the previous sessions left (idle cash, whole-cent splits, the fills), so a config's
sessions are sequential; the kernel runs them in compiled code, one config at a time.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, objmode

from allocator.money import quantities
from allocator.portfolio import fills
from allocator.strategy import decision

HOLD, BUY, SELL = 0, 1, 2
ACTIONS = ("HOLD", "BUY", "SELL")
#: Regime labels as numbers (UNKNOWN: no previous session).
BEARISH, NEUTRAL, BULLISH, UNKNOWN = 0, 1, 2, -1

# Layout of the constants array (see constants()).
_MARGIN, _FAST_LIMIT, _STEPS, _DUST, _CASH_TOLERANCE, _SHARE_STEP, _MIN_SELL = range(7)
_EQUAL, _DOMINANT = 7, 10
# Layout of a config's parameter row (see kernel_inputs.config_rows).
P_CAPITAL, P_BULL, P_BEAR, P_RISK_HIGH, P_RISK_MEDIUM, P_LOW = range(6)
P_MEDIUM, P_HIGH, P_NEUTRAL, P_SELL, P_DEPLOY, P_SPELL_START = range(6, 12)
P_SLIPPAGE, P_COMMISSION = 12, 13
N_PARAMS = 14
# Error codes, where the reference raises (the caller then runs the reference for its error):
# 1 idle cash is not a finite amount >= 0; 2 a score, the regime or the risk is not finite;
# 3 a held symbol has no positive price to value its sale; 4 an order's symbol has no positive
# open; 5 a SELL exceeds the holding; 6 a BUY exceeds the cash by more than the tolerance;
# 7 a held symbol has no close to value it; 8 a SELL's proceeds and the cash cannot pay its
# commission.
#: A float within this many share steps of a whole step count is that grid point (see
#: _on_share_grid); below the limit one float ulp of the steps stays under 0.002 steps.
_GRID_SNAP, _GRID_LIMIT = 1e-3, 1e13
#: The session step's helpers are inlined into :func:`run_sessions` (numba IR inlining), one
#: function compiled as a whole; the decimal paths stay separate calls (object mode).
_inline = njit(cache=True, inline="always")


def constants() -> tuple[float, ...]:
    """The reference's constants, read from its modules at call time (a tuple of floats: the
    compiled code reads it without reference counting)."""
    return tuple(
        float(c)
        for c in (
            quantities._MARGIN,
            quantities._FAST_LIMIT,
            quantities._STEPS_PER_SHARE,
            fills.DUST,
            fills.CASH_TOLERANCE,
            fills.SHARE_STEP,
            decision.MIN_SELL_FRACTION,
            *decision.EQUAL_SCORE_WEIGHTS,
            *decision.DOMINANT_SCORE_WEIGHTS,
        )
    )


# --- the grids (allocator.money.quantities) ---------------------------------------------------


@_inline
def _fast_floor(steps, k):
    """``quantities._fast_floor``: the floor, or -1 where the reference defers to decimals."""
    if not (0.0 < steps < k[_FAST_LIMIT]):
        return -1
    whole = math.floor(steps)
    if k[_MARGIN] < steps - whole < 1.0 - k[_MARGIN]:
        return whole
    return -1


@_inline
def _shares_for_dollars(amount, price, k):
    if price > 0.0:
        whole = _fast_floor(amount / price * k[_STEPS], k)
        if whole >= 0:
            return whole / k[_STEPS]
    return _decimal_shares_for_dollars(amount, price)


@_inline
def _fraction_of_holding(held, fraction, k):
    if held <= 0:
        return 0.0
    whole = _fast_floor(held * fraction * k[_STEPS], k)
    if whole >= 0:
        out = whole / k[_STEPS]
        return held if held < out else out  # min(out, held)
    return _decimal_fraction_of_holding(held, fraction)


@_inline
def _to_cents(amount, k):
    cents = amount * 100.0
    if 0.0 <= cents < k[_FAST_LIMIT]:
        whole = math.floor(cents)
        if abs(cents - whole - 0.5) > k[_MARGIN]:
            return whole + 1 if cents - whole > 0.5 else whole
    return _decimal_to_cents(amount)


@_inline
def _floor_cents(amount, k):
    whole = _fast_floor(amount * 100.0, k)
    if whole >= 0:
        return whole
    return _decimal_floor_cents(amount)


@_inline
def _on_share_grid(quantity, k):
    """``round(quantity, 4)``. When ``y = quantity x 10**4`` (one rounding) is within
    ``_GRID_SNAP`` of a whole ``n < _GRID_LIMIT``, the exact ``quantity x 10**4`` is within
    0.002 of ``n``, so the decimal rounding is ``n / 10**4`` and ``round`` returns the float
    nearest to it, ``n / 1e4``. Anything else asks Python's ``round``."""
    y = quantity * k[_STEPS]
    if 0.0 <= y < _GRID_LIMIT:
        whole = math.floor(y + 0.5)
        if abs(y - whole) < _GRID_SNAP:
            return whole / k[_STEPS]
    return _python_on_share_grid(quantity)


# The reference's decimal paths, entered only where it takes them. Each takes scalars only and
# is never inlined: a call that may enter object mode is kept out of the inlined session step.


@njit(cache=True)
def _decimal_shares_for_dollars(amount, price):
    with objmode(out="float64"):
        out = quantities.shares_for_dollars(amount, price)
    return out


@njit(cache=True)
def _decimal_fraction_of_holding(held, fraction):
    with objmode(out="float64"):
        out = quantities.fraction_of_holding(held, fraction)
    return out


@njit(cache=True)
def _decimal_to_cents(amount):
    with objmode(out="int64"):
        out = quantities.to_cents(amount)
    return out


@njit(cache=True)
def _decimal_floor_cents(amount):
    with objmode(out="int64"):
        out = quantities.floor_cents(amount)
    return out


@njit(cache=True)
def _python_on_share_grid(quantity):
    with objmode(out="float64"):
        out = quantities.on_share_grid(quantity)
    return out


# --- the decision (allocator.strategy.decision) -------------------------------------------------


@_inline
def _label(regime, p):
    if regime < p[P_BEAR]:
        return BEARISH
    if regime > p[P_BULL]:
        return BULLISH
    return NEUTRAL


@_inline
def _sell_fraction(regime, p, k):
    bear = p[P_BEAR]
    depth = (bear - regime) / (bear + 1.0) if bear > -1.0 else 1.0
    depth = 0.0 if depth < 0.0 else depth  # max(depth, 0.0)
    depth = 1.0 if depth > 1.0 else depth  # min(depth, 1.0)
    return k[_MIN_SELL] + (p[P_SELL] - k[_MIN_SELL]) * depth


@_inline
def _buy_pct(regime, risk, label, p):
    """The BUY's fraction of daily capital, or -1.0 for no buying (neutral leaning down)."""
    if label == BULLISH:
        if risk > p[P_RISK_HIGH]:
            return p[P_HIGH]
        if risk >= p[P_RISK_MEDIUM]:
            return p[P_MEDIUM]
        return p[P_LOW]
    if regime >= 0:
        return p[P_NEUTRAL]
    return -1.0


@_inline
def _rank_weights(n, w, k):
    """``decision.rank_weights`` of the ``n`` positive scores ``w.top`` (highest first), into
    ``w.weights``."""
    top, out = w.top, w.weights
    out[:n] = 0.0
    if n == 1:
        out[0] = 1.0
        return
    m = min(n, 3)
    c = (top[0] - top[m - 1]) / top[0]
    total = 0.0
    for i in range(m):
        e = k[_EQUAL + i]
        out[i] = e + c * (k[_DOMINANT + i] - e)
        total += out[i]
    for i in range(m):
        out[i] = out[i] / total


@_inline
def _split_cents(budget, n, w):
    """``decision.split_cents`` of ``w.weights[:n]`` into ``w.cents``: largest remainder, ties
    to the higher rank."""
    weights, raw, cents, order, eligible = w.weights, w.raw, w.cents, w.order, w.eligible
    left = budget
    for i in range(n):
        raw[i] = budget * weights[i]
        cents[i] = math.floor(raw[i])
        left -= cents[i]
        order[i] = i
    for i in range(1, n):  # insertion sort by (-(remainder), index)
        j = i
        while j > 0:
            a, b = order[j - 1], order[j]
            ra, rb = raw[a] - cents[a], raw[b] - cents[b]
            if rb > ra or (rb == ra and b < a):
                order[j - 1], order[j] = b, a
                j -= 1
            else:
                break
    ne = 0
    for i in order[:n]:
        if weights[i] > 0:
            eligible[ne] = i
            ne += 1
    if ne == 0:
        for i in range(n):
            eligible[i] = order[i]
        ne = n
    for step in range(max(left, 0)):
        cents[eligible[step % ne]] += 1
    for step in range(max(-left, 0)):
        cents[eligible[ne - 1 - step % ne]] -= 1


@_inline
def _buy_dollars(s, scores, name_rank, p, pct, idle, k, w):
    """Fill ``w.dollars`` (per symbol) for a BUY of ``pct``; False when the decision is HOLD."""
    positive = w.positive
    n = 0
    for j in range(scores.shape[1]):
        if scores[s, j] > 0:
            positive[n] = j
            n += 1
    for i in range(1, n):  # sort by (-score, symbol)
        j = i
        while j > 0:
            a, b = positive[j - 1], positive[j]
            if scores[s, b] > scores[s, a] or (
                scores[s, b] == scores[s, a] and name_rank[b] < name_rank[a]
            ):
                positive[j - 1], positive[j] = b, a
                j -= 1
            else:
                break
    budget = _to_cents(p[P_CAPITAL] * pct, k)
    if p[P_DEPLOY] > 0 and idle > 0:
        budget += _floor_cents(p[P_DEPLOY] * idle, k)
    if n == 0 or budget <= 0:
        return False
    for i in range(n):
        w.top[i] = scores[s, positive[i]]
    _rank_weights(n, w, k)
    _split_cents(budget, n, w)
    for i in range(n):
        if w.cents[i] > 0:
            w.dollars[positive[i]] = w.cents[i] / 100
    return True


@_inline
def _sell_quantities(s, x, qty, by_name, fraction, k, sells):
    """Fill ``sells`` (shares per symbol) for a SELL of ``fraction``: the number of sells, or
    -1 when a held symbol has no positive price (the reference raises)."""
    n = 0
    for j in by_name:
        if qty[j] <= 0:
            continue
        q = _fraction_of_holding(qty[j], fraction, k)
        if q <= 0:
            continue
        price = x.state_close[s, j]
        if math.isnan(price):  # not one of the config's assets: its last close
            price = x.outside_close[s, j]
        if not (math.isfinite(price) and price > 0):
            return -1
        sells[j] = q
        n += 1
    return n


# --- the fills (allocator.portfolio.fills) ------------------------------------------------------


@_inline
def _fill_price(s, j, opens, action, costs):
    """``fills.fill_price`` at the open of ``j`` (slippage ``costs[0]`` bps), or -1.0 when the
    open is missing or the price not a positive number (the reference raises)."""
    factor = costs[0] / 10_000.0
    price = opens[s, j] * (1.0 + factor) if action == BUY else opens[s, j] * (1.0 - factor)
    return price if (math.isfinite(price) and price > 0) else -1.0


@_inline
def _record(book, trades, tint, s, j, action, q, price, amount, pnl):
    t = book.n_trades[0]
    tint[t, 0], tint[t, 1], tint[t, 2] = s, j, action
    trades[t, 0], trades[t, 1], trades[t, 2], trades[t, 3] = q, price, amount, pnl
    book.n_trades[0] = t + 1


@_inline
def _fill_sells(s, sells, by_name, opens, book, trades, tint, k, costs):
    """The SELLs of ``fills.fill_orders_in_place`` (``fills._sell``), by symbol."""
    commission = costs[1]
    for j in by_name:
        if sells[j] <= 0:
            continue
        price = _fill_price(s, j, opens, SELL, costs)
        if price < 0:
            return 4
        held = book.qty[j]
        q = sells[j]
        if held <= 0 or q > held + k[_DUST]:
            return 5
        q = held if held < q else q  # min(q, held)
        amount = q * price
        if book.cash[0] + (amount - commission) < 0:
            return 8
        pnl = q * (price - book.avg[j])
        remaining = _on_share_grid(held - q, k)
        if remaining <= k[_DUST]:
            _remove(book, j)
        else:
            book.qty[j] = remaining
        book.cash[0] += amount - commission
        _record(book, trades, tint, s, j, SELL, q, price, amount, pnl)
    return 0


@_inline
def _remove(book, j):
    book.qty[j] = 0.0
    n = book.n_held[0]
    at = 0
    while book.order[at] != j:
        at += 1
    for i in range(at, n - 1):
        book.order[i] = book.order[i + 1]
    book.n_held[0] = n - 1


@_inline
def _affordable(price, amount, cash, commission, k):
    """``fills.affordable_buy``: (quantity, amount), or a quantity of -1.0 for a real shortfall."""
    if amount + commission - cash > k[_CASH_TOLERANCE]:
        return -1.0, amount
    spendable = cash - commission
    q = _shares_for_dollars(0.0 if spendable < 0.0 else spendable, price, k)
    while q > 0 and q * price > spendable:
        q = _on_share_grid(q - k[_SHARE_STEP], k)
    return q, q * price


@_inline
def _fill_buys(s, dollars, by_name, opens, book, trades, tint, k, costs):
    """The BUYs of ``fills.fill_orders_in_place`` (their dollars pay the commission first)."""
    commission = costs[1]
    for j in by_name:
        if dollars[j] <= 0:
            continue
        price = _fill_price(s, j, opens, BUY, costs)
        if price < 0:
            return 4
        budget = dollars[j] - commission
        q = _shares_for_dollars(budget, price, k) if budget > 0 else 0.0
        amount = q * price
        if q <= 0:
            continue
        if amount + commission > book.cash[0]:
            q, amount = _affordable(price, amount, book.cash[0], commission, k)
            if q < 0:
                return 6
            if q <= 0:
                continue
        held = book.qty[j]
        if held > 0:
            total = _on_share_grid(held + q, k)
            book.avg[j] = (held * book.avg[j] + q * price) / total
            book.qty[j] = total
        else:
            book.qty[j], book.avg[j] = q, price
            book.order[book.n_held[0]] = j
            book.n_held[0] += 1
        book.cash[0] += -amount - commission
        _record(book, trades, tint, s, j, BUY, q, price, amount, np.nan)
    return 0


# --- the session loop ---------------------------------------------------------------------------


class Work(NamedTuple):
    """Scratch arrays of one session, one slot per symbol, allocated once per replay."""

    sells: np.ndarray
    dollars: np.ndarray
    positive: np.ndarray
    top: np.ndarray
    weights: np.ndarray
    raw: np.ndarray
    cents: np.ndarray
    order: np.ndarray
    eligible: np.ndarray


@_inline
def _decide(s, x, previous, book, by_name, w, k):
    """(action, allocation_pct, label, error) of session ``s``; fills ``w.sells`` or
    ``w.dollars``."""
    p = x.params[x.config_of[s]]
    cash = book.cash[0]
    if not (math.isfinite(cash) and cash >= 0):
        return HOLD, 0.0, UNKNOWN, 1
    for j in range(x.scores.shape[1]):
        if not (math.isnan(x.state_close[s, j]) or math.isfinite(x.scores[s, j])):
            return HOLD, 0.0, UNKNOWN, 2
    regime, risk = x.regime[s], x.risk[s]
    if not (math.isfinite(regime) and math.isfinite(risk)):
        return HOLD, 0.0, UNKNOWN, 2
    label = _label(regime, p)
    if label == BEARISH:
        if p[P_SPELL_START] > 0 and previous == BEARISH:
            return HOLD, 0.0, label, 0
        fraction = _sell_fraction(regime, p, k)
        n = _sell_quantities(s, x, book.qty, by_name, fraction, k, w.sells)
        if n < 0:
            return HOLD, 0.0, label, 3
        return (SELL, fraction, label, 0) if n > 0 else (HOLD, 0.0, label, 0)
    pct = _buy_pct(regime, risk, label, p)
    if pct < 0:
        return HOLD, 0.0, label, 0
    if _buy_dollars(s, x.scores, x.name_rank, p, pct, cash, k, w):
        return BUY, pct, label, 0
    return HOLD, 0.0, label, 0


@_inline
def _value(s, closes, book):
    """``Book.positions_value`` at the closes of ``s`` (insertion order), or NaN when a held
    symbol has no close."""
    total = 0.0
    for i in range(book.n_held[0]):
        j = book.order[i]
        close = closes[s, j]
        if math.isnan(close):
            return np.nan
        total += book.qty[j] * close
    return total


def replay(x, book, previous: int, k: tuple[float, ...]):
    """Every session of ``x`` (``kernel_inputs.Inputs``) in order on ``book`` (its
    ``KernelBook``, changed in place), ``previous`` the regime label before the first. Returns
    ``(daily, actions, held, trades, tint, previous, error, error_session)``: per session cash,
    positions value, allocation_pct and number of fills (``daily``), the action, the shares held
    after it; the fills (quantity, price, amount, realized P&L in ``trades``; session, symbol,
    action in ``tint``); ``error`` 0, or the code of what the reference raises (listed at the
    top of this module)."""
    n, m = x.scores.shape
    daily, actions, held = np.zeros((n, 4)), np.zeros(n, dtype=np.int8), np.zeros((n, m))
    trades, tint = np.zeros((n * m + 1, 4)), np.zeros((n * m + 1, 3), dtype=np.int64)
    floats, ints = np.zeros((5, m)), np.zeros((4, m), dtype=np.int64)
    f, i = floats, ints
    w = Work(f[0], f[1], i[0], f[2], f[3], f[4], i[1], i[2], i[3])
    out = (daily, actions, held, trades, tint)
    by_name = np.argsort(x.name_rank)
    previous, error, at = run_sessions(x, book, previous, k, out, by_name, w)
    return daily, actions, held, trades, tint, previous, error, at


#: ``run_sessions`` allocates nothing (``replay`` passes every array in), so it is compiled
#: without numba's reference-counting runtime: 4x faster (0.75 against 2.9 ms for 20 years),
#: and an allocation slipped into the loop fails to compile instead of slowing it down.
@njit(cache=True, _nrt=False)
def run_sessions(x, book, previous, k, out, by_name, w):
    """The session loop of :func:`replay`: (previous label, error, error session)."""
    daily, actions, held, trades, tint = out
    m = x.scores.shape[1]
    for s in range(x.scores.shape[0]):
        w.sells[:] = 0.0
        w.dollars[:] = 0.0
        action, pct, label, error = _decide(s, x, previous, book, by_name, w, k)
        if error:
            return previous, error, s
        previous = label
        before, c = book.n_trades[0], x.config_of[s]
        book.cash[0] += x.params[c, P_CAPITAL]
        costs = (x.params[c, P_SLIPPAGE], x.params[c, P_COMMISSION])
        error = _fill_sells(s, w.sells, by_name, x.opens, book, trades, tint, k, costs)
        if not error:
            error = _fill_buys(s, w.dollars, by_name, x.opens, book, trades, tint, k, costs)
        value = _value(s, x.closes, book)
        if error or math.isnan(value):
            return previous, error or 7, s
        daily[s, 0], daily[s, 1], daily[s, 2] = book.cash[0], value, pct
        daily[s, 3] = book.n_trades[0] - before
        actions[s] = action
        for j in range(m):
            held[s, j] = book.qty[j]
    return previous, 0, -1
