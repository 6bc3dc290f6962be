"""The signal, execute and fetch notebooks run by ``allocator run`` with ``ALLOCATOR_BROKER=alpaca``
against the fake Alpaca, on both databases: the reports say who filled the orders and show each
fill against the official open; the scraps are unchanged, plus ``broker``."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from allocator.cli.commands import main
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.shell.persistence.schema import trades
from tests import test_job_notebooks as job_notebooks
from tests.helpers import seed, vendor_history
from tests.reportcheck import report_problems
from tests.test_job_notebooks import DAY, PREVIOUS, archived, scraps

pytestmark = pytest.mark.notebook
#: The job notebooks' database, archive folders and fake vendor (tests/test_job_notebooks.py).
job_env = job_notebooks.job_env


def test_a_paper_day_through_the_notebooks(job_env, fake_alpaca, capfd):
    tmp_path, engine, vendor = job_env
    seed(engine, dt.date(2025, 9, 1), PREVIOUS, source=vendor_history())
    vendor.visible_through = PREVIOUS
    fake_alpaca.set_time(DAY, 6)
    assert main(["run", "signal", "--date", str(DAY)]) == 0
    fake_alpaca.set_time(DAY, 9)
    assert main(["run", "execute", "--date", str(DAY)]) == 0
    executed = scraps(archived(tmp_path, "execute")[0])
    assert executed["broker"] == "alpaca paper"
    assert set(executed["trades"]["status"]) == {"pending"}
    assert len(fake_alpaca.orders) == len(executed["trades"])

    market = SyntheticSource()
    opens = {s: float(market.fetch(s, DAY, DAY)["open"].iloc[0]) for s in ("SPY", "QQQ", "DIA")}
    fake_alpaca.open_market(DAY, opens, slippage_bps=3.0)
    fake_alpaca.close_market(DAY)
    vendor.visible_through = DAY
    assert main(["run", "fetch", "--date", str(DAY)]) == 0
    assert scraps(archived(tmp_path, "fetch")[0])["broker"] == "alpaca paper"
    with engine.connect() as conn:
        filled = list(conn.execute(sa.select(trades)))
    assert {t.status for t in filled} == {"filled"} and all(t.broker_order_id for t in filled)

    (execute_md,) = (tmp_path / "reports").rglob("execute_*.md")
    assert "alpaca paper 2026-11-25: " in execute_md.read_text()
    assert "placed, 0 already at the broker" in execute_md.read_text()
    (fetch_md,) = (tmp_path / "reports").rglob("fetch_*.md")
    text = fetch_md.read_text()
    assert "reconcile 2026-11-25 (alpaca paper): OK" in text
    assert "| 3.00 |" in text and "| broker |" in text  # each fill: 3 bps, filled by the broker
    assert "2026-11" in text.split("## Slippage by month")[1]
    assert report_problems(tmp_path / "reports") == []
    capfd.readouterr()
