"""The two grids money lives on: share quantities of 4 decimals, and dollars in whole cents.

Every rounding of a quantity or an amount in the package goes through this module, in decimal
arithmetic on the shortest ``repr`` of each float, so a rule like "round down to 4 decimals" has
one definition and float noise (``0.3 / 0.1 = 2.9999999999999996``) never loses a share step.

Speed: each rounding first tries a float shortcut that is *provably* the decimal result, and
falls back to the decimal arithmetic otherwise. The shortcut computes ``y``, the value to round
expressed in grid steps, in float; it differs from the decimal value by at most about
``4 x 2**-53`` relative (the ``repr`` of each input is within half an ulp of the float, one
correctly rounded float operation per step, and the decimal quotient or product is rounded to 28
digits), so for ``0 < y < 1e9`` it is off by less than :data:`_MARGIN` steps. When ``y`` is
farther than :data:`_MARGIN` from every rounding boundary, the float and the decimal value round
to the same grid point; that point is a whole number of steps ``k < 2**53``, and ``k / 10**d``
is the correctly rounded float that ``float(Decimal)`` also returns. Values near a boundary,
exact grid values and anything out of range take the decimal path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

import numpy as np

#: Fractional shares are kept to this many decimals (the design document's "round to 4 decimals").
QUANTITY_DECIMALS = 4
_SHARE_STEP = Decimal(1).scaleb(-QUANTITY_DECIMALS)
_STEPS_PER_SHARE = 10.0**QUANTITY_DECIMALS
_CENT = Decimal(1)
#: Distance (in grid steps) from a rounding boundary under which the float shortcut defers.
_MARGIN = 1e-6
#: Largest value (in grid steps) the float shortcut handles: its error stays below the margin.
_FAST_LIMIT = 1e9
#: Step counts below which sums of grid quantities are exact in whole steps (see on_share_grid).
MAX_GRID_STEPS = 10**13


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def _fast_floor(steps: float) -> int | None:
    """``floor(steps)`` when ``steps`` is safely inside (0, 1e9) and away from an integer."""
    if not 0.0 < steps < _FAST_LIMIT:
        return None
    k = math.floor(steps)
    if _MARGIN < steps - k < 1.0 - _MARGIN:
        return k
    return None


def floor_shares(exact: Decimal) -> float:
    """``exact`` rounded *down* to the 4-decimal share grid, as a float."""
    return float(exact.quantize(_SHARE_STEP, rounding=ROUND_FLOOR))


def shares_for_dollars(amount: float, price: float) -> float:
    """Shares a BUY of ``amount`` dollars gets at ``price``: ``floor(amount / price, 4 dp)``.

    Rounded down, so the fill never costs more than the dollars allocated.
    """
    amount, price = float(amount), float(price)
    if price > 0.0:
        k = _fast_floor(amount / price * _STEPS_PER_SHARE)
        if k is not None:
            return k / _STEPS_PER_SHARE
    return floor_shares(_decimal(amount) / _decimal(price))


def shares_for_dollars_each(amount: float, prices: Sequence[float]) -> list[float]:
    """:func:`shares_for_dollars` of ``amount`` at each of ``prices`` (positive floats)."""
    amount = float(amount)
    out = []
    for price in prices:
        k = _fast_floor(amount / price * _STEPS_PER_SHARE) if price > 0.0 else None
        out.append(shares_for_dollars(amount, price) if k is None else k / _STEPS_PER_SHARE)
    return out


def share_steps_for_dollars(amount: float, prices: np.ndarray) -> np.ndarray | None:
    """:func:`shares_for_dollars` of ``amount`` at each of ``prices``, in whole share steps
    (``quantity x 10**4``, int64), or None when one of them needs the decimal path."""
    steps = amount / prices * _STEPS_PER_SHARE
    k = np.floor(steps)
    fraction = steps - k
    safe = (steps > 0.0) & (steps < _FAST_LIMIT) & (fraction > _MARGIN) & (fraction < 1 - _MARGIN)
    return k.astype(np.int64) if safe.all() else None


def steps_of(quantity: float) -> int:
    """The whole share steps of a quantity on the grid (``round(quantity x 10**4)``, exact)."""
    return round(quantity * _STEPS_PER_SHARE)


def fraction_of_holding(held: float, fraction: float) -> float:
    """Shares a SELL of ``fraction`` of ``held`` sells: ``floor(held x fraction, 4 dp)``, ≤ held."""
    if held <= 0:
        return 0.0
    held, fraction = float(held), float(fraction)
    k = _fast_floor(held * fraction * _STEPS_PER_SHARE)
    if k is not None:
        return min(k / _STEPS_PER_SHARE, held)
    return min(floor_shares(_decimal(held) * _decimal(fraction)), held)


def on_share_grid(quantity: float) -> float:
    """A sum or difference of grid quantities put back on the grid (no float dust accumulates).

    For grid quantities ``i / 10**4`` and ``j / 10**4`` (as floats) of fewer than
    :data:`MAX_GRID_STEPS` steps in all, ``on_share_grid(a + b)`` is the float
    ``(i + j) / 10**4``: the float sum is within 1.5 ulp of the exact one, far closer than half a
    step, so rounding to 4 decimals lands on it. Whole step counts can stand in for the sum.
    """
    return round(quantity, QUANTITY_DECIMALS)


#: Decimals of the share quantities a broker fills (Alpaca: up to 9), kept as the broker reports.
BROKER_QUANTITY_DECIMALS = 9


def on_broker_grid(quantity: float) -> float:
    """A sum or difference of broker quantities put back on the broker's 9-decimal grid.

    A notional (dollar) order fills whatever fraction of a share the broker computes, not a
    point of the strategy's 4-decimal grid: the book keeps the broker's quantity, so it matches
    the broker's positions share for share.
    """
    return round(quantity, BROKER_QUANTITY_DECIMALS)


def to_cents(amount: float) -> int:
    """Dollars to whole cents, half up, in decimal arithmetic (``800.005`` -> 80001)."""
    cents = float(amount) * 100.0
    if 0.0 <= cents < _FAST_LIMIT:
        k = math.floor(cents)
        if abs(cents - k - 0.5) > _MARGIN:  # not near a tie: the nearest whole cent
            return k + 1 if cents - k > 0.5 else k
    return int((_decimal(amount) * 100).quantize(_CENT, rounding=ROUND_HALF_UP))


def floor_cents(amount: float) -> int:
    """Dollars to whole cents, rounded down, in decimal arithmetic (``0.019`` -> 1)."""
    k = _fast_floor(float(amount) * 100.0)
    if k is not None:
        return k
    return int((_decimal(amount) * 100).quantize(_CENT, rounding=ROUND_FLOOR))
