import datetime as dt
import io
import re

import pandas as pd
import pytest

from allocator.exceptions import MalformedResponseError, MarketDataError, SettingsError
from allocator.shell import calendar
from allocator.shell.marketdata import MarketDataSource, make_source
from allocator.shell.marketdata.base import validate_bars
from allocator.shell.marketdata.csvsource import CsvSource
from allocator.shell.marketdata.synthetic import SyntheticSource

D = dt.date


def test_synthetic_is_deterministic_and_range_independent():
    a = SyntheticSource().fetch("SPY", D(2024, 1, 1), D(2024, 12, 31))
    b = SyntheticSource().fetch("SPY", D(2024, 6, 1), D(2025, 6, 30))
    shared = a.merge(b, on="date", suffixes=("_a", "_b"))
    assert len(shared) > 100
    for col in ("open", "high", "low", "close", "volume"):
        assert (shared[f"{col}_a"] == shared[f"{col}_b"]).all()
    assert a["date"].tolist() == calendar.sessions_between(D(2024, 1, 1), D(2024, 12, 31))


def test_synthetic_seed_and_symbol_change_the_path():
    base = SyntheticSource().fetch("SPY", D(2024, 1, 1), D(2024, 3, 1))
    assert not base["close"].equals(
        SyntheticSource(seed=7).fetch("SPY", D(2024, 1, 1), D(2024, 3, 1))["close"]
    )
    assert not base["close"].equals(
        SyntheticSource().fetch("QQQ", D(2024, 1, 1), D(2024, 3, 1))["close"]
    )


def test_synthetic_bars_are_realistic():
    bars = SyntheticSource().fetch("QQQ", D(2000, 1, 1), D(2024, 12, 31))
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["low"] > 0).all() and (bars["volume"] > 0).all()
    daily = bars["close"].pct_change().dropna()
    assert 0.005 < daily.std() < 0.03  # equity-like daily volatility
    assert daily.min() < -0.04  # crashes happen


def test_synthetic_has_calm_trending_and_crash_phases():
    phases = SyntheticSource().phases(D(1995, 1, 1), D(2024, 12, 31))
    shares = phases.value_counts(normalize=True)
    assert set(shares.index) == {"calm", "bull", "bear", "crash"}
    assert shares["crash"] > 0.005 and shares["calm"] > 0.2
    # the market falls in crashes and rises in bull phases
    closes = (
        SyntheticSource().fetch("SPY", D(1995, 1, 1), D(2024, 12, 31)).set_index("date")["close"]
    )
    returns = closes.pct_change().reindex(phases.index)
    by_phase = returns.groupby(phases).mean()
    assert by_phase["crash"] < 0 < by_phase["bull"]


def _write(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return tmp_path


def test_csv_source_reads_and_clips(tmp_path):
    _write(
        tmp_path,
        "SPY.csv",
        "date,open,high,low,close,volume\n2025-01-02,1,2,0.5,1.5,10\n2025-01-03,1.5,2,1,1.8,20\n",
    )
    bars = CsvSource(tmp_path).fetch("spy", D(2025, 1, 3), D(2025, 1, 3))
    assert bars.to_dict("records") == [
        {"date": D(2025, 1, 3), "open": 1.5, "high": 2.0, "low": 1.0, "close": 1.8, "volume": 20}
    ]
    assert isinstance(CsvSource(tmp_path), MarketDataSource)


@pytest.mark.parametrize(
    "text, match",
    [
        ("date,open,high,low,close\n2025-01-02,1,2,0.5,1.5\n", "lacks column"),
        (
            "date,open,high,low,close,volume\n2025-01-02,1,2,0.5,abc,10\n",
            "close 'abc' on 2025-01-02 is not a number",
        ),
        (
            "date,open,high,low,close,volume\n2025-01-02,0,2,0.5,1,10\n",
            "open 0.0 on 2025-01-02 is not above zero",
        ),
        ("date,open,high,low,close,volume\n2025-01-02,1,0.5,2,1,10\n", "high 0.5 is below low 2.0"),
        ("date,open,high,low,close,volume\n2025-02-30,1,2,0.5,1,10\n", "bad date"),
        (
            "date,open,high,low,close,volume\n2025-01-02,1,2,0.5,1,10\n2025-01-02,1,2,0.5,1,10\n",
            "appears twice",
        ),
    ],
)
def test_csv_errors_name_symbol_file_and_row(tmp_path, text, match):
    _write(tmp_path, "SPY.csv", text)
    with pytest.raises(MalformedResponseError, match=match) as err:
        CsvSource(tmp_path).fetch("SPY", D(2025, 1, 1), D(2025, 12, 31))
    assert err.value.symbol == "SPY"


def test_csv_missing_file_and_folder(tmp_path, monkeypatch):
    with pytest.raises(MarketDataError, match="no file XYZ.csv"):
        CsvSource(tmp_path).fetch("XYZ", D(2025, 1, 1), D(2025, 1, 2))
    with pytest.raises(SettingsError, match="not a folder"):
        CsvSource(tmp_path / "nope")
    monkeypatch.delenv("ALLOCATOR_MARKET_CSV_DIR", raising=False)
    with pytest.raises(SettingsError, match="--csv-dir is required .*ALLOCATOR_MARKET_CSV_DIR"):
        make_source("csv")
    monkeypatch.setenv("ALLOCATOR_MARKET_CSV_DIR", str(tmp_path))
    assert make_source("csv").name == "csv"
    with pytest.raises(SettingsError, match="unknown source"):
        make_source("bloomberg")


def test_validate_bars_sorts_and_types():
    frame = pd.DataFrame(
        {
            "date": ["2025-01-03", "2025-01-02"],
            "open": ["2", "1"],
            "high": [3, 2],
            "low": [1, 0.5],
            "close": [2, 1],
            "volume": ["5", "6"],
        }
    )
    out = validate_bars("SPY", frame, "test")
    assert out["date"].tolist() == [D(2025, 1, 2), D(2025, 1, 3)]
    assert out["volume"].dtype == "int64" and out["open"].dtype == "float64"


def test_the_smallest_price_and_whole_volumes_written_as_decimals_are_kept():
    frame = pd.DataFrame(
        {
            "date": ["2025-01-02"],
            "open": ["0.0001"],
            "high": ["0.0002"],
            "low": ["0.0001"],
            "close": ["0.0002"],
            "volume": ["12.0"],
        }
    )
    out = validate_bars("SPY", frame, "test")
    assert out["low"].tolist() == [0.0001] and out["volume"].tolist() == [12]


@pytest.mark.parametrize(
    "row, match",
    [
        ("2025-01-02,1,2,0.5,2.5,10", "close 2.5 on 2025-01-02 is outside low 0.5..high 2.0"),
        ("2025-01-02,1,2,0.5,0.4,10", "close 0.4 on 2025-01-02 is outside low 0.5..high 2.0"),
        ("2025-01-02,3,4,2,1,10", "close 1.0 on 2025-01-02 is outside low 2.0..high 4.0"),
        ("2025-01-02,2.5,2,0.5,1,10", "open 2.5 on 2025-01-02 is outside low 0.5..high 2.0"),
        ("2025-01-02,1,1e308,0.5,1,10", "high 1e+308 on 2025-01-02 is not below 1e+07"),
        ("2025-01-02,1,2,0.5,1,-5", "volume -5.0 on 2025-01-02 is negative"),
        ("2025-01-02,1,2,0.5,1,1e300", "volume 1e+300 on 2025-01-02 is not below 1e+15"),
        (
            "2025-01-02,1e-300,1e-300,1e-300,1e-300,10",
            "open 1e-300 on 2025-01-02 is below the smallest price 0.0001",
        ),
        ("2025-01-02,1,2,0.00009,1,10", "low 9e-05 on 2025-01-02 is below the smallest price"),
        ("2025-01-02,1,2,0.5,1,12.5", "volume 12.5 on 2025-01-02 is not a whole number of shares"),
        ("2025-01-02,1,2,0.5,1,0.4", "volume 0.4 on 2025-01-02 is not a whole number of shares"),
    ],
)
def test_bars_must_be_consistent_and_in_range(row, match):
    frame = pd.read_csv(io.StringIO(f"date,open,high,low,close,volume\n{row}\n"), dtype=str)
    with pytest.raises(MalformedResponseError, match=re.escape(match)) as err:
        validate_bars("SPY", frame, "test")
    assert str(err.value).startswith("SPY: test: ") and "\n" not in str(err.value)


def test_csv_source_reads_no_file_outside_its_folder(tmp_path):
    folder, outside = tmp_path / "csv", tmp_path / "TRAV"
    folder.mkdir()
    outside.mkdir()
    bars = "date,open,high,low,close,volume\n2025-01-02,1,2,0.5,1.5,10\n"
    (outside / "SPY.csv").write_text(bars)
    (folder / "QQQ.csv").symlink_to(outside / "SPY.csv")
    source = CsvSource(folder)
    with pytest.raises(MarketDataError, match="'../TRAV/SPY' is not a ticker symbol"):
        source.fetch("../TRAV/SPY", D(2025, 1, 1), D(2025, 1, 31))
    with pytest.raises(
        MarketDataError, match=r"QQQ: .*QQQ.csv resolves to .*TRAV/SPY.csv, outside"
    ):
        source.fetch("QQQ", D(2025, 1, 1), D(2025, 1, 31))
