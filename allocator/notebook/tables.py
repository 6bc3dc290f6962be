"""What a report shows besides figures: tables, summary cards and sentences, as display objects.

A notebook cell that ends with one of these shows it in JupyterLab as HTML; the archived notebook
keeps it as HTML *and* Markdown (``text/html`` and ``text/markdown``), so the rendered HTML page
gets a plain ``<table>`` and the Markdown report a plain Markdown table (no pandas HTML, no
``<style>``), from the same cells. Every cell is text already formatted by
:mod:`allocator.notebook.formats`: no index column, no ``NaN``, no ``e+`` notation.

- :class:`Table`: a titled table of text cells, numbers right-aligned, notes under it (what a
  ``—`` means);
- :class:`Cards`: the answer first: a few labelled figures side by side, and sentences;
- :class:`Link`: a cell or card value that links somewhere (the review's runs);
- :func:`frame_table`: a :class:`Table` from a DataFrame and one format per column;
- :func:`sentence`: one paragraph of Markdown.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from allocator.notebook.formats import MISSING, decimal


@dataclass(frozen=True)
class Link:
    """Text that links to ``href`` (relative to the report)."""

    text: str
    href: str

    def html(self) -> str:
        return f'<a href="{html.escape(self.href, quote=True)}">{html.escape(self.text)}</a>'

    def markdown(self) -> str:
        return f"[{_md_escape(self.text)}]({self.href.replace(' ', '%20')})"

    def __str__(self) -> str:
        return self.text


Cell = str | Link


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _html_cell(value: Cell) -> str:
    return value.html() if isinstance(value, Link) else html.escape(str(value))


def _shade(shade: str | None) -> str:
    return f' class="{shade}"' if shade else ""


#: Steps of :func:`heat`'s scale on each side of 0 (the report's CSS colours ``g1``..``g5`` and
#: ``r1``..``r5``).
HEAT_STEPS = 5


def heat(value: object, limit: float) -> str | None:
    """The heatmap class of ``value``: ``g1``..``g5`` for a gain, ``r1``..``r5`` for a loss,
    by its size against ``limit`` (``±limit`` and beyond: 5); None for 0 or a missing value."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if number != number or limit <= 0 or number == 0:
        return None
    step = max(1, min(HEAT_STEPS, round(abs(number) / limit * HEAT_STEPS)))
    return f"{'g' if number > 0 else 'r'}{step}"


def _md_cell(value: Cell) -> str:
    return value.markdown() if isinstance(value, Link) else _md_escape(str(value))


@dataclass(frozen=True)
class Table:
    """A table of text cells for a report.

    ``align`` holds one letter per column, ``l`` or ``r`` (numbers); by default the first column
    is left-aligned (it names the row) and the others right-aligned. ``title`` is a bold line
    above it, ``notes`` are lines under it. An empty table shows ``empty`` instead.
    """

    columns: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    align: str | None = None
    title: str | None = None
    notes: Sequence[str] = ()
    empty: str = "None."
    #: A heatmap class per cell (:func:`heat`, or None), row by row: a heatmap in HTML; Markdown
    #: shows the numbers alone.
    shades: Sequence[Sequence[str | None]] | None = None

    def _align(self) -> str:
        if self.align is not None:
            return self.align
        return "l" + "r" * (len(self.columns) - 1)

    def _repr_html_(self) -> str:
        if not self.rows:
            return self._wrap_html(f"<p>{html.escape(self.empty)}</p>")
        align = self._align()
        style = {"l": ' class="l"', "r": ""}
        head = "".join(
            f"<th{style[a]}>{html.escape(c)}</th>" for c, a in zip(self.columns, align, strict=True)
        )
        shades = self.shades or [[None] * len(self.columns)] * len(self.rows)
        body = "".join(
            "<tr>"
            + "".join(
                f"<td{style[a]}{_shade(c)}>{_html_cell(v)}</td>"
                for v, a, c in zip(row, align, shade, strict=True)
            )
            + "</tr>"
            for row, shade in zip(self.rows, shades, strict=True)
        )
        table = (
            f'<div class="table-wrap"><table class="report"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>"
        )
        return self._wrap_html(table)

    def _wrap_html(self, inner: str) -> str:
        title = f'<p class="table-title">{html.escape(self.title)}</p>' if self.title else ""
        notes = "".join(f'<p class="table-note">{html.escape(n)}</p>' for n in self.notes)
        return f"{title}{inner}{notes}"

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def markdown(self, heading: str | None = None) -> str:
        """The table in Markdown; its title bold, or after ``heading`` (``"## "``) as a heading."""
        title = f"{heading}{self.title}" if heading else f"**{self.title}**"
        parts = [title, ""] if self.title else []
        if not self.rows:
            parts.append(self.empty)
        else:
            rule = {"l": ":---", "r": "---:"}
            parts.append("| " + " | ".join(_md_escape(c) for c in self.columns) + " |")
            parts.append("| " + " | ".join(rule[a] for a in self._align()) + " |")
            parts += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in self.rows]
        for note in self.notes:
            parts += ["", f"*{note}*"]
        return "\n".join(parts) + "\n"

    def __repr__(self) -> str:
        # Short: the HTML and Markdown forms are what reports show; this one is stored too.
        return f"<table {self.title or ', '.join(self.columns)}: {len(self.rows)} rows>"


@dataclass(frozen=True)
class Card:
    """One figure of a summary: its label, its value, and a detail under it (a band, a date)."""

    label: str
    value: Cell
    detail: str = ""


@dataclass(frozen=True)
class Cards:
    """The answer first: a row of :class:`Card` figures, then sentences."""

    cards: Sequence[Card]
    sentences: Sequence[str] = ()
    tone: str = ""  # "good", "bad" or "": the colour of the block's edge in HTML
    extra: Sequence[Table] = field(default_factory=tuple)

    def _repr_html_(self) -> str:
        cards = "".join(
            '<div class="card">'
            f'<div class="card-label">{html.escape(c.label)}</div>'
            f'<div class="card-value">{_html_cell(c.value)}</div>'
            + (f'<div class="card-detail">{html.escape(c.detail)}</div>' if c.detail else "")
            + "</div>"
            for c in self.cards
        )
        text = "".join(f"<p>{html.escape(s)}</p>" for s in self.sentences)
        tables = "".join(t._repr_html_() for t in self.extra)
        tone = f" summary-{self.tone}" if self.tone else ""
        return f'<div class="summary{tone}"><div class="cards">{cards}</div>{text}{tables}</div>'

    def _repr_markdown_(self) -> str:
        lines = [
            f"- **{_md_escape(c.label)}:** {_md_cell(c.value)}"
            + (f" ({_md_escape(c.detail)})" if c.detail else "")
            for c in self.cards
        ]
        parts = ["\n".join(lines), *self.sentences, *(t._repr_markdown_() for t in self.extra)]
        return "\n\n".join(p.rstrip("\n") for p in parts if p) + "\n"

    def __repr__(self) -> str:
        return "<summary: " + ", ".join(f"{c.label} {c.value}" for c in self.cards) + ">"


@dataclass(frozen=True)
class Markdown:
    """A paragraph (or a few) of Markdown; HTML by the report's Markdown converter."""

    text: str

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def sentence(text: str) -> Markdown:
    """One paragraph of Markdown for a report."""
    return Markdown(text)


def _default(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return decimal(value, 0 if float(value).is_integer() else 2)
    return str(value)


def frame_table(
    frame: pd.DataFrame,
    formats: Mapping[str, Callable[[object], Cell]] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    index: str | None = None,
    columns: Iterable[str] | None = None,
    **options,
) -> Table:
    """A :class:`Table` of ``frame``: each column's values through its function in ``formats``
    (others: text, numbers with two decimals, NaN and None as ``—``).

    ``index``: the header of a first column holding the frame's index (left out by default);
    ``labels``: column -> header; ``columns``: which columns, in order (default: all).
    ``options`` go to :class:`Table` (``title``, ``notes``, ``align``, ``empty``).
    """
    formats, labels = formats or {}, labels or {}
    shown = list(columns) if columns is not None else [str(c) for c in frame.columns]
    rows = []
    for key, row in zip(frame.index, frame[shown].itertuples(index=False), strict=True):
        cells = [formats.get(c, _default)(v) for c, v in zip(shown, row, strict=True)]
        rows.append(([_default(key)] if index is not None else []) + cells)
    headers = ([index] if index is not None else []) + [labels.get(c, c) for c in shown]
    return Table(headers, rows, **options)
