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
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from allocator.notebook.archive import RunPaths
from allocator.notebook.page import (  # noqa: F401 - CSS and RunHeader are imported from here too
    CSS,
    RunHeader,
    failure_banner,
    glued_period,
    header_markdown,
    html_page,
    report_title,
)
from allocator.shell.atomic import write_atomic, write_error_line

if TYPE_CHECKING:
    from nbconvert import HTMLExporter, MarkdownExporter

#: The tag papermill gives the two cells it inserts into a failed notebook.
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
SCRAPBOOK_MIME_PREFIX = "application/scrapbook.scrap."
REPORT_TAG = "allocator-report-header"
#: The output types the Markdown report prefers, first first (HTML only when nothing else).
MARKDOWN_PRIORITY = [
    "text/markdown",
    "image/svg+xml",
    "image/png",
    "image/jpeg",
    "text/html",
    "text/latex",
    "text/plain",
]
#: The outputs kept as figure files, and their file suffixes.
FIGURE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/svg+xml": ".svg"}


def _markdown_cell(source: str) -> nbformat.NotebookNode:
    # A fixed id (not a random one): the same run renders to the same bytes.
    cell = nbformat.v4.new_markdown_cell(source, id=REPORT_TAG)
    cell.metadata["tags"] = [REPORT_TAG]
    return cell


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
    if header.period is None:
        header = replace(header, period=glued_period(nb))
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
    # Markdown first: a table of allocator.notebook.tables is a Markdown table in the .md report.
    plain = Config({**config, "NbConvertBase": {"display_data_priority": MARKDOWN_PRIORITY}})
    markdown = ReportMarkdownExporter(exclude_input=True, config=plain, log=_quiet_log())
    return html_exporter, markdown


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
    if header.period is None:
        header = replace(header, period=glued_period(nb))
    title = f"{report_title(header)} - {header.status}"
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
