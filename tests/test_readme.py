"""The README's recipes work as written, and its settings table names the settings."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest

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


def _recipe(title: str) -> list[list[str]]:
    """The ``allocator`` commands of the bash block in the README paragraph ``title``."""
    import shlex

    paragraph = _paragraph(title)
    block = paragraph[paragraph.index("```bash\n") + 8 :]
    block = block[: block.index("```")]
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("allocator ")]


def _stated_headline(title: str) -> str:
    return re.search(r"prints\s+`(TWR [^`]+)`", _paragraph(title))[1]


@pytest.mark.notebook
def test_the_history_recipe_after_the_demo_gives_the_clean_figures(tmp_path, monkeypatch, capsys):
    """``make demo``, then the README's recipe for real history: the clean backtest.

    The demo keeps its synthetic market in its own database, so ``DATABASE_URL`` is still
    empty for real history, and the 20-year backtest on it prints the README's figures.
    """
    from allocator.cli import demo
    from allocator.cli.commands import main

    work = tmp_path / "allocator.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{work}")
    assert demo.main(["--database-url", f"sqlite:///{tmp_path / 'demo.sqlite3'}"]) == 0
    printed = capsys.readouterr().out
    assert f"DATABASE_URL (sqlite:///{work}) is left for real work" in printed
    assert os.environ["DATABASE_URL"] == f"sqlite:///{work}"
    assert not work.exists()  # the demo never touched it

    recipe = _recipe("Real history, after the demo")
    assert [argv[0] for argv in recipe] == ["db", "config", "backfill", "run"]
    real = os.environ.get("ALLOCATOR_MARKET_CSV_DIR")
    if not real or not (Path(real) / "SPY.csv").is_file():
        pytest.skip("the real history is absent: set ALLOCATOR_MARKET_CSV_DIR to run the recipe")
    for argv in recipe:
        argv = [real if word == "DIR" else word for word in argv]
        assert main(argv) == 0, (argv, capsys.readouterr().err)
    printed = capsys.readouterr().out.splitlines()
    assert _stated_headline("Real history, after the demo") in printed, printed[-3:]
