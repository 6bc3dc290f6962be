"""The research replay kernel equals the reference backtest, trade for trade and cent for cent.

:class:`allocator.research.replayer.Replayer` (the compiled kernel) against
:func:`allocator.backtest.engine.simulate` (the production session step), on random configs
within ``FIELD_RANGES`` (both presets as bases), random windows of the synthetic market, config
versions changing mid-period (their assets and lookbacks too, so a held symbol gets dropped),
and a starting book; its sweep rows against :func:`allocator.backtest.sweep.evaluate`. Plus
long fixed runs, and the real SPY/QQQ/DIA history when ``ALLOCATOR_MARKET_CSV_DIR`` points at
it. Every frame is compared with ``check_exact=True``; a replay the kernel hands to the
reference is counted, and allowed only where the reference raises or cannot be modelled.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from allocator.backtest.engine import simulate
from allocator.backtest.prices import PriceTable
from allocator.backtest.schedule import ConfigSchedule, ScheduledConfig
from allocator.backtest.sweep import evaluate
from allocator.exceptions import MissingBarsError
from allocator.portfolio.book import Book, Position
from allocator.portfolio.session import StrategyState
from allocator.research.replayer import Replayer
from allocator.shell import calendar
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.strategy.config import PARAMETER_NAMES, PRESET_NAMES, SELL_TRIGGERS, preset

SYMBOLS = ("SPY", "QQQ", "DIA", "XLF")
#: Bars from here; replays start from PERIOD_START, leaving more than 300 sessions of history.
FIRST_BAR, PERIOD_START, LAST = dt.date(2019, 1, 2), dt.date(2020, 6, 1), dt.date(2024, 12, 31)
ROUND_FRACTIONS = (0.0, 0.03, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 1.0)
FRAMES = ("daily", "trades", "signals", "weights")
#: ``KERNEL_EXAMPLES=2000`` for a long soak (the suite's default keeps it to seconds).
EXAMPLES = int(os.environ.get("KERNEL_EXAMPLES", "40"))
PROPERTY = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def bars_of(source, symbols, first: dt.date, last: dt.date) -> pd.DataFrame:
    frames = [source.fetch(s, first, last).assign(symbol=s) for s in symbols]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def synthetic():
    """Bars, price table, replayer and the sessions replays start from (synthetic market)."""
    bars = bars_of(SyntheticSource(), SYMBOLS, FIRST_BAR, LAST)
    return (
        bars,
        PriceTable.from_bars(bars),
        Replayer(bars),
        calendar.sessions_between(PERIOD_START, LAST),
    )


# --- what hypothesis draws -----------------------------------------------------------------------

fractions = st.one_of(st.sampled_from(ROUND_FRACTIONS), st.floats(0.0, 1.0))
thresholds = st.one_of(st.sampled_from((-1.0, -0.3, -0.1, 0.0, 0.1, 0.3, 1.0)), st.floats(-1, 1))
risk_levels = st.one_of(st.sampled_from((0.0, 40.0, 70.0, 100.0)), st.floats(0.0, 100.0))


@st.composite
def configs(draw):
    """A valid config: a preset with some groups of its fields redrawn within FIELD_RANGES."""
    bear, bull = sorted(draw(st.lists(thresholds, min_size=2, max_size=2, unique=True)))
    medium, high = sorted(draw(st.lists(risk_levels, min_size=2, max_size=2, unique=True)))
    weight = draw(fractions)
    n_assets = draw(st.integers(1, len(SYMBOLS)))
    groups = {
        "capital": {
            "daily_capital": draw(
                st.one_of(st.sampled_from((1000.0, 250.0, 1e6, 1e9)), st.floats(0.01, 1e7))
            )
        },
        "assets": {"assets": tuple(draw(st.permutations(SYMBOLS)))[:n_assets]},
        "lookback": {"lookback_days": draw(st.sampled_from((61, 120, 252, 300)))},
        "regime": {"regime_bearish_threshold": bear, "regime_bullish_threshold": bull},
        "risk": {"risk_medium_threshold": medium, "risk_high_threshold": high},
        "allocation": {
            name: draw(fractions)
            for name in (
                "allocation_low_risk",
                "allocation_medium_risk",
                "allocation_high_risk",
                "allocation_neutral",
            )
        },
        "sell": {
            "sell_percentage": draw(
                st.one_of(st.sampled_from((0.3, 0.5, 0.7, 1.0)), st.floats(0.3, 1.0))
            )
        },
        "weights": {"momentum_weight": weight, "price_momentum_weight": 1.0 - weight},
        "deploy": {"cash_deploy_rate": draw(fractions)},
        "trigger": {"sell_trigger": draw(st.sampled_from(SELL_TRIGGERS))},
        "costs": {
            "slippage_bps": draw(st.one_of(st.sampled_from((0.0, 7.5, 500.0)), st.floats(0, 500))),
            "commission_per_order": draw(
                st.one_of(st.sampled_from((0.0, 0.35, 100.0)), st.floats(0, 100))
            ),
        },
    }
    chosen = draw(st.sets(st.sampled_from(sorted(groups))))
    changes = {k: v for g in chosen for k, v in groups[g].items()}
    return preset(draw(st.sampled_from(PRESET_NAMES))).with_changes(**changes)


@st.composite
def windows(draw, sessions: list[dt.date], shortest: int = 20, longest: int = 160):
    n = draw(st.integers(shortest, longest))
    start = draw(st.integers(0, len(sessions) - n))
    return sessions[start : start + n]


@st.composite
def schedules(draw, window: list[dt.date]):
    """One to three config versions; a version's start may fall inside the window."""
    n = draw(st.integers(1, 3))
    starts = sorted(draw(st.sets(st.sampled_from(window[1:]), min_size=n - 1, max_size=n - 1)))
    entries = [
        ScheduledConfig(start, draw(configs()), draw(st.one_of(st.none(), st.integers(1, 99))))
        for start in [dt.date.min, *starts]
    ]
    return ConfigSchedule(entries, "drawn")


quantities = st.one_of(
    st.integers(1, 10**8).map(lambda steps: steps / 1e4),  # on the share grid
    st.floats(1e-4, 1e5),  # anywhere
)


@st.composite
def initial_states(draw, symbols: list[str]):
    """None, or a book holding some of ``symbols`` (in a drawn insertion order) and a label."""
    if not draw(st.booleans()):
        return None
    held = draw(st.lists(st.sampled_from(symbols), unique=True, max_size=len(symbols)))
    positions = {s: Position(s, draw(quantities), draw(st.floats(1.0, 500.0))) for s in held}
    cash = draw(st.one_of(st.just(0.0), st.floats(0.0, 1e6)))
    label = draw(st.sampled_from((None, "bearish", "neutral", "bullish")))
    return StrategyState(Book(cash, positions), label)


# --- comparing -----------------------------------------------------------------------------------


def outcome(replay):
    try:
        return replay()
    except Exception as exc:  # the reference's error is part of what must be equal
        return exc


def assert_same_run(got, ref) -> None:
    if isinstance(ref, Exception):
        assert type(got) is type(ref) and str(got) == str(ref), (got, ref)
        return
    assert not isinstance(got, Exception), got
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(got, name), getattr(ref, name), check_exact=True)
    assert got.book.cash == ref.book.cash
    assert list(got.book.positions.items()) == list(ref.book.positions.items())


def replay_both(market, window, schedule, initial=None):
    """(kernel run, reference run, whether the kernel handed the run to the reference)."""
    _, prices, replayer, _ = market
    before = replayer.fallbacks
    got = outcome(lambda: replayer.run(window, [schedule], initial)[0])
    ref = outcome(lambda: simulate(prices, window, schedule, initial=initial))
    assert_same_run(got, ref)
    if currently_in_test_context():  # what the examples covered (--hypothesis-show-statistics)
        if isinstance(ref, Exception):
            event(f"the reference raises {type(ref).__name__}")
        else:
            event(f"actions {sorted(set(ref.daily['action']))}")
            event(f"versions {len(schedule.entries)}, initial book {initial is not None}")
    return got, ref, replayer.fallbacks > before


def same_value(a, b) -> bool:
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def assert_same_rows(rows: list[dict], reference: list[dict]) -> None:
    for row, ref in zip(rows, reference, strict=True):
        assert list(row) == list(ref)
        different = {k: (row[k], ref[k]) for k in ref if not same_value(row[k], ref[k])}
        assert not different, different
        assert [type(v) for v in row.values()] == [type(v) for v in ref.values()]


# --- the properties ------------------------------------------------------------------------------


@PROPERTY
@given(data=st.data())
def test_a_replay_equals_the_reference_on_random_configs_and_schedules(synthetic, data):
    window = data.draw(windows(synthetic[3]))
    schedule = data.draw(schedules(window))
    initial = data.draw(initial_states(schedule.symbols))
    _, ref, handed_over = replay_both(synthetic, window, schedule, initial)
    if not isinstance(ref, Exception):
        assert not handed_over, "the kernel handed a run the reference completes to it"
        daily = synthetic[2].daily(window, [schedule], initial)[0]
        np.testing.assert_array_equal(daily.total_value, ref.daily["total_value"].to_numpy())


@PROPERTY
@given(data=st.data())
def test_a_book_holding_an_unscheduled_symbol_gives_the_reference_answer(synthetic, data):
    window = data.draw(windows(synthetic[3], longest=60))
    schedule = data.draw(schedules(window))
    initial = data.draw(initial_states(list(SYMBOLS)))
    replay_both(synthetic, window, schedule, initial)


@settings(
    max_examples=max(15, EXAMPLES // 3),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_sweep_rows_equal_evaluate(synthetic, data):
    bars, _, replayer, sessions = synthetic
    window = data.draw(windows(sessions, 40, 250))
    base = data.draw(configs())
    point = st.fixed_dictionaries(
        {},
        optional={
            "cash_deploy_rate": fractions,
            "allocation_neutral": fractions,
            "sell_percentage": st.floats(0.3, 1.0),
            "sell_trigger": st.sampled_from(SELL_TRIGGERS),
        },
    )
    points = data.draw(st.lists(point, min_size=1, max_size=3))
    for p in points:  # one by one: a point the reference refuses (a SELL that cannot pay its
        # commission) must be refused alike, and the others still compared
        got = outcome(lambda p=p: replayer.metrics_rows(window, base, [p]))
        ref = outcome(lambda p=p: [evaluate(bars, window, base, p)])
        if isinstance(ref, Exception):
            assert type(got) is type(ref) and str(got) == str(ref), (got, ref)
        else:
            assert not isinstance(got, Exception), got
            assert_same_rows(got, ref)


def test_a_held_symbol_dropped_by_a_version_is_sold_at_its_last_close(synthetic):
    window = calendar.sessions_between(dt.date(2022, 1, 3), dt.date(2022, 12, 30))
    seed = preset("seed")
    schedule = ConfigSchedule(
        [
            ScheduledConfig(dt.date.min, seed, 1),
            ScheduledConfig(dt.date(2022, 5, 2), seed.with_changes(assets=("SPY", "QQQ")), 2),
            ScheduledConfig(
                dt.date(2022, 9, 1), seed.with_changes(assets=("XLF", "SPY"), lookback_days=120)
            ),
        ],
        "versions",
    )
    _, ref, handed_over = replay_both(synthetic, window, schedule)
    assert not handed_over
    dropped = ref.trades[(ref.trades["symbol"] == "DIA") & (ref.trades["date"] >= SWITCH_DAY)]
    assert (dropped["action"] == "SELL").all() and len(dropped)


SWITCH_DAY = dt.date(2022, 5, 2)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_a_continuing_book_replays_like_the_reference(synthetic, name):
    window = calendar.sessions_between(dt.date(2023, 1, 3), dt.date(2023, 12, 29))
    book = Book(
        12_345.67,
        {"QQQ": Position("QQQ", 10.5, 300.0), "SPY": Position("SPY", 12.3456, 400.0)},
    )
    for label in (None, "bearish"):
        state = StrategyState(book, label)
        schedule = ConfigSchedule.constant(preset(name))
        _, ref, handed_over = replay_both(synthetic, window, schedule, state)
        assert not handed_over and ref.daily["total_value"].iloc[0] > 12_345.67
    assert list(book.positions) == ["QQQ", "SPY"] and book.cash == 12_345.67  # not changed


def test_fill_costs_replay_like_the_reference(synthetic):
    """Slippage and commission (the parity test's 7.5 bps and $0.35) on the kernel itself."""
    window = calendar.sessions_between(dt.date(2022, 1, 3), dt.date(2023, 12, 29))
    for name in PRESET_NAMES:
        config = preset(name).with_changes(slippage_bps=7.5, commission_per_order=0.35)
        _, ref, handed_over = replay_both(synthetic, window, ConfigSchedule.constant(config))
        opens = synthetic[1].opens
        bought = ref.trades[ref.trades["action"] == "BUY"].iloc[0]
        assert not handed_over and bought["price"] > opens.loc[bought["date"], bought["symbol"]]


#: The config fields a replay reads (the kernel models each, ``configs()`` draws each) and those
#: it does not (the tuner's objective).
REPLAYED = {
    "daily_capital",
    "assets",
    "lookback_days",
    "regime_bullish_threshold",
    "regime_bearish_threshold",
    "risk_high_threshold",
    "risk_medium_threshold",
    "allocation_low_risk",
    "allocation_medium_risk",
    "allocation_high_risk",
    "allocation_neutral",
    "sell_percentage",
    "momentum_weight",
    "price_momentum_weight",
    "cash_deploy_rate",
    "sell_trigger",
    "slippage_bps",
    "commission_per_order",
}
NOT_REPLAYED = {"max_drawdown_tolerance", "min_sharpe_target"}


def test_the_kernel_knows_every_config_field():
    new = set(PARAMETER_NAMES) - REPLAYED - NOT_REPLAYED
    assert not new, (
        f"new config field(s) {sorted(new)}: if a replay reads them, model them in "
        "allocator/research/kernel.py and draw them in configs(); else add them to NOT_REPLAYED"
    )


# --- long fixed cases ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_synthetic():
    bars = bars_of(SyntheticSource(), SYMBOLS[:3], dt.date(2009, 1, 2), LAST)
    return bars, PriceTable.from_bars(bars), Replayer(bars), None


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_fourteen_years_of_each_preset(long_synthetic, name):
    window = calendar.sessions_between(dt.date(2011, 1, 3), LAST)
    replay_both(long_synthetic, window, ConfigSchedule.constant(preset(name)))


def real_history_dir() -> Path | None:
    configured = os.environ.get("ALLOCATOR_MARKET_CSV_DIR")
    path = Path(configured) if configured else None
    return path if path is not None and (path / "SPY.csv").is_file() else None


@pytest.fixture(scope="module")
def real():
    folder = real_history_dir()
    if folder is None:
        pytest.skip("no real history: set ALLOCATOR_MARKET_CSV_DIR to a folder with SPY.csv")
    from allocator.shell.marketdata.csvsource import CsvSource

    bars = bars_of(CsvSource(folder), ("SPY", "QQQ", "DIA"), dt.date(2003, 1, 2), LAST)
    return bars, PriceTable.from_bars(bars), Replayer(bars), None


def test_twenty_real_years_of_each_preset_and_a_schedule(real):
    window = calendar.sessions_between(dt.date(2005, 1, 3), LAST)
    for name in PRESET_NAMES:
        assert not replay_both(real, window, ConfigSchedule.constant(preset(name)))[2]
    default = preset("default")
    schedule = ConfigSchedule(
        [
            ScheduledConfig(dt.date.min, preset("seed"), 1),
            ScheduledConfig(dt.date(2009, 3, 2), default.with_changes(assets=("SPY", "QQQ")), 2),
            ScheduledConfig(dt.date(2016, 1, 4), default.with_changes(lookback_days=120), 3),
        ],
        "versions",
    )
    assert not replay_both(real, window, schedule)[2]


def test_real_sweep_rows_equal_evaluate(real):
    bars, _, replayer, _ = real
    window = calendar.sessions_between(dt.date(2005, 1, 3), dt.date(2014, 12, 31))
    points = [
        {"cash_deploy_rate": 0.0, "sell_percentage": 0.3},
        {"cash_deploy_rate": 0.03, "sell_percentage": 0.7},
        {"allocation_neutral": 0.5, "sell_trigger": "every_session"},
    ]
    base = preset("default")
    rows = replayer.metrics_rows(window, base, points)
    assert_same_rows(rows, [evaluate(bars, window, base, p) for p in points])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_configs_on_real_history(real, data):
    window = data.draw(windows(calendar.sessions_between(dt.date(2005, 1, 3), LAST), 200, 800))
    n = data.draw(st.integers(1, 3))
    config = data.draw(configs()).with_changes(assets=("SPY", "QQQ", "DIA")[:n])
    assert not replay_both(real, window, ConfigSchedule.constant(config))[2]


# --- errors, and the compile cache ---------------------------------------------------------------


def test_missing_bars_and_short_history_raise_the_reference_errors(synthetic):
    bars, _, _, _ = synthetic
    gap = bars[~((bars["symbol"] == "QQQ") & (bars["date"] == dt.date(2023, 3, 15)))]
    prices = PriceTable.from_bars(gap)
    window = calendar.sessions_between(dt.date(2023, 3, 1), dt.date(2023, 3, 31))
    schedule = ConfigSchedule.constant(preset("default"))
    replay_both((gap, prices, Replayer(gap), None), window, schedule)
    with pytest.raises(MissingBarsError):
        Replayer(gap).run(window, [schedule])
    early = calendar.sessions_between(dt.date(2019, 6, 3), dt.date(2019, 7, 31))
    with pytest.raises(MissingBarsError, match="not enough history"):
        Replayer(bars).run(early, [schedule])
    replay_both(synthetic, early, schedule)


def test_a_fresh_process_loads_the_compiled_kernel_from_the_cache(synthetic):
    """``cache=True``: the kernel compiled (or loaded) here is loaded, not compiled, by a new
    process (numba's index next to the module, or its user-wide cache when that is read-only)."""
    synthetic[2].run(synthetic[3][:30], [preset("default")])
    code = (
        "import datetime as dt\n"
        "from allocator.research import kernel\n"
        "from allocator.research.replayer import Replayer\n"
        "from allocator.shell import calendar\n"
        "from allocator.strategy.config import preset\n"
        "from tests.test_kernel import FIRST_BAR, SYMBOLS, SyntheticSource, bars_of\n"
        "bars = bars_of(SyntheticSource(), SYMBOLS, FIRST_BAR, dt.date(2021, 3, 1))\n"
        "days = calendar.sessions_between(dt.date(2021, 1, 4), dt.date(2021, 2, 26))\n"
        "Replayer(bars).run(days, [preset('default')])\n"
        "stats = kernel.run_sessions.stats\n"
        "print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    hits, misses = map(int, done.stdout.split()[-2:])
    assert (hits, misses) == (1, 0), done.stdout
