"""What no archived report may show: raw pandas output, warnings, HTML tables in Markdown.

Shared by the tests that run the real job notebooks (``allocator run``): each passes the report
folder it produced to :func:`report_problems` and requires an empty list.
"""

from __future__ import annotations

import re
from pathlib import Path

#: Text that means a number or a cell was shown raw (no formatting layer in between).
RAW = (
    (re.compile(r"\bNaN\b|\bnan\b|\bNaT\b|\binf\b"), "NaN"),
    (re.compile(r"\d[eE][+-]0?\d"), "e+ notation"),
    (re.compile(r"dtype:"), "a pandas dtype line"),
    (re.compile(r"<t[dh][^>]*>\s*None\s*</t[dh]>|\|\s*None\s*\|"), "a None cell"),
    (re.compile(r"Name: \w+, "), "a pandas Series footer"),
    (re.compile(r"<style scoped"), "pandas' scoped style"),
    (re.compile(r'class="output_stderr"'), "a stream on stderr (a warning or a log record)"),
    (re.compile(r"\bWARNING\b|Warning: "), "a warning"),
)
#: The hidden code of an HTML report (its outputs are what is checked).
CODE = re.compile(r'<div class="input_area">.*?</pre></div>', re.S)


def text_problems(text: str, markdown: bool) -> list[str]:
    """Each raw output in ``text`` (a report's HTML or Markdown), with a little context."""
    shown = CODE.sub("", text)
    found = []
    for pattern, name in RAW:
        for match in pattern.finditer(shown):
            context = shown[max(0, match.start() - 60) : match.end() + 30].replace("\n", " ")
            found.append(f"{name}: ...{context}...")
    if markdown:
        if re.search(r"<table", shown, re.I):
            found.append("an HTML table in Markdown")
        if re.search(r"<style", shown, re.I):
            found.append("a <style> block in Markdown")
    return found


def report_problems(folder: Path) -> list[str]:
    """Every problem of every ``.html`` and ``.md`` report under ``folder``, file by file."""
    found = []
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix in (".html", ".md") and path.is_file():
            text = path.read_text(encoding="utf-8")
            found += [f"{path.name}: {p}" for p in text_problems(text, path.suffix == ".md")]
    return found


def reports_of(folder: Path, job: str) -> list[Path]:
    """The HTML reports of ``job`` under ``folder``."""
    return sorted(Path(folder).rglob(f"{job}_*.html"))
