"""A grid of configs backtested on Dask distributed: the step the sweep, study and tuning share.

Bars are loaded once (:func:`allocator.research.replay.load_bars_for`) and scattered to every
worker; each grid point is one task running :func:`allocator.backtest.sweep.evaluate`, the
production backtest. Where it runs:

- an existing cluster, by its scheduler address (``scheduler=`` / ``--scheduler``, else the
  ``DASK_SCHEDULER_ADDRESS`` environment variable): ``dask scheduler`` and ``dask worker ADDRESS``
  started anywhere that can import this package;
- otherwise an embedded ``LocalCluster`` of ``workers`` processes (one thread each), started and
  stopped by the sweep: nothing to set up.

``serial=True`` runs the same tasks in this process, one after another (the reference the cluster
must equal, and the baseline of the speed-up).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from allocator.backtest.schedule import ConfigSchedule
from allocator.backtest.sweep import evaluate, expand_grid, parse_grid, results_table
from allocator.exceptions import JobError
from allocator.research.replay import load_bars_for
from allocator.shell import calendar
from allocator.shell.settings import Settings
from allocator.strategy.config import PRESET_NAMES, preset

log = logging.getLogger(__name__)

ENV_SCHEDULER = "DASK_SCHEDULER_ADDRESS"
#: Seconds to wait for a scheduler given by address before saying it cannot be reached.
CONNECT_TIMEOUT = 10


@dataclass(frozen=True)
class SweepResult:
    """The results table (one row per grid point, in grid order) and how it was computed."""

    table: pd.DataFrame
    start: dt.date
    end: dt.date
    base: str
    where: str
    workers: int
    seconds: float

    def summary_line(self) -> str:
        return (
            f"sweep {self.start}..{self.end}: {len(self.table)} configs on {self.where} "
            f"({self.workers} worker(s)) in {self.seconds:.1f} s"
        )


def scheduler_address(given: str | None = None) -> str | None:
    """The scheduler to use: ``given``, else ``DASK_SCHEDULER_ADDRESS``, else None (local)."""
    address = (given or os.environ.get(ENV_SCHEDULER) or "").strip()
    return address or None


@contextlib.contextmanager
def dask_client(address: str | None, workers: int) -> Iterator[Any]:
    """A Dask client on ``address``, or on an embedded ``LocalCluster`` of ``workers``."""
    from distributed import Client, LocalCluster

    if address:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise JobError(
                f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}): start it "
                f"with `dask scheduler` and `dask worker {address}`, or unset {ENV_SCHEDULER} "
                "and leave --scheduler out to run on a local cluster"
            ) from None
        with client:
            yield client
        return
    if workers < 1:
        raise JobError(f"workers {workers}: give at least 1 local worker")
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.WARNING,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def run_points(
    client, bars, sessions, base, points: list[dict], *, progress: bool = False, shared=None
) -> list[dict]:
    """:func:`~allocator.backtest.sweep.evaluate` of every point, in order: on ``client``'s
    cluster, or serially in this process when ``client`` is None. ``shared``: bars already
    scattered to the cluster (a walk-forward run scatters them once for every month)."""
    if client is None:
        return [evaluate(bars, sessions, base, p) for p in points]
    from distributed import as_completed
    from tqdm import tqdm

    shared = shared if shared is not None else client.scatter(bars, broadcast=True)
    futures = client.map(
        evaluate,
        [shared] * len(points),
        [sessions] * len(points),
        [base] * len(points),
        points,
        pure=False,
    )
    with tqdm(total=len(points), desc="sweep", unit="config", disable=not progress) as bar:
        for _ in as_completed(futures):
            bar.update()
    return client.gather(futures)


def run_sweep(
    grid: dict | str,
    start: dt.date | str,
    end: dt.date | str,
    *,
    base: str = "default",
    data_source: str = "database",
    csv_dir: str | None = None,
    scheduler: str | None = None,
    workers: int = 2,
    serial: bool = False,
    progress: bool = False,
    settings: Settings | None = None,
) -> SweepResult:
    """Backtest every point of ``grid`` on the preset ``base`` over [start, end]."""
    if base not in PRESET_NAMES:
        raise JobError(f"base {base!r}: use a preset, one of {', '.join(PRESET_NAMES)}")
    config = preset(base)
    points = expand_grid(config, grid)
    start, end = calendar.to_date(start, "start"), calendar.to_date(end, "end")
    if end < start:
        raise JobError(f"end {end} is before start {start}")
    sessions = calendar.sessions_between(start, end)
    if not sessions:
        raise JobError(f"no NYSE session between {start} and {end}")
    widest = _widest_schedule(config, points)
    bars = _load(widest, start, end, data_source, csv_dir, settings)
    clock = time.perf_counter()
    if serial:
        rows = run_points(None, bars, sessions, config, points)
        where, n = "this process (serial)", 1
    else:
        address = scheduler_address(scheduler)
        with dask_client(address, workers) as client:
            n = len(client.scheduler_info().get("workers", {}))
            rows = run_points(client, bars, sessions, config, points, progress=progress)
            where = f"Dask scheduler {address}" if address else "a local Dask cluster"
    table = results_table(rows, list(parse_grid(grid)))
    result = SweepResult(
        table, sessions[0], sessions[-1], base, where, n, time.perf_counter() - clock
    )
    log.info(result.summary_line())
    return result


def _widest_schedule(config, points) -> ConfigSchedule:
    """A schedule whose configs need every symbol and the longest history of any point."""
    longest = max([config.lookback_days, *(int(p.get("lookback_days", 0)) for p in points)])
    symbols = list(config.assets)
    for p in points:
        symbols += [s for s in p.get("assets", ()) if s not in symbols]
    return ConfigSchedule.constant(
        config.with_changes(lookback_days=longest, assets=tuple(symbols)), "sweep"
    )


def _load(schedule, start, end, data_source, csv_dir, settings) -> pd.DataFrame:
    if data_source != "database":
        return load_bars_for(schedule, start, end, data_source, csv_dir=csv_dir)
    from allocator.shell.persistence.migrate import migrated_engine

    with migrated_engine(settings) as engine:
        return load_bars_for(schedule, start, end, data_source, engine=engine)
