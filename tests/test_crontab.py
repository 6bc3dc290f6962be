"""`allocator crontab`: the design document's schedule, corrected, for this checkout; logrotate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from allocator.cli.commands import main
from allocator.exceptions import JobError
from allocator.notebook.crontab import crontab_text, logrotate_text
from allocator.shell.settings import get_settings

ROOT = Path("/opt/capital allocator")  # a space, to prove the paths are quoted
COMMAND = "/opt/venv/bin/python -m allocator"
FIELD_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def settings(url: str = "sqlite:////opt/data/allocator.sqlite3"):
    return get_settings({"DATABASE_URL": url}, dotenv=False)


def cron_lines(text: str) -> list[str]:
    """Schedule lines: not comments, not blank, not VAR=value."""
    return [
        line
        for line in text.splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]


def valid_field(field: str, low: int, high: int) -> bool:
    for part in field.split(","):
        base = part.split("/")[0]
        if base == "*":
            continue
        bounds = [int(x) for x in base.split("-")]
        if not all(low <= b <= high for b in bounds):
            return False
    return True


def text_for(tmp_path, **kwargs) -> str:
    kwargs.setdefault("zone", "Etc/UTC")
    if "notebooks_dir" not in kwargs:
        kwargs["notebooks_dir"] = tmp_path / "notebooks"
        kwargs["notebooks_dir"].mkdir(exist_ok=True)
        for job in ("fetch", "signal", "execute", "tune", "backtest"):
            (kwargs["notebooks_dir"] / f"{job}.ipynb").write_text("{}")
    return crontab_text(
        settings(kwargs.pop("url", "sqlite:////opt/data/allocator.sqlite3")),
        log_dir=tmp_path / "logs",
        root=ROOT,
        command=COMMAND,
        **kwargs,
    )


def test_schedule_is_the_design_documents_in_eastern_time(tmp_path):
    text = text_for(tmp_path)
    lines = cron_lines(text)
    jobs = {line.split(" run ")[1].split()[0]: " ".join(line.split()[:5]) for line in lines[:4]}

    assert jobs == {
        "fetch": "35 16 * * 1-5",
        "signal": "0 6 * * 1-5",
        "execute": "30 9 * * 1-5",
        "tune": "30 5 * * 1-5",  # before the 6:00 signal: the month's first signal uses it
    }
    env = [line for line in text.splitlines() if line.startswith("CRON_TZ=")]
    assert env == ["CRON_TZ=America/New_York"]
    assert text.index("CRON_TZ=") < text.index(lines[0])
    assert "cronie" in text and "Vixie-cron" in text
    assert "This machine's zone: Etc/UTC." in text
    assert "fetch 16:35 ET = 21:35 while New York is on EST, 20:35 while on EDT" in text


def test_a_job_without_its_notebook_is_not_scheduled(tmp_path):
    notebooks = tmp_path / "only-daily"
    notebooks.mkdir()
    for job in ("fetch", "signal", "execute"):
        (notebooks / f"{job}.ipynb").write_text("{}")
    text = text_for(tmp_path, notebooks_dir=notebooks)
    assert [line.split(" run ")[1].split()[0] for line in cron_lines(text)[:3]] == [
        "fetch",
        "signal",
        "execute",
    ]
    assert " run tune" not in "\n".join(cron_lines(text))
    assert f"# {notebooks / 'tune.ipynb'} does not exist in this checkout." in text


def test_same_zone_needs_no_conversion(tmp_path):
    text = text_for(tmp_path, zone="America/New_York")
    assert "keeps New York time" in text and "while on EDT" not in text


def test_lines_are_valid_for_cron_and_sh(tmp_path):
    text = text_for(tmp_path, mail="ops@example.com")

    for line in cron_lines(text):
        fields, command = line.split()[:5], line.split(None, 5)[5]
        assert all(valid_field(f, *r) for f, r in zip(fields, FIELD_RANGES, strict=True)), line
        # cron turns an unescaped % into a newline.
        assert "%" not in command.replace("\\%", ""), line
        syntax = subprocess.run(["sh", "-n", "-c", command.replace("\\%", "%")], check=False)
        assert syntax.returncode == 0, line


def test_jobs_use_absolute_paths_logs_and_mail(tmp_path):
    text = text_for(tmp_path, mail="ops@example.com")
    logs = tmp_path / "logs"

    for line, job in zip(cron_lines(text)[:4], ["fetch", "signal", "execute", "tune"], strict=True):
        assert f"cd '{ROOT}' && {COMMAND} run {job} >> {logs}/{job}.log 2>&1" in line
        assert line.endswith(
            f"|| echo 'allocator run {job} failed; see {logs}/{job}.log' "
            f"| mail -s 'Capital Allocator: {job} failed' ops@example.com"
        )
    assert "mail -s" not in text_for(tmp_path)


def test_no_cron_or_watchdog_traps(tmp_path):
    text = text_for(tmp_path)
    schedule = "\n".join(cron_lines(text))

    assert "1-3 * 1-5" not in schedule, "cron ORs day-of-month and day-of-week"
    assert "cron ORs day-of-month and day-of-week" in text
    assert "uvicorn" not in schedule and "pgrep" not in schedule
    assert "No API-server watchdog line" in text and "(pgrep || cd) && uvicorn" in text


def test_backup_line_runs_allocator_db_backup_and_never_shows_the_password(tmp_path):
    url = "postgresql://alloc:S3cretPw@db.example:5433/capital"
    text = text_for(tmp_path, url=url, backup_dir=tmp_path / "my backups", mail="ops@example.com")

    assert "S3cretPw" not in text
    assert "postgresql://alloc:***@db.example:5433/capital" in text
    (backup,) = [line for line in cron_lines(text) if " db backup" in line]
    assert backup == (
        f"0 18 * * * cd '{ROOT}' && {COMMAND} db backup --to '{tmp_path}/my backups'"
        f" >> {tmp_path}/logs/backup.log 2>&1"
        f" || echo 'allocator db backup failed; see {tmp_path}/logs/backup.log'"
        " | mail -s 'Capital Allocator: backup failed' ops@example.com"
    )
    assert "pg_dump --" not in backup and "sqlite3 " not in backup and "find " not in backup
    assert "allocator db restore FILE [--force]" in text

    sqlite = text_for(tmp_path, backup_dir=tmp_path / "b")
    (backup,) = [line for line in cron_lines(sqlite) if " db backup" in line]
    assert backup.startswith(f"0 18 * * * cd '{ROOT}' && {COMMAND} db backup --to {tmp_path}/b >>")


def test_backup_folder_defaults_to_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("ALLOCATOR_BACKUP_DIR", str(tmp_path / "vault"))
    text = crontab_text(
        get_settings(dotenv=False),
        log_dir=tmp_path / "logs",
        root=ROOT,
        command=COMMAND,
        zone="Etc/UTC",
        notebooks_dir=tmp_path,
    )
    assert f"db backup --to {tmp_path}/vault >> " in text

    memory = text_for(tmp_path, url="sqlite://")
    assert " db backup" not in "\n".join(cron_lines(memory))
    assert "# (no backup line" in memory


def test_bad_mail_address_is_refused(tmp_path):
    with pytest.raises(JobError, match="is not an e-mail address"):
        text_for(tmp_path, mail="not an address; rm -rf /")


def test_cli_prints_the_crontab_for_this_checkout(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")

    assert main(["crontab", "--log-dir", str(tmp_path / "log"), "--mail", "a@b.example"]) == 0
    out = capsys.readouterr().out
    assert f"{sys.executable} -m allocator run fetch >> {tmp_path}/log/fetch.log" in out
    assert "| mail -s 'Capital Allocator: fetch failed' a@b.example" in out

    assert main(["crontab", "--mail", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_logrotate_snippet_for_the_log_dir(tmp_path, capsys):
    assert main(["crontab", "--logrotate", "--log-dir", str(tmp_path / "log")]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path}/log/*.log {{" in out
    for directive in ("daily", "rotate 30", "compress", "missingok", "notifempty"):
        assert f"    {directive}\n" in out
    spaced = logrotate_text(tmp_path / "my logs")
    assert f'"{tmp_path}/my logs/*.log" {{' in spaced


@pytest.mark.skipif(not shutil.which("logrotate"), reason="logrotate is not installed")
def test_logrotate_accepts_the_snippet(tmp_path):
    logs = tmp_path / "my logs"
    logs.mkdir()
    (logs / "fetch.log").write_text("a line\n")
    conf = tmp_path / "capital-allocator.conf"
    conf.write_text(logrotate_text(logs))

    # -d: parse and plan only, change nothing.
    result = subprocess.run(
        ["logrotate", "-d", "--state", str(tmp_path / "state"), str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "fetch.log" in result.stderr + result.stdout


def test_the_tune_line_acts_exactly_once_a_month_on_the_first_session():
    """Cron fires the tune line on every weekday; the job itself acts on the first NYSE session
    of each month only (cron ORs day-of-month with day-of-week, so cron cannot say it)."""
    import datetime as dt

    from allocator.notebook.jobspec import get_job, skip_reason
    from allocator.shell import calendar

    spec = get_job("tune")
    minute, hour, dom, month, dow = spec.cron.split()
    assert (dom, month, dow) == ("*", "*", "1-5")
    acted: dict[tuple[int, int], list[dt.date]] = {}
    day = dt.date(2025, 1, 1)
    while day <= dt.date(2026, 12, 31):
        fires = day.isoweekday() <= 5
        if fires and calendar.is_session(day) and skip_reason(spec, day) is None:
            acted.setdefault((day.year, day.month), []).append(day)
        day += dt.timedelta(days=1)
    assert len(acted) == 24
    for (year, month_number), days in acted.items():
        first = dt.date(year, month_number, 1)
        sessions = calendar.sessions_between(first, first + dt.timedelta(days=31))
        assert days == [sessions[0]], (year, month_number, days)
    assert acted[(2026, 6)] == [dt.date(2026, 6, 1)]
    assert acted[(2025, 9)] == [dt.date(2025, 9, 2)]  # Monday 1 September 2025 is Labor Day


def test_with_web_adds_the_web_apps_watchdog_line(tmp_path):
    text = text_for(tmp_path, mail="ops@example.com", web_port=8123)
    (line,) = [line for line in cron_lines(text) if " serve " in line]
    logs = tmp_path / "logs"
    assert line.startswith(
        f"*/5 * * * * cd '{ROOT}' && {COMMAND} serve --port 8123 --if-down >> {logs}/web.log 2>&1"
    )
    assert "| mail -s 'Capital Allocator: web app failed' ops@example.com" in line
    assert "http://127.0.0.1:8123/api/health" in text
    assert "No API-server watchdog line" not in text
    assert "uvicorn" not in line and "pgrep" not in line and not line.endswith("&")
    command = line.split(None, 5)[5]
    assert subprocess.run(["sh", "-n", "-c", command], check=False).returncode == 0


def test_cli_with_web(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert main(["crontab", "--log-dir", str(tmp_path / "log"), "--with-web"]) == 0
    out = capsys.readouterr().out
    assert f"{sys.executable} -m allocator serve --port 8000 --if-down" in out
    assert main(["crontab", "--with-web", "--web-port", "9001"]) == 0
    assert "serve --port 9001 --if-down" in capsys.readouterr().out
    assert main(["crontab"]) == 0
    assert " serve " not in "\n".join(cron_lines(capsys.readouterr().out))
