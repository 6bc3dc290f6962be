"""The daily decision: action, dollar allocations, sell quantities.

:func:`decide` turns a :class:`.MarketState` (the market at the last close
before the trade date, see :mod:`.market_state`), the config active on the trade date and
the current holdings into a :class:`Decision`, in plain Python (no pandas), so a 20-year backtest
stays cheap and the daily job uses the same numbers.

Rules of :func:`decide` (``bear``/``bull`` = the config's regime thresholds):

- **bearish** (``regime < bear``): SELL a fraction of each holding,
  ``f = 0.3 + (sell_percentage - 0.3) x (bear - regime) / (bear + 1)``: 30 % at the threshold,
  rising linearly to ``sell_percentage`` at regime -1. Quantity = holding x f rounded *down* to 4
  decimals (never more than held); its allocation is ``-(quantity x last close)`` in dollars, an
  estimate (the execute job fills at the open). ``allocation_pct`` reports ``f``. Nothing to sell
  gives HOLD. When it sells is ``sell_trigger``'s choice: ``every_session`` sells on every bearish
  trade date (the design document read literally); ``spell_start`` sells only on the first
  bearish trade date after a non-bearish one and HOLDs on the later sessions of that spell (the
  previous trade date's label decides; unknown counts as non-bearish).
- **neutral** (``bear <= regime <= bull``): BUY ``allocation_neutral`` of the daily capital when
  the regime leans up (``regime >= 0``) and some asset scores above 0; otherwise HOLD.
- **bullish** (``regime > bull``): BUY ``allocation_pct`` by risk band: ``risk >
  risk_high_threshold`` gives ``allocation_high_risk``; ``risk >= risk_medium_threshold`` gives
  ``allocation_medium_risk``; else ``allocation_low_risk``.
- A BUY's budget is ``daily_capital x allocation_pct`` (whole cents, half up) plus
  ``cash_deploy_rate x idle cash`` (whole cents, rounded down so the budget never exceeds the
  cash): idle cash is the cash held before the trade date's deposit, after the earlier sessions'
  fills, known at 6:00. ``cash_deploy_rate = 0`` is the design document's literal rule. The budget
  is split over the assets with a score above 0 by :func:`rank_weights` and
  :func:`split_cents`; no such asset gives HOLD.

``confidence`` (0..1) = ``0.7 x clarity + 0.3 x agreement``, where ``clarity`` is how far the
regime is inside its band, ``(regime - bull) / (1 - bull)`` when bullish, ``(bear - regime) /
(bear + 1)`` when bearish, and for neutral its distance to the nearer threshold over half the
band's width; ``agreement`` is ``1 - risk/100`` for BUY and HOLD and ``risk/100`` for SELL (high
risk supports selling, low risk supports buying).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from allocator.exceptions import MissingBarsError
from allocator.money.quantities import floor_cents, fraction_of_holding, to_cents
from allocator.strategy.config import EVERY_SESSION, SPELL_START, TradingConfig
from allocator.strategy.market_state import MarketState
from allocator.strategy.ranking import rank_symbols
from allocator.strategy.regime import BEARISH, BULLISH, regime_label
from allocator.strategy.risk import risk_band

BUY, SELL, HOLD = "BUY", "SELL", "HOLD"
#: Fraction of each holding sold at the bearish threshold (the design document's "exit 30-70 %").
MIN_SELL_FRACTION = 0.3
#: Rank weights of the top three assets when their three scores are equal...
EQUAL_SCORE_WEIGHTS = (0.40, 0.35, 0.25)
#: ...and when the top score dominates the third (the weights move linearly in between).
DOMINANT_SCORE_WEIGHTS = (0.50, 0.30, 0.20)
#: The design document's bands of the top three ranks' shares (both weight sets lie inside).
RANK_BANDS = ((0.40, 0.50), (0.30, 0.35), (0.15, 0.25))


@dataclass(frozen=True)
class Decision:
    """The signal for one trade date (see the module doc for every rule).

    ``allocations`` maps symbols to dollars, rounded to cents: positive for buys (summing exactly
    to the budget), negative for sells (the estimated proceeds). ``allocation_pct`` is the
    fraction of daily capital for a BUY, the fraction of each holding sold for a SELL, and 0 for
    HOLD. ``sell_quantities`` maps symbols to shares to sell (4 decimals). ``scores`` holds every
    asset's composite score under the config used; ``state`` the market state decided on.
    """

    action: str
    regime: float
    regime_label: str
    risk: float
    allocation_pct: float
    allocations: dict[str, float]
    sell_quantities: dict[str, float]
    confidence: float
    scores: dict[str, float]
    reason: str
    state: MarketState = field(repr=False)
    #: Cash held before the trade date's deposit, and the parameters that used it and the label.
    idle_cash: float = 0.0
    cash_deploy_rate: float = 0.0
    sell_trigger: str = EVERY_SESSION

    def features_used(self) -> dict[str, Any]:
        """The design document's ``features_used`` JSON (plain floats), plus audit fields."""
        assets = {}
        for symbol, a in self.state.assets.items():
            assets[symbol] = {
                "returns_5d": float(a.returns_5d),
                "returns_20d": float(a.returns_20d),
                "returns_60d": float(a.returns_60d),
                "volatility": float(a.volatility),
                "score": float(self.scores[symbol]),
                "sma20_distance": float(a.sma20_distance),
                "sma50_distance": float(a.sma50_distance),
                "close": float(a.close),
            }
        return {
            "regime": float(self.regime),
            "risk": float(self.risk),
            "action": self.action,
            "allocation_pct": float(self.allocation_pct),
            "as_of": self.state.as_of.isoformat(),
            "idle_cash": float(self.idle_cash),
            "cash_deploy_rate": float(self.cash_deploy_rate),
            "sell_trigger": self.sell_trigger,
            "risk_components": {
                "volatility": float(self.state.volatility_component),
                "comovement": float(self.state.comovement_component),
            },
            "assets": assets,
        }


def decide(
    state: MarketState,
    config: TradingConfig,
    holdings: Mapping[str, float] | None = None,
    last_close: Mapping[str, float] | None = None,
    *,
    idle_cash: float = 0.0,
    previous_label: str | None = None,
) -> Decision:
    """The action and allocations for the trade date after ``state.as_of`` (module doc rules).

    ``holdings`` maps symbols to shares held (missing = none); ``last_close`` gives the price used
    to estimate sale proceeds (default: the state's closes). ``config`` is the config active on
    the trade date; it must have the ``lookback_days`` the state was built with. ``idle_cash``
    is the cash before the day's deposit (``cash_deploy_rate``), ``previous_label`` the regime
    label of the previous trade date (``sell_trigger``; None when unknown).
    """
    scores = _scores(state, config)
    label = regime_label(state.regime, config)
    if not (math.isfinite(idle_cash) and idle_cash >= 0):
        raise ValueError(f"idle_cash is {idle_cash!r}: must be a cash balance >= 0")
    common = {
        "regime": state.regime,
        "regime_label": label,
        "risk": state.risk,
        "scores": scores,
        "state": state,
        "idle_cash": idle_cash,
        "cash_deploy_rate": config.cash_deploy_rate,
        "sell_trigger": config.sell_trigger,
    }
    if label == BEARISH:
        if config.sell_trigger == SPELL_START and previous_label == BEARISH:
            return _hold(
                config,
                common,
                f"bearish regime {state.regime:+.3f}, the bearish spell goes on: sell_trigger "
                "spell_start sells on the first session of a spell only",
            )
        return _sell(state, config, holdings or {}, last_close, common)
    if label == BULLISH:
        pct = allocation_pct_for_risk(state.risk, config)
        why = f"bullish regime {state.regime:+.3f}, risk {state.risk:.1f}"
    elif state.regime >= 0:
        pct = config.allocation_neutral
        why = f"neutral regime {state.regime:+.3f} leaning up (>= 0)"
    else:
        return _hold(
            config, common, f"neutral regime {state.regime:+.3f} leaning down (< 0): no buying"
        )
    return _buy(config, pct, scores, why, common)


def _scores(state: MarketState, config: TradingConfig) -> dict[str, float]:
    """Every asset's score, after checking the state fits the config and is complete."""
    if state.lookback_days != config.lookback_days:
        raise ValueError(
            f"the market state was built with lookback_days={state.lookback_days} but the config "
            f"has {config.lookback_days}: rebuild the states with this config"
        )
    present = state.assets.keys()
    missing = [s for s in config.assets if s not in present]
    if missing:
        raise MissingBarsError(
            {s: [state.as_of.isoformat()] for s in missing},
            f"the market state of {state.as_of} has no features for {', '.join(missing)}",
        )
    scores = state.scores(config)
    finite = all(map(math.isfinite, scores.values()))
    unknown = [] if finite else [s for s, v in scores.items() if not math.isfinite(v)]
    if unknown or not (math.isfinite(state.regime) and math.isfinite(state.risk)):
        raise MissingBarsError(
            {s: [state.as_of.isoformat()] for s in unknown or config.assets},
            f"the market state of {state.as_of} has undefined features"
            f"{' for ' + ', '.join(unknown) if unknown else ''}: it needs a full lookback window",
        )
    return scores


def buy_budget_cents(config: TradingConfig, pct: float, idle_cash: float) -> int:
    """``daily_capital x pct`` (cents, half up) + ``cash_deploy_rate x idle_cash`` (cents, down)."""
    budget = to_cents(config.daily_capital * pct)
    if config.cash_deploy_rate > 0 and idle_cash > 0:
        budget += floor_cents(config.cash_deploy_rate * idle_cash)
    return budget


def allocation_pct_for_risk(risk: float, config: TradingConfig) -> float:
    """The bullish allocation fraction of daily capital for a risk score (band rules above)."""
    band = risk_band(risk, config)
    if band == "high":
        return config.allocation_high_risk
    if band == "medium":
        return config.allocation_medium_risk
    return config.allocation_low_risk


def sell_fraction(regime: float, config: TradingConfig) -> float:
    """``0.3 + (sell_percentage - 0.3) x (bear - regime) / (bear + 1)``, clipped to its range."""
    bear = config.regime_bearish_threshold
    depth = (bear - regime) / (bear + 1.0) if bear > -1.0 else 1.0
    depth = min(max(depth, 0.0), 1.0)
    return MIN_SELL_FRACTION + (config.sell_percentage - MIN_SELL_FRACTION) * depth


def rank_weights(scores: Sequence[float]) -> list[float]:
    """Shares of the budget for positive scores sorted highest first; they sum to 1.

    - 1 asset: ``[1.0]``.
    - 3 assets: ``EQUAL + c x (DOMINANT - EQUAL)`` (the ``*_SCORE_WEIGHTS``), from
      (0.40, 0.35, 0.25) when the three scores are equal to (0.50, 0.30, 0.20) as the top one
      dominates, with the concentration ``c = (s1 - s3) / s1`` in [0, 1). Always inside the
      design document's bands 40-50 %, 30-35 %, 15-25 % and strictly decreasing by rank.
    - 2 assets: the first two of those weights with ``c = (s1 - s2) / s1``, rescaled to sum to 1:
      from (0.533, 0.467) to (0.625, 0.375).
    - 4 or more: the top three get the 3-asset weights, the others nothing (the design
      document distributes across the top three).
    """
    if any(s <= 0 for s in scores):
        raise ValueError(f"rank_weights takes positive scores only, got {list(scores)}")
    if list(scores) != sorted(scores, reverse=True):
        raise ValueError(f"rank_weights takes scores sorted highest first, got {list(scores)}")
    n = len(scores)
    if n == 0:
        return []
    if n == 1:
        return [1.0]
    top = list(scores[:3])
    c = (top[0] - top[-1]) / top[0]
    pairs = zip(EQUAL_SCORE_WEIGHTS, DOMINANT_SCORE_WEIGHTS, strict=True)
    weights = [e + c * (k - e) for e, k in pairs]
    weights = weights[: len(top)]
    total = sum(weights)
    return [w / total for w in weights] + [0.0] * (n - len(top))


def split_cents(budget_cents: int, weights: Sequence[float]) -> list[int]:
    """Whole cents per weight summing exactly to ``budget_cents`` (largest remainder).

    Each share is first ``floor(budget x weight)``; the cents left go one each to the largest
    fractional parts (ties to the higher rank), so higher weights never get fewer cents.
    """
    raw = [budget_cents * w for w in weights]
    cents = [math.floor(r) for r in raw]
    left = budget_cents - sum(cents)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - cents[i]), i))
    eligible = [i for i in order if weights[i] > 0] or order
    for k in range(max(left, 0)):
        cents[eligible[k % len(eligible)]] += 1
    for k in range(max(-left, 0)):
        cents[eligible[-1 - k % len(eligible)]] -= 1
    return cents


def _buy(
    config: TradingConfig,
    pct: float,
    scores: Mapping[str, float],
    why: str,
    common: dict[str, Any],
) -> Decision:
    positive = [s for s in rank_symbols(scores) if scores[s] > 0]
    idle = common["idle_cash"]
    budget = buy_budget_cents(config, pct, idle)
    if not positive:
        return _hold(config, common, f"{why}, but no asset scores above 0")
    if budget <= 0:
        return _hold(config, common, f"{why}, but the allocation is {pct:g} of daily capital")
    weights = rank_weights([scores[s] for s in positive])
    cents = split_cents(budget, weights)
    allocations = {s: c / 100 for s, c in zip(positive, cents, strict=True) if c > 0}
    ranked = ", ".join(f"{s} {scores[s]:+.3f}" for s in positive)
    spend = f"{pct:g} of ${config.daily_capital:,.2f}"
    if config.cash_deploy_rate > 0:
        spend += f" + {config.cash_deploy_rate:g} of ${idle:,.2f} idle cash (cash_deploy_rate)"
    reason = f"{why}: buy {spend} = ${budget / 100:,.2f} ({ranked})"
    clarity = _clarity(common["regime"], config)
    return Decision(
        action=BUY,
        allocation_pct=pct,
        allocations=allocations,
        sell_quantities={},
        confidence=_confidence(clarity, 1.0 - common["risk"] / 100.0),
        reason=reason,
        **common,
    )


def _sell(
    state: MarketState,
    config: TradingConfig,
    holdings: Mapping[str, float],
    last_close: Mapping[str, float] | None,
    common: dict[str, Any],
) -> Decision:
    fraction = sell_fraction(state.regime, config)
    why = f"bearish regime {state.regime:+.3f}"
    quantities, allocations = {}, {}
    for symbol in sorted(holdings):
        held = float(holdings[symbol])
        if not held >= 0:
            raise ValueError(f"holding of {symbol} is {holdings[symbol]!r}: must be >= 0")
        quantity = fraction_of_holding(held, fraction)
        if quantity <= 0:
            continue
        price = _price(symbol, state, last_close)
        quantities[symbol] = quantity
        allocations[symbol] = -(to_cents(quantity * price) / 100)
    if not holdings or not any(float(q) > 0 for q in holdings.values()):
        return _hold(config, common, f"{why}, but nothing is held to sell")
    if not quantities:
        return _hold(config, common, f"{why}, but every holding is too small to sell")
    sold = ", ".join(f"{q:g} {s}" for s, q in quantities.items())
    return Decision(
        action=SELL,
        allocation_pct=fraction,
        allocations=allocations,
        sell_quantities=quantities,
        confidence=_confidence(_clarity(state.regime, config), state.risk / 100.0),
        reason=f"{why}: sell {fraction:.1%} of each holding ({sold}); {_sell_rule(config)}",
        **common,
    )


def _sell_rule(config: TradingConfig) -> str:
    if config.sell_trigger == SPELL_START:
        return "first session of a bearish spell (sell_trigger spell_start)"
    return "every bearish session sells (sell_trigger every_session)"


def _price(symbol: str, state: MarketState, last_close: Mapping[str, float] | None) -> float:
    if last_close is not None and symbol in last_close:
        price = float(last_close[symbol])
    elif symbol in state.assets:
        price = state.close(symbol)
    else:
        raise MissingBarsError(
            {symbol: [state.as_of.isoformat()]},
            f"{symbol} is held but has no last close to value the sale: pass it in last_close",
        )
    if not (math.isfinite(price) and price > 0):
        raise ValueError(f"last close of {symbol} is {price!r}: must be a positive price")
    return price


def _hold(config: TradingConfig, common: dict[str, Any], reason: str) -> Decision:
    return Decision(
        action=HOLD,
        allocation_pct=0.0,
        allocations={},
        sell_quantities={},
        confidence=_confidence(_clarity(common["regime"], config), 1.0 - common["risk"] / 100.0),
        reason=reason,
        **common,
    )


def _clarity(regime: float, config: TradingConfig) -> float:
    bear, bull = config.regime_bearish_threshold, config.regime_bullish_threshold
    if regime > bull:
        value = (regime - bull) / (1.0 - bull) if bull < 1.0 else 1.0
    elif regime < bear:
        value = (bear - regime) / (bear + 1.0) if bear > -1.0 else 1.0
    else:
        value = min(regime - bear, bull - regime) / ((bull - bear) / 2.0)
    return min(max(value, 0.0), 1.0)


def _confidence(clarity: float, agreement: float) -> float:
    return round(min(max(0.7 * clarity + 0.3 * agreement, 0.0), 1.0), 6)
