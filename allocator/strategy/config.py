"""The trading configuration: every parameter of the design document's table, typed and validated.

A :class:`TradingConfig` is a pure value. Versions of it live in the ``trading_config`` table
(see :mod:`~allocator.shell.persistence.configs`); the signal for a trade date always reads the
version active on that date, so monthly tuning changes behaviour from the month it starts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from allocator.exceptions import ConfigValidationError
from allocator.strategy.symbols import first_symbol_problem, shown

DEFAULT_ASSETS: tuple[str, ...] = ("SPY", "QQQ", "DIA")
#: ``sell_trigger`` values: sell on every bearish session, or on the first of a bearish spell.
EVERY_SESSION, SPELL_START = "every_session", "spell_start"
SELL_TRIGGERS: tuple[str, ...] = (EVERY_SESSION, SPELL_START)


@dataclass(frozen=True)
class TradingConfig:
    """Parameters of the regime-based strategy.

    The defaults are the product default (the ``default`` preset): the design document's table
    with three changes chosen by the strategy study on 2005-2014 only (``notebooks/study.ipynb``,
    the README's strategy section): ``sell_percentage`` 0.3 (was 0.7), ``cash_deploy_rate`` 0.03
    (was 0, not in the table) and ``sell_trigger`` ``spell_start`` (was ``every_session``). The
    table itself is the ``seed`` preset (:data:`DESIGN_DOCUMENT_VALUES`).
    """

    # Capital management
    daily_capital: float = 1000.0
    assets: tuple[str, ...] = field(default=DEFAULT_ASSETS)
    lookback_days: int = 252
    # Regime detection
    regime_bullish_threshold: float = 0.3
    regime_bearish_threshold: float = -0.3
    # Risk management
    risk_high_threshold: float = 70.0
    risk_medium_threshold: float = 40.0
    max_drawdown_tolerance: float = 15.0
    min_sharpe_target: float = 1.0
    # Allocation percentages (fractions of daily capital, or of holdings for sells)
    allocation_low_risk: float = 0.8
    allocation_medium_risk: float = 0.5
    allocation_high_risk: float = 0.3
    allocation_neutral: float = 0.2
    sell_percentage: float = 0.3
    # Scoring weights
    momentum_weight: float = 0.6
    price_momentum_weight: float = 0.4
    # Capital deployment (not in the design document's table; see allocator.strategy.decision)
    cash_deploy_rate: float = 0.03
    sell_trigger: str = SPELL_START
    # Fill costs (not in the design document's table; see allocator.portfolio.fills): every fill
    # is priced ``slippage_bps`` basis points worse than the open, and each costs
    # ``commission_per_order`` dollars. 0 (the default) fills at the open itself.
    slippage_bps: float = 0.0
    commission_per_order: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "assets", tuple(self.assets))
        validate_config(self)

    def with_changes(self, **changes: Any) -> TradingConfig:
        """A validated copy with ``changes`` applied (used by tuning and what-if backtests)."""
        unknown = set(changes) - set(PARAMETER_NAMES)
        if unknown:
            raise ConfigValidationError(
                sorted(unknown)[0], f"unknown parameter; known: {', '.join(PARAMETER_NAMES)}"
            )
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["assets"] = list(self.assets)
        return data

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> TradingConfig:
        """Build from a mapping (a database row, JSON, notebook parameters); extra keys ignored."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in values and values[f.name] is not None:
                kwargs[f.name] = _coerce(f.name, values[f.name])
        return cls(**kwargs)


PARAMETER_NAMES: tuple[str, ...] = tuple(f.name for f in fields(TradingConfig))

#: The design document's table, read literally: a BUY spends a share of the day's capital only,
#: and every bearish session sells. Kept bit for bit reproducible as the ``seed`` preset.
DESIGN_DOCUMENT_VALUES: dict[str, Any] = {
    "daily_capital": 1000.0,
    "assets": DEFAULT_ASSETS,
    "lookback_days": 252,
    "regime_bullish_threshold": 0.3,
    "regime_bearish_threshold": -0.3,
    "risk_high_threshold": 70.0,
    "risk_medium_threshold": 40.0,
    "max_drawdown_tolerance": 15.0,
    "min_sharpe_target": 1.0,
    "allocation_low_risk": 0.8,
    "allocation_medium_risk": 0.5,
    "allocation_high_risk": 0.3,
    "allocation_neutral": 0.2,
    "sell_percentage": 0.7,
    "momentum_weight": 0.6,
    "price_momentum_weight": 0.4,
    "cash_deploy_rate": 0.0,
    "sell_trigger": EVERY_SESSION,
    "slippage_bps": 0.0,
    "commission_per_order": 0.0,
}
#: Named configs: ``seed`` (the design document's table) and ``default`` (the product default,
#: :class:`TradingConfig`'s own defaults; how they were chosen is in the README's strategy section).
PRESET_NAMES: tuple[str, ...] = ("default", "seed")


def preset(name: str) -> TradingConfig:
    """The config of preset ``name`` (one of :data:`PRESET_NAMES`)."""
    if name == "seed":
        return TradingConfig(**DESIGN_DOCUMENT_VALUES)
    if name == "default":
        return TradingConfig()
    raise ConfigValidationError(
        "preset", f"{name!r} is unknown: use one of {', '.join(PRESET_NAMES)}"
    )


_INT_FIELDS = {"lookback_days"}
_TEXT_FIELDS = {"assets", "sell_trigger"}
_FRACTION_FIELDS = (
    "cash_deploy_rate",
    "allocation_low_risk",
    "allocation_medium_risk",
    "allocation_high_risk",
    "allocation_neutral",
    "sell_percentage",
    "momentum_weight",
    "price_momentum_weight",
)
#: The least history the features need: 60-session returns plus the 50-session SMA (see features).
MIN_LOOKBACK_DAYS = 61


def _coerce(name: str, value: Any) -> Any:
    if name == "assets":
        if isinstance(value, str):
            value = [part for part in value.replace(",", " ").split() if part]
        return tuple(str(v).strip().upper() for v in value)
    if name == "sell_trigger":
        return str(value).strip()
    try:
        if name in _INT_FIELDS:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigValidationError(name, f"{shown(value)} is not a number") from None


#: The most ``daily_capital`` may be: far above any real deposit, far below what breaks the
#: money arithmetic (a daily capital of 1e308 overflows every Decimal sum).
MAX_DAILY_CAPITAL = 1e9
#: The most ``slippage_bps`` (basis points of the open) and ``commission_per_order`` (dollars)
#: may be.
MAX_SLIPPAGE_BPS, MAX_COMMISSION = 500.0, 100.0
#: The values each number may take on its own, as (low, high, low excluded). The rules between
#: fields (bearish < bullish, medium < high, weights summing to 1) are in :func:`validate_config`.
FIELD_RANGES: dict[str, tuple[float, float, bool]] = {
    "daily_capital": (0.0, MAX_DAILY_CAPITAL, True),
    "lookback_days": (MIN_LOOKBACK_DAYS, 10_000, False),
    "regime_bullish_threshold": (-1.0, 1.0, False),
    "regime_bearish_threshold": (-1.0, 1.0, False),
    "risk_high_threshold": (0.0, 100.0, False),
    "risk_medium_threshold": (0.0, 100.0, False),
    "max_drawdown_tolerance": (0.0, 100.0, True),
    "min_sharpe_target": (-10.0, 10.0, False),
    **{name: (0.0, 1.0, False) for name in _FRACTION_FIELDS},
    "sell_percentage": (0.3, 1.0, False),
    # Up to 5 % of the price and $100 an order: far beyond any ETF's real cost, far below what
    # would price a fill at nothing.
    "slippage_bps": (0.0, MAX_SLIPPAGE_BPS, False),
    "commission_per_order": (0.0, MAX_COMMISSION, False),
}


def _number_text(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def allowed_range(name: str) -> str:
    """The range of number field ``name`` as text, e.g. ``0 < daily_capital <= 1,000,000,000``."""
    low, high, low_excluded = FIELD_RANGES[name]
    return f"{_number_text(low)} {'<' if low_excluded else '<='} {name} <= {_number_text(high)}"


def check_field(name: str, value: Any) -> None:
    """Raise :class:`ConfigValidationError` when one field's value is invalid on its own.

    Symbols follow :mod:`allocator.strategy.symbols`; ``sell_trigger`` is one of
    :data:`SELL_TRIGGERS`; a number is finite and within :data:`FIELD_RANGES`.
    """
    if name == "assets":
        problem = first_symbol_problem(value) if value else "the asset list is empty"
        if problem:
            raise ConfigValidationError("assets", problem)
        return
    if name == "sell_trigger":
        if value not in SELL_TRIGGERS:
            raise ConfigValidationError(
                name, f"{shown(value)}: use one of {', '.join(SELL_TRIGGERS)}"
            )
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigValidationError(name, f"{shown(value)} is not a number")
    if not math.isfinite(value):
        raise ConfigValidationError(name, f"{value!r} is not a finite number")
    low, high, low_excluded = FIELD_RANGES[name]
    if value > high or value < low or (low_excluded and value == low):
        raise ConfigValidationError(
            name, f"{_number_text(value)} is out of range: allowed {allowed_range(name)}"
        )


def check_overrides(overrides: Any) -> dict[str, Any]:
    """What-if overrides (``{"daily_capital": 500}``) checked field by field, before any run.

    Each name must be a config parameter and each value valid on its own (:func:`check_field`);
    the rules between fields are checked when the overrides meet a config
    (:meth:`TradingConfig.with_changes`). Returns the values coerced to their fields' types,
    ``assets`` as a list, ready to be passed on as JSON.
    """
    if not isinstance(overrides, dict):
        raise ConfigValidationError("overrides", "give a JSON object of parameter: value")
    checked: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in PARAMETER_NAMES:
            raise ConfigValidationError(
                str(name), f"unknown parameter; known: {', '.join(PARAMETER_NAMES)}"
            )
        if name == "assets" and not isinstance(value, (str, list)):
            raise ConfigValidationError(name, f"{shown(value)}: give a list of symbols")
        if value is None or (isinstance(value, bool) and name not in _TEXT_FIELDS):
            raise ConfigValidationError(name, f"{value!r} is not a value for {name}")
        value = _coerce(name, value)
        check_field(name, value)
        checked[name] = list(value) if name == "assets" else value
    return checked


def validate_config(cfg: TradingConfig) -> None:
    """Raise :class:`ConfigValidationError` naming the first invalid field."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.name in _TEXT_FIELDS:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigValidationError(f.name, f"{shown(value)} is not a number")
        if not math.isfinite(value):
            raise ConfigValidationError(f.name, f"{value!r} is not a finite number")
    check_field("sell_trigger", cfg.sell_trigger)
    if not cfg.assets:
        raise ConfigValidationError("assets", "the asset list is empty: give at least one symbol")
    check_field("assets", cfg.assets)
    if cfg.daily_capital <= 0:
        raise ConfigValidationError("daily_capital", f"{cfg.daily_capital} must be above 0")
    if cfg.lookback_days < MIN_LOOKBACK_DAYS:
        raise ConfigValidationError(
            "lookback_days",
            f"{cfg.lookback_days} is too short: the features need at least {MIN_LOOKBACK_DAYS}",
        )
    if not -1.0 <= cfg.regime_bearish_threshold < cfg.regime_bullish_threshold <= 1.0:
        raise ConfigValidationError(
            "regime_bearish_threshold",
            f"need -1 <= bearish ({cfg.regime_bearish_threshold}) < bullish "
            f"({cfg.regime_bullish_threshold}) <= 1",
        )
    if not 0.0 <= cfg.risk_medium_threshold < cfg.risk_high_threshold <= 100.0:
        raise ConfigValidationError(
            "risk_medium_threshold",
            f"need 0 <= medium ({cfg.risk_medium_threshold}) < high "
            f"({cfg.risk_high_threshold}) <= 100",
        )
    if not 0.0 < cfg.max_drawdown_tolerance <= 100.0:
        raise ConfigValidationError(
            "max_drawdown_tolerance", f"{cfg.max_drawdown_tolerance} must be a percent in (0, 100]"
        )
    for name in _FRACTION_FIELDS:
        value = getattr(cfg, name)
        if not 0.0 <= value <= 1.0:
            raise ConfigValidationError(name, f"{value} must be within 0..1")
    if not cfg.sell_percentage >= 0.3:
        raise ConfigValidationError(
            "sell_percentage",
            f"{cfg.sell_percentage} is below 0.3, the fraction sold at the bearish threshold",
        )
    total = cfg.momentum_weight + cfg.price_momentum_weight
    if abs(total - 1.0) > 1e-9:
        raise ConfigValidationError(
            "momentum_weight",
            f"momentum_weight + price_momentum_weight = {total:g}; they must sum to 1",
        )
    for name in FIELD_RANGES:  # the outer bounds the rules above leave open (1e308 dollars)
        check_field(name, getattr(cfg, name))
