"""The strategy core — pure: no database, no clock, no network, no files.

From closes to a decision, each formula in one module:

- :mod:`~allocator.strategy.config` — the trading config, typed and validated;
- :mod:`~allocator.strategy.symbols` — the one rule a ticker symbol follows;
- :mod:`~allocator.strategy.features` — returns, volatility, moving averages;
- :mod:`~allocator.strategy.regime` — the regime score −1..+1 and its label;
- :mod:`~allocator.strategy.risk` — the risk score 0..100 and its band;
- :mod:`~allocator.strategy.ranking` — the composite score that ranks assets;
- :mod:`~allocator.strategy.market_state` — all of the above at one close, for every date;
- :mod:`~allocator.strategy.decision` — BUY / SELL / HOLD and the dollars of each asset;
- :mod:`~allocator.strategy.calibration` — how often each regime and risk band occurs.

Functions here take values and return values; ``tests/test_architecture.py`` keeps this package
free of imports from the shell, the jobs and I/O libraries.
"""
