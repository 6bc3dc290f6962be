"""The backtest — pure: the daily session step replayed over given sessions and bars, in memory.

- :mod:`~allocator.backtest.schedule` — which config version applies on each date;
- :mod:`~allocator.backtest.prices` — opens and closes by session;
- :mod:`~allocator.backtest.engine` — :func:`~.engine.simulate` (the session step over a period)
  and :func:`~.engine.backtest_sessions` (with metrics and benchmarks);
- :mod:`~allocator.backtest.benchmarks` — all SPY, equal weight and cash, same deposits, and
  SPY + cash and equal weight + cash at the strategy's own exposure, rebalanced daily.

The NYSE calendar, the database and progress bars stay outside: the caller
(:mod:`allocator.jobs.backtest`) passes the sessions and the bars.
"""
