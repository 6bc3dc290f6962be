"""The frame of every rendered report: its title, its header, its style sheet and its page.

A report reads top-down: the title names the job and what it covers (a backtest's period,
``backtest 2005-01-03..2024-12-31``, else the trade date), a failure or note banner, one line
about the run (status, start, duration, commit, the archived notebook) and one of its
parameters; then the notebook's cells, which start with their answer (a summary block of
:mod:`allocator.notebook.tables`).

The header is Markdown (a banner is a ``<div>``; no HTML table), so the ``.md`` report is plain
Markdown and the HTML page gets it through the same Markdown converter as the cells. A job that
covers a period glues it as the scrap ``period`` (``["2005-01-03", "2024-12-31"]``, from the
dates the job resolved, e.g. a backtest whose ``end`` was left to the latest session):
:func:`glued_period` reads it for the title.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path

#: The scrap a job glues when it covers a period: ``[first trade date, last trade date]``.
PERIOD_SCRAP = "period"
SCRAP_MIME_PREFIX = "application/scrapbook.scrap."

CSS = """
body{font:15px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;margin:0}
main{max-width:1100px;margin:0 auto;padding:0 1.2em 3em}
h1{font-size:1.7em;margin:.8em 0 .3em}h2{font-size:1.3em;margin:1.6em 0 .4em;
border-bottom:1px solid #e3e3e3;padding-bottom:.15em}h3{font-size:1.1em;margin:1.2em 0 .3em}
.toolbar{position:sticky;top:0;background:#f6f6f6;border-bottom:1px solid #ddd;padding:.4em 1.2em;
font-size:13px;z-index:1}
pre{font:12.5px/1.35 Menlo,Consolas,monospace;white-space:pre-wrap;margin:0}
.cell{margin:.4em 0}
.prompt{display:none}
.input_area{background:#f7f7f7;border:1px solid #e3e3e3;border-radius:3px;padding:.3em .5em}
#show-code:not(:checked)~main .input{display:none}
#show-code:checked~main .prompt{display:block;color:#888;font:11px monospace}
.output_stderr{background:#fff5f0}
.output_error pre{background:#fff0f0;padding:.4em}
img{max-width:100%;height:auto}.output_svg img{width:100%;max-width:1060px}
.run-meta{color:#555;font-size:13.5px;margin:.2em 0}
.table-wrap{overflow-x:auto;max-width:100%}
table.report,table.dataframe,table.runs{border-collapse:collapse;font-size:13.5px;margin:.3em 0}
table.report th,table.report td,table.dataframe th,table.dataframe td,table.runs th,
table.runs td{border-bottom:1px solid #e3e3e3;padding:.25em .7em;text-align:right;
font-variant-numeric:tabular-nums}
table.report thead th,table.dataframe thead th,table.runs thead th{background:#f2f4f7;
border-bottom:2px solid #d0d5dd;vertical-align:bottom}
table.report tbody tr:nth-child(even){background:#fafbfc}
table.report .l,table.runs td{text-align:left}
table.report td:not(.l),table.report th{white-space:nowrap}
.table-title{font-weight:600;margin:.8em 0 .2em}
td.g1{background:#e6f4e9}td.g2{background:#c9e8cf}td.g3{background:#a8d9b2}td.g4{background:#86c994}
td.g5{background:#63b977}td.r1{background:#fbe9e8}td.r2{background:#f6cfcc}td.r3{background:#f0b0ab}
td.r4{background:#e98f89}td.r5{background:#e26f67}
.table-note{color:#666;font-size:13px;margin:.2em 0}
.summary{border-left:4px solid #4a6fa5;background:#f5f8fc;padding:.6em 1em;margin:.6em 0 1em}
.summary-good{border-left-color:#1e7b34}.summary-bad{border-left-color:#c0392b}
.summary p{margin:.5em 0}
.cards{display:flex;flex-wrap:wrap;gap:.4em 2em}
.card{min-width:120px}
.card-label{color:#555;font-size:12.5px;text-transform:uppercase;letter-spacing:.03em}
.card-value{font-size:21px;font-weight:600;font-variant-numeric:tabular-nums}
.card-detail{color:#666;font-size:12.5px}.card-value a{font-size:16px}
.failure-banner{background:#fde8e8;border:2px solid #c0392b;color:#7b1d14;padding:.7em 1em;
margin:1em 0;border-radius:4px}
.note-banner{background:#fff6dd;border:2px solid #b7791f;color:#5c3d05;padding:.7em 1em;
margin:1em 0;border-radius:4px}
.status-failed{color:#c0392b;font-weight:bold}.status-succeeded{color:#1e7b34}
.status-skipped{color:#777}.status-running{color:#a66b00}
.status-abandoned{color:#c0392b;font-style:italic}.status-unverified{color:#c0392b}
.anchor-link{display:none}
.ansi-red-fg{color:#c0392b}.ansi-green-fg{color:#1e7b34}.ansi-cyan-fg{color:#17808a}
.ansi-yellow-fg{color:#8a6d00}.ansi-blue-fg{color:#1f5fa8}.ansi-bold{font-weight:bold}
.highlight .k,.highlight .kn,.highlight .kc,.highlight .ow{color:#008000;font-weight:bold}
.highlight .s1,.highlight .s2,.highlight .sd{color:#ba2121}.highlight .c1{color:#3d7b7b}
.highlight .mi,.highlight .mf{color:#666}.highlight .nn,.highlight .nf{color:#0000ff}
"""


@dataclass(frozen=True)
class RunHeader:
    """What the top of a rendered report says about its run."""

    job: str
    trade_date: dt.date
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    git_commit: str | None = None
    parameters: dict = field(default_factory=dict)
    error: str | None = None
    #: What a reader must know before the figures (e.g. bars of several sources), one banner each.
    notes: tuple[str, ...] = ()
    #: The first and last trade date the run covers (a backtest's period), as ISO dates.
    period: tuple[str, str] | None = None


def report_title(header: RunHeader) -> str:
    """``backtest 2005-01-03..2024-12-31`` for a run over a period, else ``signal 2026-11-25``."""
    if header.period:
        return f"{header.job} {header.period[0]}..{header.period[1]}"
    return f"{header.job} {header.trade_date.isoformat()}"


def glued_period(nb) -> tuple[str, str] | None:
    """The ``period`` scrap of an executed notebook (:data:`PERIOD_SCRAP`), or None."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for mime, value in output.get("data", {}).items():
                if not (mime.startswith(SCRAP_MIME_PREFIX) and isinstance(value, dict)):
                    continue
                data = value.get("data")
                if value.get("name") == PERIOD_SCRAP and isinstance(data, list) and len(data) == 2:
                    return str(data[0])[:10], str(data[1])[:10]
    return None


def _duration(header: RunHeader) -> str:
    if header.finished_at is None:
        return "not finished"
    return f"took {(header.finished_at - header.started_at).total_seconds():.1f} s"


def _commit(commit: str | None) -> str:
    if not commit:
        return "commit unknown"
    head, dirty, _ = commit.partition("-dirty")
    return f"commit {head[:10]}" + (" with local changes" if dirty else "")


def _value(value: object) -> str:
    text = "—" if value is None else str(value)
    return html.escape(text if len(text) <= 120 else text[:117] + "...")


def header_markdown(
    header: RunHeader, notebook_link: str | None = None, *, error_anchor: bool = True
) -> str:
    """Title, failure banner (failed runs), note banners and the run's two header lines.

    The two lines are HTML paragraphs (Markdown is not read inside HTML blocks): the same in
    the HTML page and in a Markdown viewer.
    """
    started = header.started_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    status = f'<span class="status-{header.status}">{html.escape(header.status)}</span>'
    meta = [
        f"<strong>{status}</strong>",
        f"started {started}",
        _duration(header),
        _commit(header.git_commit),
    ]
    if header.period:
        meta.insert(1, f"run on {header.trade_date.isoformat()}")
    if notebook_link:
        href = html.escape(notebook_link, quote=True)
        meta.append(f'notebook <a href="{href}">{html.escape(Path(notebook_link).name)}</a>')
    shown = {k: v for k, v in header.parameters.items() if k != "trade_date" or not header.period}
    params = " · ".join(f"{html.escape(k)} <code>{_value(v)}</code>" for k, v in shown.items())
    banner = (
        failure_banner(header.error or "unknown error", anchor=error_anchor) + "\n\n"
        if header.status == "failed"
        else ""
    )
    banner += "".join(
        f'<div class="note-banner"><strong>Note.</strong> {html.escape(note)}</div>\n\n'
        for note in header.notes
    )
    return (
        f"# {report_title(header)}\n\n{banner}"
        f'<p class="run-meta">{" · ".join(meta)}</p>\n\n'
        f'<p class="run-meta">parameters: {params or "none"}</p>'
    )


def failure_banner(error: str, *, anchor: bool = True) -> str:
    """A red box naming the error; ``anchor``: link to papermill's mark at the failing cell."""
    link = (
        '<br><a href="#papermill-error-cell">Go to the failing cell</a> (traceback below it).'
        if anchor
        else ""
    )
    return (
        '<div class="failure-banner"><strong>This run FAILED.</strong> '
        f"<code>{html.escape(error)}</code>{link}</div>"
    )


def html_page(body: str, title: str) -> str:
    """Wrap nbconvert's ``basic`` body in a small standalone page with the show-code toggle."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        '<input type="checkbox" id="show-code" class="toolbar-toggle">'
        '<label for="show-code" class="toolbar">show code</label>\n'
        f"<main>\n{body}\n</main>\n</body>\n</html>\n"
    )
