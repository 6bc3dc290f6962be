"""The two grids money lives on: share quantities of 4 decimals, and dollars in whole cents.

Every rounding of a quantity or an amount in the package goes through this module, in decimal
arithmetic on the shortest ``repr`` of each float, so a rule like "round down to 4 decimals" has
one definition and float noise (``0.3 / 0.1 = 2.9999999999999996``) never loses a share step.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

#: Fractional shares are kept to this many decimals (the design document's "round to 4 decimals").
QUANTITY_DECIMALS = 4
_SHARE_STEP = Decimal(1).scaleb(-QUANTITY_DECIMALS)
_CENT = Decimal(1)


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def floor_shares(exact: Decimal) -> float:
    """``exact`` rounded *down* to the 4-decimal share grid, as a float."""
    return float(exact.quantize(_SHARE_STEP, rounding=ROUND_FLOOR))


def shares_for_dollars(amount: float, price: float) -> float:
    """Shares a BUY of ``amount`` dollars gets at ``price``: ``floor(amount / price, 4 dp)``.

    Rounded down, so the fill never costs more than the dollars allocated.
    """
    return floor_shares(_decimal(amount) / _decimal(price))


def fraction_of_holding(held: float, fraction: float) -> float:
    """Shares a SELL of ``fraction`` of ``held`` sells: ``floor(held x fraction, 4 dp)``, ≤ held."""
    if held <= 0:
        return 0.0
    return min(floor_shares(_decimal(held) * _decimal(fraction)), float(held))


def on_share_grid(quantity: float) -> float:
    """A sum or difference of grid quantities put back on the grid (no float dust accumulates)."""
    return round(quantity, QUANTITY_DECIMALS)


def to_cents(amount: float) -> int:
    """Dollars to whole cents, half up, in decimal arithmetic (``800.005`` -> 80001)."""
    return int((_decimal(amount) * 100).quantize(_CENT, rounding=ROUND_HALF_UP))


def floor_cents(amount: float) -> int:
    """Dollars to whole cents, rounded down, in decimal arithmetic (``0.019`` -> 1)."""
    return int((_decimal(amount) * 100).quantize(_CENT, rounding=ROUND_FLOOR))
