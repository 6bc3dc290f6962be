"""The grids money lives on, below the strategy and the portfolio that both round to them.

- :mod:`~allocator.money.quantities` — share quantities on the 4-decimal grid, dollars in
  whole cents: every rounding of a quantity or an amount in the package.
"""
