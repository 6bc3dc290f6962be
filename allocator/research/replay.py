"""Replaying history: bars and config versions loaded for a period, then the backtest over it.

Not a job itself: the step the backtest, sweep, study and tuning jobs share
(:func:`allocator.research.backtest_job.run_backtest_job` runs it for a job).

Data sources: ``database`` (``price_history``, the default), or any market data source read
straight into memory (``csv`` with ``csv_dir``, ``synthetic``) without touching the database.
Config sources: ``history`` (the version active on each date, as production had it), ``active``
(a dry run of today's production config over the whole period), or a preset: ``default`` (the
product default) or ``seed`` (the design document's table, read literally). ``overrides`` (a
dict, or JSON text) changes parameters on top, for what-if runs.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pandas as pd

from allocator.backtest.benchmarks import BENCHMARK_SYMBOL
from allocator.backtest.engine import BacktestResult, backtest_sessions
from allocator.backtest.schedule import ConfigSchedule, ScheduledConfig
from allocator.exceptions import BacktestError, JobError
from allocator.shell import calendar
from allocator.strategy.config import PRESET_NAMES, preset
from allocator.strategy.risk import required_history

#: Where the configs come from: stored versions by date, the active one, or a preset by name.
CONFIG_SOURCES = ("history", "active", *PRESET_NAMES, "walk_forward")
#: Walk-forward: the product default, tuned at every month's first session with past data only.
WALK_FORWARD = "walk_forward"
DATA_SOURCES = ("database", "csv", "synthetic")


def history_start(start: dt.date, schedule: ConfigSchedule) -> dt.date:
    """The first date of history the backtest needs before ``start`` (the signal's window)."""
    need = max(
        required_history(c) for c in schedule.configs(start, start + dt.timedelta(days=36500))
    )
    return calendar.last_n_sessions(calendar.previous_session(start), need)[0]


def run_backtest(
    bars: pd.DataFrame,
    start: dt.date | str,
    end: dt.date | str,
    schedule: ConfigSchedule,
    *,
    with_benchmarks: bool = True,
    progress: bool | None = False,
    retune=None,
) -> BacktestResult:
    """Backtest the NYSE sessions in [start, end] on ``bars`` (see :func:`backtest_sessions`).

    ``progress`` shows a progress bar on stderr (``None``: only on a terminal).
    """
    start, end = calendar.to_date(start, "start"), calendar.to_date(end, "end")
    sessions = calendar.sessions_between(start, end)
    if not sessions:
        raise BacktestError(f"no NYSE session between {start} and {end}")
    from tqdm import tqdm

    disable = None if progress is None else not progress
    with tqdm(
        total=len(sessions), desc="backtest", unit="day", disable=disable, mininterval=0.5
    ) as bar:
        return backtest_sessions(
            bars,
            sessions,
            schedule,
            with_benchmarks=with_benchmarks,
            on_session=lambda _day: bar.update(),
            retune=retune,
        )


def parse_overrides(overrides: dict[str, Any] | str | None) -> dict[str, Any]:
    if overrides in (None, "", {}):
        return {}
    if isinstance(overrides, str):
        try:
            overrides = json.loads(overrides)
        except json.JSONDecodeError as exc:
            raise JobError(
                f"overrides {overrides!r} is not JSON: {exc.msg}; "
                "write e.g. '{\"allocation_low_risk\": 0.9}'"
            ) from None
    if not isinstance(overrides, dict):
        raise JobError("overrides must be a JSON object of parameter: value")
    return overrides


def build_schedule(config_source: str, overrides: dict[str, Any], engine=None) -> ConfigSchedule:
    if config_source not in CONFIG_SOURCES:
        raise JobError(f"config_source {config_source!r}: use one of {', '.join(CONFIG_SOURCES)}")
    suffix = f" with {json.dumps(overrides, sort_keys=True)}" if overrides else ""
    if config_source == WALK_FORWARD:
        return ConfigSchedule.constant(
            preset("default").with_changes(**overrides),
            "walk-forward monthly tuning from preset default" + suffix,
        )
    if config_source in PRESET_NAMES:
        return ConfigSchedule.constant(
            preset(config_source).with_changes(**overrides), f"preset {config_source}" + suffix
        )
    from allocator.shell.persistence.configs import active_version, all_versions

    with engine.connect() as conn:
        if config_source == "active":
            v = active_version(conn)
            return ConfigSchedule.constant(
                v.config.with_changes(**overrides), f"active config #{v.id}" + suffix
            )
        versions = all_versions(conn)
    if not versions:
        raise BacktestError("no trading config is stored: run `allocator config seed`")
    entries = [
        ScheduledConfig(v.start_date, v.config.with_changes(**overrides), v.id) for v in versions
    ]
    return ConfigSchedule(entries, "config history" + suffix)


def load_bars_for(
    schedule: ConfigSchedule,
    start: dt.date,
    end: dt.date,
    data_source: str,
    *,
    engine=None,
    csv_dir: str | None = None,
) -> pd.DataFrame:
    symbols = schedule.symbols + (
        [BENCHMARK_SYMBOL] if BENCHMARK_SYMBOL not in schedule.symbols else []
    )
    first = history_start(start, schedule)
    if data_source == "database":
        from allocator.shell.persistence.prices import load_bars

        with engine.connect() as conn:
            return load_bars(conn, symbols, first, end)
    if data_source not in DATA_SOURCES:
        raise JobError(f"data_source {data_source!r}: use one of {', '.join(DATA_SOURCES)}")
    from allocator.exceptions import MarketDataError
    from allocator.shell.marketdata import make_source

    source = make_source(data_source, csv_dir=csv_dir)
    frames = []
    for symbol in symbols:
        try:
            frames.append(source.fetch(symbol, first, end).assign(symbol=symbol))
        except MarketDataError:
            if symbol != BENCHMARK_SYMBOL or symbol in schedule.symbols:
                raise
    return pd.concat(frames, ignore_index=True)
