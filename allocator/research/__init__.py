"""Research machinery: replaying history for backtests, sweeps, the study and tuning.

Not jobs themselves (those are in :mod:`allocator.jobs`, one module per job); the steps they
share, layered without a cycle (each imports only those above it):

- :mod:`~allocator.research.replay` — the bars and config schedule of a period, and the
  backtest over them with the production engine;
- :mod:`~allocator.research.kernel` — the session step compiled with numba, equal to the
  engine's, with :mod:`~allocator.research.kernel_inputs` (its arrays),
  :mod:`~allocator.research.kernel_metrics` (a sweep row's metrics from them) and
  :mod:`~allocator.research.replayer` (the API: ``Replayer.run``, ``daily``, ``metrics_rows``);
- :mod:`~allocator.research.cluster` — a grid of configs replayed in process or on Dask;
- :mod:`~allocator.research.monthly` — one month's tuning with its replays (the tune job's and
  the walk-forward's step);
- :mod:`~allocator.research.walkforward` — the backtest tuned at every month's first session;
- :mod:`~allocator.research.backtest_job` — a backtest over a period as a job calls it.
"""
