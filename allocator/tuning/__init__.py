"""Monthly tuning — pure: no database, no clock, no network, no files.

- :mod:`~allocator.tuning.scoring` — each trade scored −1..+1 from the 10 sessions after it;
- :mod:`~allocator.tuning.conditions` — momentum and choppy markets, performance by condition;
- :mod:`~allocator.tuning.recommend` — recommendations, bounded candidate changes, safe ranges;
- :mod:`~allocator.tuning.objective` — the objective a candidate must improve to be accepted;
- :mod:`~allocator.tuning.tuner` — one month's tuning from trades, signals and closes.

The monthly ``tune`` job (:mod:`allocator.jobs.tune`) and the walk-forward backtest call the same
functions; the job reads the book, the backtest its own trades so far.
"""
