"""Which sources a backtest's stored bars come from, checked before its kernel starts.

A backtest reads ``price_history`` over its period and the year of history its first signal
needs. Bars of two sources there replay a market that never was, and nothing in the figures
shows it: the demo's synthetic market up to one day and a CSV import after it gave a 20-year
TWR of 65.8 % where the real history gives 175.2 %. So a backtest whose bars come from more
than one source (synthetic and real, or two real ones that may disagree) is refused, with one
line naming the sources and their dates, unless ``-p mixed_sources True`` asks for it; its
report then says so in its header (:attr:`allocator.notebook.render.RunHeader.notes`).

Only the runner checks: a backtest run by hand in JupyterLab reads what it is given.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from allocator.exceptions import AllocatorError, MixedHistoryError

if TYPE_CHECKING:
    from allocator.shell.persistence.prices import SourceSpan

log = logging.getLogger(__name__)

#: The runner parameter that lets a backtest read bars of several sources.
MIXED_SOURCES = "mixed_sources"
#: The jobs whose bars are checked: the backtest of stored history.
CHECKED_JOBS = ("backtest",)


def replay_spans(engine: sa.Engine, values: dict) -> tuple[str, list[SourceSpan]]:
    """(the period as text, the sources of its stored bars) for a backtest's parameters.

    ``values`` are the notebook's parameters (``start``, ``end``, ``config_source``,
    ``overrides``); the bars read are those of the configs' assets and the benchmark, from the
    first date the signal needs (:func:`~allocator.research.replay.history_start`) to ``end``
    (default: the latest stored bar), as the backtest reads them.
    """
    from allocator.backtest.benchmarks import BENCHMARK_SYMBOL
    from allocator.research.replay import build_schedule, history_start, parse_overrides
    from allocator.shell.calendar import to_date
    from allocator.shell.persistence.prices import bar_sources, latest_bar_date

    start = to_date(values["start"], "start")
    with engine.connect() as conn:
        end = to_date(values["end"], "end") if values.get("end") else latest_bar_date(conn)
    if end is None or end < start:
        return "", []
    overrides = parse_overrides(values.get("overrides"))
    schedule = build_schedule(values.get("config_source") or "history", overrides, engine)
    symbols = sorted({*schedule.symbols, BENCHMARK_SYMBOL})
    first = history_start(start, schedule)
    with engine.connect() as conn:
        return f"{start}..{end}", bar_sources(conn, symbols, first, end)


def check_replay_sources(engine: sa.Engine, plan: Any) -> Any:
    """``plan``, with a note for its report when its bars come from several sources and it asks.

    ``plan`` is the runner's :class:`~allocator.notebook.runner.RunPlan` (not imported: the
    runner imports this module).

    Raises
    ------
    MixedHistoryError
        The period's bars come from more than one source and ``-p mixed_sources True`` was
        not given: one line naming each source, its symbols and dates, and what to do.
    """
    from allocator.notebook.parameters import declared_parameters, default_values

    if plan.spec.name not in CHECKED_JOBS:
        return plan
    values = {**default_values(declared_parameters(plan.notebook)), **plan.parameters}
    if (values.get("data_source") or "database") != "database":
        return plan
    try:
        period, spans = replay_spans(engine, values)
    except AllocatorError as exc:  # the kernel reports it, with the run archived
        log.debug("sources of %s not checked: %s", plan.spec.name, exc)
        return plan
    if len(spans) < 2:
        return plan
    described = "; ".join(span.describe() for span in spans)
    if plan.recorded.get(MIXED_SOURCES) is not True:
        raise MixedHistoryError(
            f"{plan.spec.name} {period}: its bars come from {len(spans)} sources, {described}; "
            "a backtest across sources replays a market that never was: backfill the period "
            f"from one source (or use a DATABASE_URL holding one), or pass -p {MIXED_SOURCES} "
            "True to run it anyway (its report says so)"
        )
    note = (
        f"The bars of this backtest ({period} and the history before it) come from "
        f"{len(spans)} sources: {described}. It was run with -p {MIXED_SOURCES} True."
    )
    return dataclasses.replace(plan, notes=(*plan.notes, note))
