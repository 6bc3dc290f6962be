"""A grid of configs backtested: the step the sweep and the study share, in process or on Dask.

Bars are loaded once (:func:`allocator.research.replay.load_bars_for`). Each grid point gives the
row of :func:`allocator.backtest.sweep.evaluate`, computed by one of two engines:

- ``kernel`` (the default): the research replay kernel
  (:meth:`allocator.research.replayer.Replayer.metrics_rows`), proven equal to ``evaluate``
  (``tests/test_kernel.py``): about 4 ms per config over 20 years, against 0.3 s;
- ``reference``: ``evaluate`` itself, the production backtest.

Where it runs:

- an existing cluster, by its scheduler address (``scheduler=`` / ``--scheduler``, else the
  ``DASK_SCHEDULER_ADDRESS`` environment variable): ``dask scheduler`` and ``dask worker ADDRESS``
  started anywhere that can import this package; the kernel's points go in chunks, one replayer
  per chunk;
- otherwise, with the kernel, in this process: a 2-worker ``LocalCluster`` takes 5-7 s on the
  2-core development machine to start, import the package in its workers and stop, longer than
  a whole 200-config 20-year kernel sweep (about 0.8 s), and two cores can at best halve the
  work; local kernel work therefore never starts a cluster;
- with the reference engine, an embedded ``LocalCluster`` of ``workers`` processes (one thread
  each), started and stopped by the sweep.

``serial=True`` runs every point in this process, one after another, whatever the engine (the
reference's serial run is the baseline the cluster must equal).
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
#: How a point's row is computed (module doc).
ENGINES = ("kernel", "reference")
#: Kernel chunks per Dask worker: enough to balance the load, few enough to build few replayers.
CHUNKS_PER_WORKER = 4
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
    engine: str = "kernel"

    def summary_line(self) -> str:
        return (
            f"sweep {self.start}..{self.end}: {len(self.table)} configs on {self.where} "
            f"({self.workers} worker(s), {self.engine} engine) in {self.seconds:.1f} s"
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


def kernel_rows(bars, sessions, base, points: list[dict]) -> list[dict]:
    """:func:`~allocator.backtest.sweep.evaluate` of every point on the replay kernel."""
    from allocator.research.replayer import Replayer

    return Replayer(bars).metrics_rows(sessions, base, points)


def run_points(
    client,
    bars,
    sessions,
    base,
    points: list[dict],
    *,
    progress: bool = False,
    shared=None,
    engine: str = "kernel",
) -> list[dict]:
    """:func:`~allocator.backtest.sweep.evaluate` of every point, in order, by ``engine``: on
    ``client``'s cluster, or in this process when ``client`` is None. ``shared``: bars already
    scattered to the cluster (a walk-forward run scatters them once for every month)."""
    check_engine(engine)
    if client is None:
        if engine == "kernel":
            return kernel_rows(bars, sessions, base, points)
        return [evaluate(bars, sessions, base, p) for p in points]
    from distributed import as_completed
    from tqdm import tqdm

    shared = shared if shared is not None else client.scatter(bars, broadcast=True)
    if engine == "kernel":  # chunks of points, one replayer (and its market states) each
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        size = max(1, -(-len(points) // (CHUNKS_PER_WORKER * workers)))
        task, items = kernel_rows, [points[i : i + size] for i in range(0, len(points), size)]
    else:
        task, items = evaluate, points
    n = len(items)
    futures = client.map(task, [shared] * n, [sessions] * n, [base] * n, items, pure=False)
    counts = [len(item) if engine == "kernel" else 1 for item in items]
    sizes = {f.key: count for f, count in zip(futures, counts, strict=True)}
    with tqdm(total=len(points), desc="sweep", unit="config", disable=not progress) as bar:
        for future in as_completed(futures):
            bar.update(sizes[future.key])
    done = client.gather(futures)
    return [row for rows in done for row in rows] if engine == "kernel" else done


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise JobError(f"engine {engine!r}: use one of {', '.join(ENGINES)}")


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
    engine: str = "kernel",
) -> SweepResult:
    """Backtest every point of ``grid`` on the preset ``base`` over [start, end] (where and
    with which engine: module doc)."""
    check_engine(engine)
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
    address = scheduler_address(scheduler)
    if serial or (engine == "kernel" and not address):
        rows = run_points(None, bars, sessions, config, points, engine=engine)
        where, n = "this process (serial)" if serial else "this process", 1
    else:
        with dask_client(address, workers) as client:
            n = len(client.scheduler_info().get("workers", {}))
            rows = run_points(
                client, bars, sessions, config, points, progress=progress, engine=engine
            )
            where = f"Dask scheduler {address}" if address else "a local Dask cluster"
    table = results_table(rows, list(parse_grid(grid)))
    seconds = time.perf_counter() - clock
    result = SweepResult(table, sessions[0], sessions[-1], base, where, n, seconds, engine)
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
