"""The walk-forward backtest: the product default tuned at every month's first session.

Each month's tuning (:func:`allocator.research.monthly.tune_month`) reads only what was known
before that session; its candidates' replays run in this process or on Dask
(:mod:`allocator.research.cluster`).
"""

from __future__ import annotations

import contextlib

from allocator.backtest.engine import BacktestResult
from allocator.research.cluster import dask_client, scheduler_address
from allocator.research.monthly import (
    REPLAY_MONTHS,
    cluster_replay,
    months_before,
    walk_forward_retune,
)
from allocator.research.replay import load_bars_for, run_backtest


def walk_forward_backtest(
    schedule, start, end, data_source, engine, csv_dir, workers
) -> BacktestResult:
    """The tuned backtest of [start, end] (module doc); ``workers`` > 0 replays on Dask."""
    first = months_before(start, REPLAY_MONTHS + 1)
    bars = load_bars_for(schedule, first, end, data_source, engine=engine, csv_dir=csv_dir)
    log: list = []
    with contextlib.ExitStack() as stack:
        client = shared = None
        if workers > 0:
            client = stack.enter_context(dask_client(scheduler_address(None), workers))
            shared = client.scatter(bars, broadcast=True)
        retune = walk_forward_retune(bars, cluster_replay(bars, client, shared), log=log)
        result = run_backtest(bars, start, end, schedule, retune=retune)
    result.tuning_log = log
    return result
