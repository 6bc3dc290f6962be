"""The signal job (6:00 AM ET): decide the trade date's action and allocations, point-in-time.

It reads only bars dated before the trade date and the config version active on it, settles any
orders still pending from earlier dates (so holdings are known), refuses to decide on stale data
(every asset must have the previous session's bar), and stores one ``daily_signals`` row. A
stored signal is kept on a re-run unless ``replace`` is asked for.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from allocator.exceptions import MissingBarsError
from allocator.jobs.settlement import settle_pending
from allocator.portfolio.fills import ExecutionError
from allocator.portfolio.session import decide_session, held_outside
from allocator.shell import calendar
from allocator.shell.persistence import ledger
from allocator.shell.persistence.configs import ConfigVersion, version_for_date
from allocator.shell.persistence.prices import last_bar_dates, latest_closes, load_bars, wide
from allocator.shell.persistence.signals import SignalRecord, get_signal, save_signal
from allocator.shell.settings import Settings
from allocator.strategy.decision import Decision
from allocator.strategy.market_state import compute_signal_frames, signal_state
from allocator.strategy.regime import regime_label
from allocator.strategy.risk import required_history

log = logging.getLogger(__name__)

#: Sessions of regime and risk history shown beside the decision (about six months).
HISTORY_SESSIONS = 126


@dataclass
class SignalResult:
    """The stored signal of a trade date, the decision computed now, and their context."""

    trade_date: dt.date
    status: str
    signal: SignalRecord
    decision: Decision
    version: ConfigVersion
    history: pd.DataFrame

    @property
    def features(self) -> pd.DataFrame:
        """One row per asset: the features and score the decision used."""
        assets = self.signal.features_used.get("assets", {})
        frame = pd.DataFrame.from_dict(assets, orient="index")
        frame.index.name = "symbol"
        return frame

    @property
    def allocations(self) -> dict[str, float]:
        return dict(self.signal.allocations)

    def summary_line(self) -> str:
        s = self.signal
        fu = s.features_used
        dollars = ", ".join(f"{k} {v:,.2f}" for k, v in s.allocations.items()) or "none"
        return (
            f"signal {self.trade_date} ({self.status}): {s.action}, regime {fu['regime']:+.3f}, "
            f"risk {fu['risk']:.1f}, allocations {dollars}; config #{s.config_id}"
        )


def signal_payload(decision: Decision, version: ConfigVersion) -> dict:
    """``features_used`` as stored: the design document's shape plus what execution and audit
    need."""
    payload = decision.features_used()
    payload["regime_label"] = decision.regime_label
    payload["reason"] = decision.reason
    payload["sell_quantities"] = dict(decision.sell_quantities)
    payload["config_version"] = version.id
    return payload


def require_previous_bars(conn: sa.Connection, symbols: list[str], trade_date: dt.date) -> dt.date:
    """The previous session, after checking every symbol has its bar (else name what is missing)."""
    previous = calendar.previous_session(trade_date)
    last = last_bar_dates(conn, symbols, before=trade_date)
    missing = {s: [previous.isoformat()] for s, d in last.items() if d != previous}
    if missing:
        stale = ", ".join(f"{s} (last bar {last[s] or 'none'})" for s in missing)
        raise MissingBarsError(
            missing,
            f"the signal for {trade_date} needs the bars of {previous} and they are missing for "
            f"{stale}; the fetch job of {previous} failed or did not run: "
            f"run `allocator run fetch --date {previous}` first",
        )
    return previous


def load_signal_closes(
    conn: sa.Connection, version: ConfigVersion, trade_date: dt.date, extra: int = 0
) -> pd.DataFrame:
    """Closes of the config's assets for the sessions the signal needs, all dated before D."""
    need = required_history(version.config) + extra
    first = calendar.last_n_sessions(calendar.previous_session(trade_date), need)[0]
    bars = load_bars(conn, version.config.assets, start=first, before=trade_date)
    return wide(bars, "close", version.config.assets)


def regime_risk_history(closes: pd.DataFrame, version: ConfigVersion) -> pd.DataFrame:
    """Regime and risk at each close of ``closes`` that has a full lookback window."""
    frames = compute_signal_frames(closes, version.config)
    history = pd.DataFrame({"regime": frames.regime, "risk": frames.risk["risk"]}).dropna()
    history.index = [calendar.to_date(d) for d in history.index]
    return history


def _previous_label(
    conn: sa.Connection, closes: pd.DataFrame, version: ConfigVersion, previous: dt.date
) -> str | None:
    """The regime label of the previous trade date: its stored signal's, else recomputed from the
    closes before it with this config (None when the history does not reach that far)."""
    stored = get_signal(conn, previous)
    if stored is not None and stored.features_used.get("regime_label"):
        return stored.features_used["regime_label"]
    try:
        return regime_label(signal_state(closes, version.config, previous).regime, version.config)
    except MissingBarsError:
        return None


def generate_signal(
    engine: sa.Engine, trade_date: dt.date, *, replace: bool = False
) -> SignalResult:
    """Compute and store the signal of ``trade_date`` (kept as it is unless ``replace``)."""
    trade_date = calendar.require_session(trade_date, "trade date")
    previous = calendar.previous_session(trade_date)
    settle_pending(engine, previous)
    with engine.connect() as conn:
        stuck = sorted({str(r.trade_date) for r in ledger.pending_trades(conn, through=previous)})
        if stuck:
            raise ExecutionError(
                f"orders of {', '.join(stuck)} are still pending, so holdings are unknown: "
                f"run `allocator run fetch --date {stuck[0]}` first"
            )
        version = version_for_date(conn, trade_date)
        require_previous_bars(conn, list(version.config.assets), trade_date)
        closes = load_signal_closes(conn, version, trade_date, extra=HISTORY_SESSIONS)
        state = signal_state(closes, version.config, trade_date)
        book = ledger.load_book(conn)
        book.cash = ledger.cash_balance_before(conn, trade_date)
        previous_label = _previous_label(conn, closes, version, previous)
        outside = held_outside(book, version.config)  # held, but dropped by the config
        last = latest_closes(conn, state.as_of, outside) if outside else None
        decision = decide_session(state, version.config, book, previous_label, last)
    history = regime_risk_history(closes, version)
    with engine.begin() as conn:
        record, status = save_signal(
            conn,
            trade_date,
            action=decision.action,
            confidence_score=decision.confidence,
            allocations=dict(decision.allocations),
            features_used=signal_payload(decision, version),
            config_id=version.id,
            replace=replace,
        )
    result = SignalResult(trade_date, status, record, decision, version, history)
    if status == "unchanged":
        log.info("a signal for %s exists; kept it (pass -p replace True to recompute)", trade_date)
    log.info(result.summary_line())
    return result


def run_signal(
    trade_date: dt.date | str, *, replace: bool = False, settings: Settings | None = None
) -> SignalResult:
    """The signal job as the notebook calls it (settings from the environment)."""
    from allocator.shell.persistence.migrate import migrated_engine

    with migrated_engine(settings) as engine:
        return generate_signal(engine, calendar.to_date(trade_date, "trade_date"), replace=replace)
