"""The backtest — pure: the daily session step replayed over given sessions and bars, in memory.

- :mod:`~allocator.backtest.schedule` — which config version applies on each date;
- :mod:`~allocator.backtest.prices` — opens and closes as arrays, by session;
- :mod:`~allocator.backtest.engine` — :func:`simulate` (the strategy) and :func:`run_backtest`;
- :mod:`~allocator.backtest.benchmarks` — all-SPY, equal weight and cash, as arrays.

The NYSE calendar, the database and progress bars stay outside: the caller
(:mod:`allocator.jobs.backtest`) passes the sessions and the bars.
"""
