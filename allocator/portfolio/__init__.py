"""The portfolio and its analytics — pure: no database, no clock, no network, no files.

- :mod:`~allocator.portfolio.book` — cash and positions, their value and unrealised P&L;
- :mod:`~allocator.portfolio.fills` — orders filled at the open against a book;
- :mod:`~allocator.portfolio.session` — one session of the strategy on a book: decide, deposit,
  fill, value. The daily jobs call its steps one by one; the backtest calls :func:`step_session`;
- :mod:`~allocator.portfolio.metrics` — flow-adjusted performance metrics;
- :mod:`~allocator.portfolio.periods` — drawdown episodes, calendar returns, rolling ratios;
- :mod:`~allocator.portfolio.trade_stats` — win rate, profit factor, holding time of the fills;
- :mod:`~allocator.portfolio.slippage` — each fill's slippage against the official open, and
  by month.

The share and cent grids they round to are :mod:`allocator.money.quantities`, below both the
portfolio and the strategy.
"""
