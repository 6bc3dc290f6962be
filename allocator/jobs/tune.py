"""The tune job (first NYSE session of each month, before the signal): tune the trading config.

On the tuning date D (the runner skips other dates unless ``-p force True``):

1. the base is the version that traded last month (active the day before the 1st of D's month);
2. the trades, signals and valuations of the ``months`` months before D, and the closes before
   D, are analysed (:mod:`allocator.tuning`);
3. the base and every candidate are replayed over the 12 months before D with the production
   backtest on Dask (:func:`allocator.research.monthly.tune_month`);
4. an accepted change becomes a new version from the 1st of the month (the base ends on the last
   day of the previous month), with ``created_by = "tune"`` and the reasons in ``notes``.

A month is tuned once: a re-run changes nothing, forced or not. ``replace=True`` re-tunes it and
replaces (or withdraws) that month's version while no signal uses it yet. The report
``strategy-tuning/tuning_YYYY-MM.md`` under the reports folder, and the same as
``tuning_YYYY-MM.html``, are written every time (:mod:`allocator.notebook.tuning_report`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from allocator.backtest.schedule import ConfigSchedule
from allocator.exceptions import JobError
from allocator.notebook.tuning_report import tuning_html, tuning_markdown
from allocator.portfolio.session import StrategyState
from allocator.research.cluster import dask_client, scheduler_address
from allocator.research.monthly import (
    CLOSES_BEFORE,
    MONTHS,
    BookHistory,
    MonthlyTuning,
    bars_since,
    cluster_replay,
    months_before,
    proposed_only,
    tune_month,
)
from allocator.research.replay import load_bars_for
from allocator.shell import calendar
from allocator.shell.atomic import write_atomic
from allocator.shell.persistence import ledger
from allocator.shell.persistence.configs import (
    ConfigVersion,
    open_version,
    replace_version,
    version_for_date,
    version_starting,
    withdraw_version,
)
from allocator.shell.persistence.prices import load_bars, wide
from allocator.shell.persistence.signals import count_signals_using, signals_between
from allocator.shell.settings import Settings, get_settings
from allocator.strategy.regime import regime_label
from allocator.tuning.acceptance import APPLY_BY_DEFAULT, DEFAULT_DESIGN, design_named
from allocator.tuning.tuner import TuningInputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TuneResult:
    """What one tune run did: the tuning (None when the month was tuned already), the version
    active from the month on, what happened to it, and the report."""

    tuning_date: dt.date
    status: str
    version: ConfigVersion
    base: ConfigVersion
    tuning: MonthlyTuning | None
    report: Path | None
    message: str

    def summary_line(self) -> str:
        return f"tune {self.tuning_date} ({self.status}): {self.message}"


def _inputs(conn: sa.Connection, day: dt.date, base: ConfigVersion, months: int) -> TuningInputs:
    since = months_before(day, months)
    until = calendar.previous_session(day)
    trades = ledger.trades_frame(conn, since, until)
    trades = trades[trades["status"] == "filled"].rename(columns={"trade_date": "date"})
    signals = pd.DataFrame(
        [(s.trade_date, s.action) for s in signals_between(conn, since, until)],
        columns=["date", "action"],
    )
    valued = ledger.valuations_frame(conn, since, until)
    daily = pd.DataFrame(
        {
            "date": valued["valuation_date"],
            "deposit": valued["cumulative_deposits"].diff().fillna(0.0),
            "total_value": valued["total_value"],
        }
    )
    first = calendar.last_n_sessions(calendar.previous_session(since), CLOSES_BEFORE)[0]
    assets = list(base.config.assets)
    closes = wide(load_bars(conn, assets, start=first, before=day), "close", assets)
    closes.index = [calendar.to_date(d) for d in closes.index]
    return TuningInputs(day, base.config, trades.reset_index(drop=True), signals, daily, closes)


def _base(conn: sa.Connection, first_of_month: dt.date, replace: bool):
    """(the version to tune from, this month's version if it exists) — or refuse."""
    existing = version_starting(conn, first_of_month)
    if existing is not None and replace:
        used = count_signals_using(conn, existing.id)
        if used:
            raise JobError(
                f"version #{existing.id} of {first_of_month:%Y-%m} is used by {used} signal(s): "
                "it is an audit record now and cannot be replaced; tune again next month"
            )
    return version_for_date(conn, first_of_month - dt.timedelta(days=1)), existing


def report_path(reports_dir: Path, day: dt.date) -> Path:
    """``<reports>/strategy-tuning/tuning_YYYY-MM.md``, as the design document names it."""
    return Path(reports_dir) / "strategy-tuning" / f"tuning_{day:%Y-%m}.md"


def write_report(tuning: MonthlyTuning, base, version, status: str, reports_dir: Path) -> Path:
    """Write the month's report, Markdown and the same as an HTML page beside it (a re-run of
    the month rewrites both); the Markdown's path."""
    path = report_path(reports_dir, tuning.tuning_date)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = tuning_markdown(tuning, base.id, version.id, status, tuning.decision.changes)
    write_atomic(path, text)
    write_atomic(path.with_suffix(".html"), tuning_html(text, f"Strategy tuning {path.stem[7:]}"))
    return path


def _record(engine, tuning: MonthlyTuning, base, existing, first_of_month, replace):
    decision = tuning.decision
    notes = decision.reason
    with engine.begin() as conn:
        if existing is not None and replace:
            if decision.new_config is None:
                return withdraw_version(conn, existing.id), "withdrawn"
            version = replace_version(
                conn, existing.id, decision.new_config, created_by="tune", notes=notes
            )
            return version, "replaced"
        if decision.new_config is None:
            return base, "proposed" if decision.accepted else "unchanged"
        version = open_version(
            conn, decision.new_config, first_of_month, created_by="tune", notes=notes
        )
        return version, "changed"


def book_history(engine: sa.Engine) -> BookHistory | None:
    """The strategy's own book on past mornings, rebuilt from the ledger (None: no deposit yet)."""
    with engine.connect() as conn:
        first = ledger.first_deposit_date(conn)
    if first is None:
        return None

    def state_at(day: dt.date) -> StrategyState:
        with engine.connect() as conn:
            book = ledger.book_before(conn, day)
            before = signals_between(conn, day - dt.timedelta(days=10), day - dt.timedelta(days=1))
            if not before:
                return StrategyState(book)
            config = version_for_date(conn, before[-1].trade_date).config
        return StrategyState(book, regime_label(before[-1].features_used["regime"], config))

    return BookHistory(calendar.to_date(first, "first deposit"), state_at)


def tune(
    engine: sa.Engine,
    tuning_date: dt.date,
    reports_dir: Path,
    *,
    months: int = MONTHS,
    replace: bool = False,
    scheduler: str | None = None,
    design: str = DEFAULT_DESIGN,
    apply: bool = APPLY_BY_DEFAULT,
) -> TuneResult:
    """The tune job on ``engine`` for ``tuning_date`` (module doc)."""
    day = calendar.require_session(tuning_date, "tuning date")
    if months < 1:
        raise JobError(f"months {months}: give at least 1 month of trades to score")
    first = day.replace(day=1)
    with engine.connect() as conn:
        base, existing = _base(conn, first, replace)
        if existing is not None and not replace:
            message = (
                f"{first:%Y-%m} is tuned already (version #{existing.id}, created by "
                f"{existing.created_by}); pass -p replace True to tune it again"
            )
            return TuneResult(day, "already tuned", existing, base, None, None, message)
        inputs = _inputs(conn, day, base, months)
    chosen = design_named(design)
    since = bars_since(day, chosen)
    schedule = ConfigSchedule.constant(base.config)
    bars = load_bars_for(schedule, since, calendar.previous_session(day), "database", engine=engine)
    tuned = partial(tune_month, inputs, bars=bars, design=chosen, history=book_history(engine))
    address = scheduler_address(scheduler)
    if address:
        with dask_client(address, 0) as client:
            tuning = tuned(cluster_replay(bars, client))
    else:
        tuning = tuned(cluster_replay(bars))
    if tuning.decision.new_config is not None and not apply:
        tuning = proposed_only(tuning)
    version, status = _record(engine, tuning, base, existing, first, replace)
    report = write_report(tuning, base, version, status, reports_dir)
    result = TuneResult(day, status, version, base, tuning, report, tuning.decision.reason)
    log.info(result.summary_line())
    return result


def run_tune(
    trade_date: dt.date | str,
    *,
    months: int = MONTHS,
    replace: bool = False,
    scheduler: str | None = None,
    design: str = DEFAULT_DESIGN,
    apply: bool = APPLY_BY_DEFAULT,
    settings: Settings | None = None,
) -> TuneResult:
    """The tune job as the notebook calls it (settings from the environment)."""
    from allocator.shell.persistence.migrate import migrated_engine

    settings = settings or get_settings()
    with migrated_engine(settings) as engine:
        return tune(
            engine,
            calendar.to_date(trade_date, "trade_date"),
            settings.reports_dir,
            months=months,
            replace=replace,
            scheduler=scheduler,
            design=design,
            apply=apply,
        )


def scored_frame(result: TuneResult) -> pd.DataFrame:
    """The scored trades (empty when the month was tuned already)."""
    return result.tuning.analysis.scored if result.tuning else pd.DataFrame(columns=["score"])


def by_condition_frame(result: TuneResult) -> pd.DataFrame:
    """Performance by market condition (empty when the month was tuned already)."""
    return result.tuning.analysis.by_condition if result.tuning else pd.DataFrame()


def candidates_frame(result: TuneResult) -> pd.DataFrame:
    """Every replayed candidate with its objective (empty when nothing was replayed)."""
    return result.tuning.decision.table if result.tuning else pd.DataFrame()


def changes_for_glue(result: TuneResult) -> dict[str, list]:
    """Parameter -> [old, new] of the accepted change ({} when the config stays)."""
    return result.tuning.decision.changes if result.tuning else {}


def recommendations_for_glue(result: TuneResult) -> list[dict[str, str]]:
    """Each recommendation's name and reason."""
    if result.tuning is None:
        return []
    return [{"name": r.name, "reason": r.reason} for r in result.tuning.analysis.recommendations]
