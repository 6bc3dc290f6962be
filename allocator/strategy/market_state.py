"""Market states: everything the decision needs about the market at one close, for all dates.

:func:`market_states` computes features, regime, risk and score components for every date at once
(vectorised, :mod:`.features` and friends) and packs each date into a small plain
:class:`MarketState`. :func:`market_state_table` is the backtest's form of the same states: a
:class:`MarketStateTable` read by row, whose states build an :class:`AssetState` only for an asset
the decision reads, and whose scores come from one score matrix (bit-identical to
:meth:`AssetState.score`). :func:`market_state_at` computes the state of one as-of date from
the ``lookback_days`` closes ending there, with bit-identical numbers (every value at a date depends
only on that fixed trailing window). :func:`signal_state` gives the state for a *trade date*: the
one of the last bar strictly before it (DESIGN, "Time and data semantics"). The decision itself is
:func:`allocator.strategy.decision.decide`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocator.exceptions import MissingBarsError
from allocator.strategy.config import TradingConfig
from allocator.strategy.features import FEATURE_NAMES, compute_features
from allocator.strategy.ranking import composite_score, score_components
from allocator.strategy.regime import regime_scores
from allocator.strategy.risk import required_history, risk_components

#: The features an :class:`AssetState` carries (every feature but the 1-day return), in order.
_ASSET_FIELDS = tuple(name for name in FEATURE_NAMES if name != "returns_1d")


@dataclass(frozen=True)
class AssetState:
    """One asset's features at the close of a date (plain floats; see :mod:`.features`).

    ``momentum`` is the risk-adjusted momentum and ``price_momentum`` the price-vs-MA momentum of
    :mod:`.ranking`; the score combines them with the config's weights (:meth:`score`).
    """

    close: float
    returns_5d: float
    returns_20d: float
    returns_60d: float
    volatility: float
    sma_20: float
    sma_50: float
    sma20_distance: float
    sma50_distance: float
    momentum: float
    price_momentum: float
    trend_consistent: bool

    def score(self, config: TradingConfig) -> float:
        """The composite score (:func:`~allocator.strategy.ranking.composite_score`)."""
        return float(
            composite_score(self.momentum, self.price_momentum, self.trend_consistent, config)
        )


@dataclass(frozen=True)
class MarketState:
    """Everything the decision needs about the market at the close of ``as_of``."""

    as_of: dt.date
    lookback_days: int
    regime: float
    risk: float
    volatility_component: float
    comovement_component: float
    assets: Mapping[str, AssetState]

    def close(self, symbol: str) -> float:
        """The close of ``symbol`` (KeyError if the state has no such asset)."""
        if type(self.assets) is TableRow:  # not isinstance: an ABC check is slow
            return self.assets.close(symbol)
        return self.assets[symbol].close

    def scores(self, config: TradingConfig) -> dict[str, float]:
        """The composite score of every asset of ``config``, in its order (KeyError if absent).

        A state read from a :class:`MarketStateTable` takes them from the table's score matrix
        (the same numbers, computed for every date at once).
        """
        if type(self.assets) is TableRow:  # not isinstance: an ABC check is slow
            return self.assets.scores(config)
        return {s: self.assets[s].score(config) for s in config.assets}


@dataclass(frozen=True)
class SignalFrames:
    """The vectorised signal inputs for every date of a closes frame."""

    closes: pd.DataFrame
    features: pd.DataFrame
    regime: pd.Series
    risk: pd.DataFrame
    momentum: pd.DataFrame
    price_momentum: pd.DataFrame
    trend_consistent: pd.DataFrame

    def scores(self, config: TradingConfig) -> pd.DataFrame:
        """Composite scores per date and asset with ``config``'s weights (see ranking)."""
        return composite_score(self.momentum, self.price_momentum, self.trend_consistent, config)


def compute_signal_frames(closes: pd.DataFrame, config: TradingConfig) -> SignalFrames:
    """Features, regime, risk and score components of ``config.assets`` for every date.

    ``closes`` is a closes frame (see :mod:`.features`) holding a column per asset of
    the config (other columns are ignored); a missing column raises :class:`MissingBarsError`.
    """
    missing = [s for s in config.assets if s not in closes.columns]
    if missing:
        raise MissingBarsError(
            {s: [] for s in missing},
            f"no closes at all for {', '.join(missing)}: fetch or backfill them first",
        )
    closes = closes.loc[:, list(config.assets)].astype("float64")
    features = compute_features(closes)
    comps = score_components(features)
    return SignalFrames(
        closes=closes,
        features=features,
        regime=regime_scores(features),
        risk=risk_components(features, config),
        momentum=comps["momentum"],
        price_momentum=comps["price_momentum"],
        trend_consistent=comps["trend_consistent"],
    )


def market_states(closes: pd.DataFrame, config: TradingConfig) -> dict[dt.date, MarketState]:
    """The state at the close of every date that has a full lookback window, keyed by date.

    Dates before the first complete window (the warm-up) are left out. From then on every date
    must be complete: a missing close of an asset inside a later window raises
    :class:`MissingBarsError` naming the symbol and the date, never a silent NaN state. For the
    trade date D, use the state of the last date before D.
    """
    frames = compute_signal_frames(closes, config)
    first = _first_complete_row(frames, config)
    dates = _as_dates(frames.closes.index)
    return dict(zip(dates[first:], _build_states(frames, config, first), strict=True))


def market_state_table(closes: pd.DataFrame, config: TradingConfig) -> MarketStateTable:
    """:func:`market_states` as a table read by row (the backtest's path): the same states,
    checked the same way, each built only when asked for and without an :class:`AssetState`
    per asset unless the decision reads one."""
    frames = compute_signal_frames(closes, config)
    return MarketStateTable(frames, config, _first_complete_row(frames, config))


def _first_complete_row(frames: SignalFrames, config: TradingConfig) -> int:
    """The first row with a full window; :class:`MissingBarsError` if none, or if a later one
    is incomplete."""
    complete = _complete_rows(frames)
    if not complete.any():
        dates = _as_dates(frames.closes.index)
        raise _short_history_error(frames.closes, config, dates[-1] if dates else None)
    first = int(np.argmax(complete))
    if not complete[first:].all():
        bad = first + int(np.argmin(complete[first:]))
        window = frames.closes.iloc[max(0, bad - required_history(config) + 1) : bad + 1]
        raise _gap_error(window, _as_dates(frames.closes.index)[bad])
    return first


def market_state_at(
    closes: pd.DataFrame, config: TradingConfig, as_of: dt.date | str
) -> MarketState:
    """The state at the close of the last bar dated ``as_of`` or earlier (the daily job's path).

    Reads only the ``lookback_days`` sessions ending there, so closes dated after ``as_of`` never
    matter; the numbers equal those of :func:`market_states` for that date.
    """
    as_of = _to_date(as_of)
    if not (closes.index.is_unique and closes.index.is_monotonic_increasing):
        raise ValueError("closes: the date index must be ascending and unique")
    dates = _as_dates(closes.index)
    n = int(np.searchsorted(np.array(dates, dtype="datetime64[D]"), np.datetime64(as_of), "right"))
    need = required_history(config)
    if n < need:
        raise _short_history_error(closes.iloc[:n], config, as_of)
    window = closes.iloc[n - need : n]
    frames = compute_signal_frames(window, config)
    if not _complete_rows(frames)[-1]:
        raise _gap_error(frames.closes, dates[n - 1])
    return _build_states(frames, config, len(window) - 1)[0]


def signal_state(
    closes: pd.DataFrame, config: TradingConfig, trade_date: dt.date | str
) -> MarketState:
    """The state the signal for ``trade_date`` uses: the last bar dated strictly before it."""
    return market_state_at(closes, config, _to_date(trade_date) - dt.timedelta(days=1))


def _complete_rows(frames: SignalFrames) -> np.ndarray:
    checks = [
        frames.regime.to_numpy()[:, None],
        frames.risk[["risk"]].to_numpy(),
        frames.momentum.to_numpy(),
        frames.price_momentum.to_numpy(),
    ]
    checks += [frames.features[name].to_numpy() for name in _ASSET_FIELDS]
    return np.all(np.isfinite(np.concatenate(checks, axis=1)), axis=1)


def _build_states(frames: SignalFrames, config: TradingConfig, start: int) -> list[MarketState]:
    dates = _as_dates(frames.closes.index)[start:]
    symbols = list(frames.closes.columns)
    regime = frames.regime.to_numpy()[start:].tolist()
    risk = frames.risk.iloc[start:]
    risk_values = risk["risk"].tolist()
    vol_comp = risk["volatility_component"].tolist()
    co_comp = risk["comovement_component"].tolist()
    columns = [frames.features[name].to_numpy()[start:] for name in _ASSET_FIELDS]
    columns.append(frames.momentum.to_numpy()[start:])
    columns.append(frames.price_momentum.to_numpy()[start:])
    per_field = [col.tolist() for col in columns]
    consistent = frames.trend_consistent.to_numpy()[start:].tolist()
    states = []
    for i, as_of in enumerate(dates):
        assets = {
            symbol: AssetState(*(values[i][j] for values in per_field), consistent[i][j])
            for j, symbol in enumerate(symbols)
        }
        states.append(
            MarketState(
                as_of=as_of,
                lookback_days=config.lookback_days,
                regime=regime[i],
                risk=risk_values[i],
                volatility_component=vol_comp[i],
                comovement_component=co_comp[i],
                assets=assets,
            )
        )
    return states


class MarketStateTable:
    """The market states of every date from a start row on, as arrays read by row.

    :meth:`state` gives the :class:`MarketState` of one row; its ``assets`` is a
    :class:`TableRow`, which builds an :class:`AssetState` only for a symbol that is read, and
    whose scores come from one score matrix per pair of score weights.
    """

    def __init__(self, frames: SignalFrames, config: TradingConfig, start: int):
        self.dates = _as_dates(frames.closes.index)[start:]
        self.row_of = {d: i for i, d in enumerate(self.dates)}
        self.symbols = tuple(frames.closes.columns)
        self.column_of = {s: j for j, s in enumerate(self.symbols)}
        self.lookback_days = config.lookback_days
        self.regime = frames.regime.to_numpy()[start:].tolist()
        risk = frames.risk.iloc[start:]
        self.risk = risk["risk"].tolist()
        self.volatility_component = risk["volatility_component"].tolist()
        self.comovement_component = risk["comovement_component"].tolist()
        # the AssetState fields in order, "close" first (TableRow.close reads it)
        fields = [frames.features[name].to_numpy()[start:] for name in _ASSET_FIELDS]
        fields += [frames.momentum.to_numpy()[start:], frames.price_momentum.to_numpy()[start:]]
        self.fields = fields
        self.consistent = frames.trend_consistent.to_numpy()[start:]
        self._frames, self._start = frames, start
        self._scores: dict[tuple[float, float], list[list[float]]] = {}

    def __len__(self) -> int:
        return len(self.dates)

    def state(self, row: int) -> MarketState:
        """The state at the close of ``self.dates[row]``."""
        return MarketState(
            as_of=self.dates[row],
            lookback_days=self.lookback_days,
            regime=self.regime[row],
            risk=self.risk[row],
            volatility_component=self.volatility_component[row],
            comovement_component=self.comovement_component[row],
            assets=TableRow(self, row),
        )

    def asset(self, row: int, symbol: str) -> AssetState:
        j = self.column_of[symbol]
        values = (float(column[row, j]) for column in self.fields)
        return AssetState(*values, bool(self.consistent[row, j]))

    def score_row(self, row: int, config: TradingConfig) -> list[float]:
        """The composite scores of ``row`` in column order, with ``config``'s weights."""
        key = (config.momentum_weight, config.price_momentum_weight)
        if key not in self._scores:
            f = self._frames
            self._scores[key] = composite_score(
                f.momentum.to_numpy()[self._start :],
                f.price_momentum.to_numpy()[self._start :],
                self.consistent,
                config,
            ).tolist()
        return self._scores[key][row]


class TableRow(Mapping):
    """The assets of one row of a :class:`MarketStateTable`, as a read-only mapping of
    :class:`AssetState` built on access."""

    def __init__(self, table: MarketStateTable, row: int):
        self._table, self._row = table, row

    def __getitem__(self, symbol: str) -> AssetState:
        if symbol not in self._table.column_of:
            raise KeyError(symbol)
        return self._table.asset(self._row, symbol)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._table.column_of

    def __iter__(self):
        return iter(self._table.symbols)

    def __len__(self) -> int:
        return len(self._table.symbols)

    def keys(self):
        return self._table.column_of.keys()

    def close(self, symbol: str) -> float:
        """The close of ``symbol`` at this row, without building its :class:`AssetState`."""
        return float(self._table.fields[0][self._row, self._table.column_of[symbol]])

    def scores(self, config: TradingConfig) -> dict[str, float]:
        """Scores of ``config.assets`` (see :meth:`MarketState.scores`)."""
        table = self._table
        if config.assets == table.symbols:
            return dict(zip(table.symbols, table.score_row(self._row, config), strict=True))
        return {s: self[s].score(config) for s in config.assets}


def _short_history_error(
    closes: pd.DataFrame, config: TradingConfig, as_of: dt.date | None
) -> MissingBarsError:
    need = required_history(config)
    counts = {s: int(closes[s].notna().sum()) if s in closes else 0 for s in config.assets}
    short = {s: c for s, c in counts.items() if c < need} or counts
    detail = ", ".join(f"{s} has {c}" for s, c in short.items())
    when = f" up to {as_of}" if as_of else ""
    return MissingBarsError(
        {s: [] for s in short},
        f"not enough history{when}: the signal needs {need} closes per asset "
        f"(lookback_days) and {detail}; backfill earlier dates",
    )


def _gap_error(window: pd.DataFrame, as_of: dt.date) -> MissingBarsError:
    """Name each symbol with missing closes in ``window``: a late start or the dates missed."""
    missing, parts = {}, []
    for symbol in window.columns:
        absent = window[symbol].isna().to_numpy()
        if not absent.any():
            continue
        days = [str(d)[:10] for d in window.index[absent]]
        missing[symbol] = days
        leading = int(np.argmin(absent)) if not absent.all() else len(absent)
        if leading == absent.sum():
            parts.append(
                f"{symbol} has {len(absent) - leading} of the {len(absent)} closes needed "
                "(its history starts too late)"
            )
        else:
            more = f" and {len(days) - 5} more" if len(days) > 5 else ""
            parts.append(f"{symbol} on {', '.join(days[:5])}{more}")
    return MissingBarsError(
        missing,
        f"missing closes in the lookback window ending {as_of}: {'; '.join(parts)}; "
        "fetch or backfill them first",
    )


def _as_dates(index: pd.Index) -> list[dt.date]:
    return list(pd.DatetimeIndex(pd.to_datetime(index)).date)


def _to_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])
