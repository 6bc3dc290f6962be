"""The README's recipes work as written, and its settings table names the settings."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from allocator.backtest.schedule import ConfigSchedule
from allocator.jobs.backtest import history_start
from allocator.strategy.config import PRESET_NAMES, preset

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _paragraph(title: str) -> str:
    start = README.index(f"**{title}.**")
    return README[start : README.index("\n\n**", start + 1)]


def test_the_history_recipe_backfills_enough_for_the_backtest_recipe():
    history = _paragraph("History") + _paragraph("Years of history on a free key: Tiingo")
    backfilled = {
        dt.date.fromisoformat(d) for d in re.findall(r"--start (\d{4}-\d\d-\d\d)", history)
    }
    backtests = re.findall(r"allocator run backtest -p start (\d{4}-\d\d-\d\d)", README)
    assert backfilled and backtests
    for start in map(dt.date.fromisoformat, backtests):
        for name in PRESET_NAMES:
            need = history_start(start, ConfigSchedule.constant(preset(name)))
            full_history = [d for d in backfilled if d.year < 2020]  # not the premium recent years
            assert all(d <= need for d in full_history), (start, need, full_history)


def test_the_settings_table_lists_the_settings():
    table = README[README.index("| variable | default | meaning |") :]
    table = table[: table.index("\n\n")]
    for name in (
        "DATABASE_URL",
        "ALLOCATOR_RUNS_DIR",
        "ALLOCATOR_REPORTS_DIR",
        "ALLOCATOR_NOTEBOOKS_DIR",
        "ALLOCATOR_MARKET_CSV_DIR",
        "ALLOCATOR_KERNEL",
    ):
        assert f"| `{name}` |" in table, name


def test_fetch_from_csv_is_documented_as_the_cli_takes_it():
    assert "allocator run fetch --source csv --csv-dir DIR" in README
