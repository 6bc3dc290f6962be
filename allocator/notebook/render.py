"""Render an executed job notebook for reviewers: a lean HTML page and Markdown with PNG figures.

Every file is written atomically (:mod:`allocator.shell.atomic`), and :func:`render_or_remove`
removes a rendering that could not be finished: a report is there whole, figures included, or
not at all.

Both renderings start with a header (job, trade date, status, start, duration, commit,
parameters) and, for a failed run, a banner with the error and a link to the failing cell, so a
failure is the first thing a reviewer sees.

One pass makes both: the notebook is prepared once (header, scraps dropped), its figures are
written once as files into ``<name>_files/`` beside the ``.html`` and the ``.md``
(:func:`extract_figures`), and both renderings link those files relatively. A figure is thus
stored twice in all: base64 in the archived notebook (the faithful record) and as one PNG file
for both reports, instead of a third copy as a data URI inside the HTML page.

HTML: nbconvert's ``basic`` template (cells only, no embedded JupyterLab CSS) wrapped in a small
page with ~3 KB of CSS, instead of the default ``lab`` template's ~300 KB. Code is hidden by
default and shown by a "show code" checkbox at the top of the page (pure CSS, no JavaScript), so
the page reads as a report but still holds the code a reviewer may want to check. The page needs
its ``<name>_files/`` folder beside it, as the web app serves it (``/artifacts/reports/...``).

Cost (``allocator run`` renders once per process): the exporters are built once per process
(:func:`exporters`); their Jinja templates are compiled once per machine and kept as bytecode in
``var/cache/nbconvert-templates`` (``ALLOCATOR_CACHE_DIR``; recompiled when a template or Python
changes); and the HTML is not re-parsed with BeautifulSoup after rendering, which
``HTMLExporter`` does only to add a placeholder ``alt`` to images and ``tabindex`` to JupyterLab
cells the ``basic`` template does not have: each figure gets its ``alt`` here instead
(:func:`extract_figures`, the section heading above it). Together about 0.2 s of CPU per run.

Markdown: outputs only (no code; the code is in the ``.ipynb`` and the HTML).

Scrapbook's glued values are machine-readable outputs with no visual form; they are dropped from
both renderings (they stay in the archived notebook, where ``scrapbook`` reads them).

``python -m allocator.notebook.render --strip NOTEBOOK...`` strips outputs and execution counts from
notebooks (``make clean-notebooks``), so they are committed clean; ``--check`` only reports.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import html
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from allocator.notebook.archive import RunPaths
from allocator.shell.atomic import write_atomic, write_error_line

if TYPE_CHECKING:
    from nbconvert import HTMLExporter, MarkdownExporter

#: The tag papermill gives the two cells it inserts into a failed notebook.
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
SCRAPBOOK_MIME_PREFIX = "application/scrapbook.scrap."
REPORT_TAG = "allocator-report-header"
#: The outputs kept as figure files, and their file suffixes.
FIGURE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/svg+xml": ".svg"}

CSS = """
body{font:15px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222;margin:0}
main{max-width:1100px;margin:0 auto;padding:0 1.2em 3em}
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
.output_png img{max-width:100%}
table.dataframe,table.runs{border-collapse:collapse;font-size:13px;margin:.4em 0}
table.dataframe th,table.dataframe td,table.runs th,table.runs td{border:1px solid #ddd;
padding:.2em .5em;text-align:right}
table.dataframe thead th,table.runs thead th{background:#f2f2f2}
.report-header table{border-collapse:collapse;font-size:13px}
.report-header td,.report-header th{border:1px solid #ddd;padding:.2em .6em;text-align:left}
.failure-banner{background:#fde8e8;border:2px solid #c0392b;color:#7b1d14;padding:.7em 1em;
margin:1em 0;border-radius:4px}
.note-banner{background:#fff6dd;border:2px solid #b7791f;color:#5c3d05;padding:.7em 1em;
margin:1em 0;border-radius:4px}
.status-failed{color:#c0392b;font-weight:bold}.status-succeeded{color:#1e7b34}
.status-skipped{color:#777}.status-running{color:#a66b00}
.status-abandoned{color:#c0392b;font-style:italic}
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


def _markdown_cell(source: str) -> nbformat.NotebookNode:
    # A fixed id (not a random one): the same run renders to the same bytes.
    cell = nbformat.v4.new_markdown_cell(source, id=REPORT_TAG)
    cell.metadata["tags"] = [REPORT_TAG]
    return cell


def _duration(header: RunHeader) -> str:
    if header.finished_at is None:
        return "-"
    return f"{(header.finished_at - header.started_at).total_seconds():.1f} s"


def header_markdown(
    header: RunHeader, notebook_link: str | None = None, *, error_anchor: bool = True
) -> str:
    """Title, failure banner (failed runs) and the run's summary table.

    The table is HTML so it renders the same in the HTML page and in Markdown viewers.
    """
    params = ", ".join(f"{k}={v!r}" for k, v in header.parameters.items()) or "-"
    rows = [
        ("job", header.job),
        ("trade date", header.trade_date.isoformat()),
        ("status", f'<span class="status-{header.status}">{header.status}</span>'),
        ("started (UTC)", header.started_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")),
        ("duration", _duration(header)),
        ("commit", html.escape(header.git_commit or "unknown")),
        ("parameters", html.escape(params)),
    ]
    if notebook_link:
        link = html.escape(notebook_link, quote=True)
        rows.append(("notebook", f'<a href="{link}">{html.escape(Path(notebook_link).name)}</a>'))
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
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
        f"# {header.job} {header.trade_date.isoformat()}\n\n{banner}"
        f'<div class="report-header"><table>{body}</table></div>'
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


def _is_scrap(output: nbformat.NotebookNode) -> bool:
    data = output.get("data", {})
    return bool(data) and all(key.startswith(SCRAPBOOK_MIME_PREFIX) for key in data)


def prepare_for_report(
    nb: nbformat.NotebookNode, header: RunHeader, notebook_link: str | None = None
) -> nbformat.NotebookNode:
    """A copy of ``nb`` with the report header (and failure banner) on top, scraps removed."""
    report = copy.deepcopy(nb)
    cells = report.cells
    # papermill puts its own big red "An Exception was encountered" cell on top; the banner below
    # says the same with the error itself. Its anchor cell before the failing cell stays.
    if cells and PAPERMILL_ERROR_TAG in cells[0].get("metadata", {}).get("tags", []):
        cells.pop(0)
    for cell in cells:
        if cell.cell_type == "code":
            cell.outputs = [out for out in cell.get("outputs", []) if not _is_scrap(out)]
    # A timeout or a dead kernel leaves no error output, hence no anchor to link to.
    anchor = any(PAPERMILL_ERROR_TAG in c.get("metadata", {}).get("tags", []) for c in cells)
    top = header_markdown(header, notebook_link, error_anchor=anchor)
    report.cells = [_markdown_cell(top), *cells]
    return report


def _relative(target: Path, start_dir: Path) -> str:
    return Path(os.path.relpath(target, start_dir)).as_posix()


def _quiet_log() -> logging.Logger:
    quiet = logging.getLogger("allocator.notebook.render.nbconvert")
    quiet.setLevel(logging.ERROR)
    return quiet


def template_cache_dir() -> Path:
    """Where the compiled report templates are kept: ``<cache dir>/nbconvert-templates``."""
    from allocator.shell.calendar import cache_dir

    return cache_dir() / "nbconvert-templates"


def _bytecode_cache(folder: Path):
    """A Jinja bytecode cache in ``folder``; one that cannot be written only costs time."""
    from jinja2 import FileSystemBytecodeCache

    class TolerantBytecodeCache(FileSystemBytecodeCache):
        def load_bytecode(self, bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except OSError:  # an unreadable cache: the template is compiled
                bucket.reset()

        def dump_bytecode(self, bucket) -> None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                super().dump_bytecode(bucket)
            except OSError as exc:
                logging.getLogger(__name__).debug("template cache %s not written: %s", folder, exc)

    return TolerantBytecodeCache(str(folder))


@lru_cache(maxsize=1)
def exporters() -> tuple[HTMLExporter, MarkdownExporter]:
    """The HTML (``basic`` template) and Markdown (no code) exporters, built once per process.

    Both compile their templates through a bytecode cache in :func:`template_cache_dir`. The
    HTML exporter skips ``HTMLExporter``'s BeautifulSoup pass (see the module docstring). The
    figures are extracted once for both reports (:func:`extract_figures`): the exporters' own
    extractor stays off.
    """
    from nbconvert import HTMLExporter, MarkdownExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
    from traitlets.config import Config

    cache = _bytecode_cache(template_cache_dir())

    class ReportHTMLExporter(HTMLExporter):
        def _create_environment(self):
            environment = super()._create_environment()
            environment.bytecode_cache = cache
            return environment

        def from_notebook_node(self, nb, resources=None, **kw):
            # HTMLExporter.from_notebook_node without its BeautifulSoup pass.
            info = nb.metadata.get("language_info", {})
            lexer = info.get("pygments_lexer", info.get("name"))
            self.register_filter(
                "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)
            )
            resources = self._init_resources(resources)
            types = WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources
            )
            self.register_filter("filter_data_type", types)
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

    class ReportMarkdownExporter(MarkdownExporter):
        def _create_environment(self):
            environment = super()._create_environment()
            environment.bytecode_cache = cache
            return environment

    config = Config({"ExtractOutputPreprocessor": {"enabled": False}})
    html_exporter = ReportHTMLExporter(template_name="basic", config=config, log=_quiet_log())
    markdown = ReportMarkdownExporter(exclude_input=True, config=config, log=_quiet_log())
    return html_exporter, markdown


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


def _figure_bytes(mime: str, data: str | list[str]) -> bytes:
    text = "".join(data) if isinstance(data, list) else data
    return text.encode("utf-8") if mime == "image/svg+xml" else base64.b64decode(text)


def extract_figures(report: nbformat.NotebookNode, folder: str, stem: str) -> dict[str, bytes]:
    """Point every figure of ``report`` at a file ``folder/<stem>_<cell>_<output><suffix>``.

    Sets each figure output's ``metadata.filenames`` (and ``svg_filename``) as nbconvert's
    ``ExtractOutputPreprocessor`` does, in place, so the HTML and Markdown templates link the file
    instead of embedding the figure.

    Parameters
    ----------
    report
        A notebook from :func:`prepare_for_report` (a copy: the archive is not touched).
    folder
        The files' folder, relative to the reports that link them (``<stem>_files``).
    stem
        The run's name, the files' prefix.

    Returns
    -------
    dict
        Each file's path relative to the reports (``folder/...``) -> its bytes.
    """
    files: dict[str, bytes] = {}
    heading = ""
    for i, cell in enumerate(report.cells):
        if cell.cell_type == "markdown":
            heading = _heading(cell.source) or heading
        for j, output in enumerate(cell.get("outputs", [])):
            for mime, suffix in FIGURE_TYPES.items():
                if mime not in output.get("data", {}):
                    continue
                name = f"{folder}/{stem}_{i}_{j}{suffix}"
                files[name] = _figure_bytes(mime, output.data[mime])
                metadata = output.setdefault("metadata", {})
                metadata.setdefault("filenames", {})[mime] = name
                metadata.setdefault("alt", f"Figure: {heading}" if heading else "Figure")
                if mime == "image/svg+xml":
                    output.svg_filename = name
    return files


def _heading(markdown: str) -> str:
    """The last Markdown heading in ``markdown`` (without its ``#``), or ``""``."""
    lines = [line.lstrip("#").strip() for line in markdown.splitlines() if line.startswith("#")]
    return lines[-1] if lines else ""


def render_html(report: nbformat.NotebookNode, path: Path, title: str) -> Path:
    """Write ``report`` (from :func:`prepare_for_report`) as an HTML page.

    Figures with a file (:func:`extract_figures`) are linked, others embedded as data URIs.
    """
    body, _ = exporters()[0].from_notebook_node(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, html_page(body, title))


def render_markdown(report: nbformat.NotebookNode, path: Path) -> Path:
    """Write ``report`` as Markdown without code, linking the figures :func:`extract_figures` named.

    Figures without a file are written as data URIs (Markdown viewers may not show them).
    """
    text, _ = exporters()[1].from_notebook_node(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, text)


def write_files(files: dict[str, bytes], folder: Path) -> list[Path]:
    """Write each ``relative name -> bytes`` of ``files`` under ``folder``; the paths written."""
    written = []
    for name, data in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        written.append(write_atomic(target, data))
    return written


def render_run(notebook_path: Path, paths: RunPaths, header: RunHeader) -> RunPaths:
    """Render an archived notebook to ``paths.html`` and ``paths.markdown`` in one pass.

    Both reports are in one folder (:func:`~allocator.notebook.archive.reserve_run_paths` puts
    them there) and link the same figure files in ``paths.figures_dir``.
    """
    folder = paths.html.parent
    if paths.markdown.parent != folder:
        raise ValueError(f"{paths.html} and {paths.markdown} must be in one folder")
    nb = nbformat.read(notebook_path, as_version=4)
    title = f"{header.job} {header.trade_date.isoformat()} - {header.status}"
    report = prepare_for_report(nb, header, _relative(notebook_path, folder))
    write_files(extract_figures(report, paths.figures_dir.name, paths.stem), folder)
    render_html(report, paths.html, title)
    render_markdown(report, paths.markdown)
    return paths


def remove_report(paths: RunPaths) -> None:
    """Remove the run's HTML and Markdown reports and their figures (the names are the run's)."""
    paths.html.unlink(missing_ok=True)
    paths.markdown.unlink(missing_ok=True)
    shutil.rmtree(paths.figures_dir, ignore_errors=True)


def render_or_remove(notebook_path: Path, paths: RunPaths, header: RunHeader) -> list[str]:
    """:func:`render_run`, then ``[]``; or, when anything fails, ``[the reason]`` on one line.

    On a failure whatever this rendering wrote is removed: a report without its figures, or
    figures without their report, is never left behind.
    """
    try:
        render_run(notebook_path, paths, header)
    except Exception as exc:  # noqa: BLE001 - the caller records the reason; nothing is left
        remove_report(paths)
        return [write_error_line(exc, "rendering")]
    missing = [p for p in (paths.html, paths.markdown) if not p.is_file()]
    if missing:
        remove_report(paths)
        return [f"rendering failed: {missing[0]} was not written"]
    return []


def strip_outputs(path: Path | str) -> bool:
    """Remove outputs, execution counts and execution metadata from a notebook, in place.

    Returns True when the file changed. Tags (``parameters``) and the kernelspec stay.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in ("execution", "papermill", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    after = nbformat.writes(nb)
    if after == before:
        return False
    nbformat.validate(nb)
    path.write_text(after, encoding="utf-8")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m allocator.notebook.render [--strip | --check] NOTEBOOK...``.

    ``--strip`` (the default) removes outputs in place and prints the files it changed;
    ``--check`` changes nothing and exits 1 when a notebook has outputs (for CI).
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m allocator.notebook.render",
        description="Strip outputs and execution counts from notebooks before committing them.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--strip", action="store_true", help="clean in place (default)")
    mode.add_argument("--check", action="store_true", help="only report notebooks with outputs")
    parser.add_argument("notebooks", nargs="+", metavar="NOTEBOOK")
    args = parser.parse_args(argv)
    dirty = []
    for name in args.notebooks:
        if args.check:
            nb = nbformat.read(name, as_version=4)
            if any(c.get("outputs") or c.get("execution_count") for c in nb.cells):
                dirty.append(name)
                print(f"has outputs: {name}")
        elif strip_outputs(name):
            print(f"stripped {name}")
    return 1 if dirty else 0


if __name__ == "__main__":
    raise SystemExit(main())
