"""The web app's charts as inline SVG, drawn on the server: axes, dates, dollars and a legend.

No chart library and no script: each function returns the text of one ``<svg>`` element that a
template inserts as it is. The drawing is ``WIDTH`` × ``HEIGHT`` user units, shown at that many
pixels and shrunk to a narrower page (``max-width: 100%``), so at 1280 px one unit is about one
pixel and the 12-unit text is about 12 px. Sessions are spread evenly along the x axis (no gaps for
weekends and holidays, as trading charts do); the y axis has "nice" ticks (1, 2, 2.5 or 5 times a
power of ten) labelled by a formatter from :mod:`allocator.notebook.formats`. Bars and points
carry a ``<title>`` (the browser shows it on hover) with the date and the exact figure.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from allocator.notebook.formats import compact_dollars, dollars, percent

WIDTH, HEIGHT = 1120, 320
LEFT, RIGHT, TOP, BOTTOM = 80, 20, 34, 40
FONT = 12
#: Widest bar of a bar chart, in user units (a few sessions should not look like a wall).
MAX_BAR = 36
#: Points a line keeps at most (about one per pixel of the plot): 20 years of sessions are
#: thinned to every k-th session, the last one always kept.
MAX_POINTS = 1_000
AXIS_COLOR, GRID_COLOR, TEXT_COLOR = "#6b7280", "#e5e7eb", "#374151"
GAIN_COLOR, LOSS_COLOR = "#0a7a35", "#b3261e"


@dataclass(frozen=True)
class Line:
    """One series of a line chart: a value per date (None: no value that day)."""

    name: str
    values: Sequence[float | None]
    color: str
    dash: str | None = None
    width: float = 2.0


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high] (steps of 1, 2, 2.5 or 5 × 10^k).

    A flat range is widened around its value so it still gets an axis.
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(high) * 0.05 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value < high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def date_ticks(dates: Sequence[dt.date], count: int = 7) -> list[tuple[int, str]]:
    """At most about ``count`` (index, label) pairs for a session axis.

    Over two years and more: the first session of a year, labelled ``2021``; over two months:
    the first session of a month, ``Mar 2024``; otherwise evenly spaced sessions, ``Nov 3``.
    """
    if not dates:
        return []
    span = (dates[-1] - dates[0]).days
    if span >= 730:
        starts = [i for i, d in enumerate(dates) if i == 0 or d.year != dates[i - 1].year]
        label = "%Y"
    elif span >= 60:
        starts = [i for i, d in enumerate(dates) if i == 0 or d.month != dates[i - 1].month]
        label = "%b %Y"
    else:
        starts, label = list(range(len(dates))), "%b %-d"
    every = max(1, math.ceil(len(starts) / count))
    return [(i, dates[i].strftime(label)) for i in starts[::every]]


class _Frame:
    """The plot area: maps a session index and a value to user units."""

    def __init__(self, sessions: int, ticks: list[float], height: int = HEIGHT) -> None:
        self.sessions, self.ticks, self.height = sessions, ticks, height
        self.low, self.high = ticks[0], ticks[-1]
        self.inner_w = WIDTH - LEFT - RIGHT
        self.inner_h = height - TOP - BOTTOM

    def x(self, index: float) -> float:
        if self.sessions <= 1:
            return LEFT + self.inner_w / 2
        return LEFT + self.inner_w * index / (self.sessions - 1)

    def y(self, value: float) -> float:
        return TOP + self.inner_h * (self.high - value) / ((self.high - self.low) or 1.0)


def _text(x: float, y: float, text: str, anchor: str = "middle", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{FONT}" '
        f'fill="{TEXT_COLOR}"{extra}>{html.escape(text)}</text>'
    )


def _axes(
    frame: _Frame, dates: Sequence[dt.date], y_format: Callable[[float], str], x_at=None
) -> list[str]:
    """Horizontal grid lines with value labels, the x axis with date labels."""
    x_at = x_at or frame.x
    out = []
    for tick in frame.ticks:
        y = frame.y(tick)
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOR}"/>'
        )
        out.append(_text(LEFT - 8, y + 4, y_format(tick), "end"))
    bottom = frame.height - BOTTOM
    out.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}" '
        f'stroke="{AXIS_COLOR}"/>'
    )
    for index, label in date_ticks(dates):
        x = x_at(index)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 5}" '
            f'stroke="{AXIS_COLOR}"/>'
        )
        out.append(_text(x, bottom + 20, label))
    return out


def _legend(items: Sequence[tuple[str, str, str | None]]) -> list[str]:
    """Swatches and names along the top: (name, color, dash)."""
    out, x = [], LEFT
    for name, color, dash in items:
        dashing = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<line x1="{x}" x2="{x + 22}" y1="14" y2="14" stroke="{color}" '
            f'stroke-width="3"{dashing}/>'
        )
        out.append(_text(x + 28, 18, name, "start"))
        x += 28 + int(len(name) * FONT * 0.58) + 24
    return out


def _svg(label: str, parts: list[str], height: int = HEIGHT, width: int = WIDTH) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'style="max-width:100%;height:auto" role="img" '
        f'aria-label="{html.escape(label, quote=True)}" '
        f'xmlns="http://www.w3.org/2000/svg">' + "".join(parts) + "</svg>"
    )


def _paths(frame: _Frame, line: Line, dates: Sequence[dt.date]) -> list[str]:
    """The line's path (broken where a value is missing), or dots when it has one point."""
    runs: list[list[str]] = [[]]
    for i, value in enumerate(line.values):
        if value is None or not math.isfinite(value):
            runs.append([])
        else:
            runs[-1].append(f"{frame.x(i):.1f},{frame.y(value):.1f}")
    dash = f' stroke-dasharray="{line.dash}"' if line.dash else ""
    out = []
    for points in filter(None, runs):
        if len(points) == 1:
            x, y = points[0].split(",")
            out.append(f'<circle cx="{x}" cy="{y}" r="4" fill="{line.color}"/>')
        else:
            out.append(
                f'<polyline fill="none" stroke="{line.color}" stroke-width="{line.width}" '
                f'stroke-linejoin="round"{dash} points="{" ".join(points)}"/>'
            )
    last = next((i for i in range(len(line.values) - 1, -1, -1) if _finite(line.values[i])), None)
    if last is not None:
        value = line.values[last]
        title = f"{line.name}, {dates[last]}: {dollars(value)}"
        out.append(
            f'<circle cx="{frame.x(last):.1f}" cy="{frame.y(value):.1f}" r="3" '
            f'fill="{line.color}"><title>{html.escape(title)}</title></circle>'
        )
    return out


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def thinned(count: int, most: int = MAX_POINTS) -> list[int]:
    """Indices of at most about ``most`` of ``count`` sessions: every k-th, and the last."""
    step = max(1, math.ceil(count / most))
    keep = list(range(0, count, step))
    if count and keep[-1] != count - 1:
        keep.append(count - 1)
    return keep


def line_chart(
    dates: Sequence[dt.date],
    lines: Sequence[Line],
    *,
    label: str,
    y_format: Callable[[float], str] = compact_dollars,
) -> str:
    """Lines over sessions on one y axis, with a legend; ``label`` names it for screen readers.

    More than :data:`MAX_POINTS` sessions are thinned (:func:`thinned`) before drawing.
    """
    if len(dates) > MAX_POINTS:
        keep = thinned(len(dates))
        dates = [dates[i] for i in keep]
        lines = [Line(x.name, [x.values[i] for i in keep], x.color, x.dash, x.width) for x in lines]
    values = [v for line in lines for v in line.values if _finite(v)]
    ticks = nice_ticks(min(values, default=0.0), max(values, default=1.0))
    frame = _Frame(len(dates), ticks)
    parts = _axes(frame, dates, y_format)
    for line in lines:
        parts += _paths(frame, line, dates)
    parts += _legend([(line.name, line.color, line.dash) for line in lines])
    return _svg(label, parts)


def bar_chart(
    dates: Sequence[dt.date],
    values: Sequence[float],
    *,
    label: str,
    name: str,
    y_format: Callable[[float], str] = compact_dollars,
    title_format: Callable[[float], str] = dollars,
) -> str:
    """One bar per session from zero, green above and red below, on a labelled y axis."""
    ticks = nice_ticks(min(min(values, default=0.0), 0.0), max(max(values, default=0.0), 0.0))
    frame = _Frame(len(dates), ticks)
    slot = frame.inner_w / max(len(dates), 1)
    bar = min(MAX_BAR, max(slot * 0.7, 1.0))

    def center(index: float) -> float:
        return LEFT + slot * (index + 0.5)

    parts = _axes(frame, dates, y_format, x_at=center)
    zero = frame.y(0.0)
    for i, (day, value) in enumerate(zip(dates, values, strict=True)):
        top, bottom = sorted((frame.y(value), zero))
        color = GAIN_COLOR if value >= 0 else LOSS_COLOR
        parts.append(
            f'<rect x="{center(i) - bar / 2:.1f}" y="{top:.1f}" width="{bar:.1f}" '
            f'height="{max(bottom - top, 0.5):.1f}" fill="{color}">'
            f"<title>{html.escape(f'{day}: {title_format(value)}')}</title></rect>"
        )
    parts.append(
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{zero:.1f}" y2="{zero:.1f}" '
        f'stroke="{AXIS_COLOR}"/>'
    )
    parts += _legend([(name, GAIN_COLOR, None)])
    return _svg(label, parts)


def share_bars(
    items: Sequence[tuple[str, float, str]], *, label: str, total: float, width: int = 560
) -> str:
    """Horizontal bars, one per (name, dollars, color), as a share of ``total``; each labelled
    with its dollars and its percentage of the total. ``width`` user units wide (half a page)."""
    row, gap = 26, 8
    height = TOP + len(items) * (row + gap) + 8
    inner = width - LEFT - RIGHT - 170
    parts = []
    for i, (name, value, color) in enumerate(items):
        y = TOP + i * (row + gap)
        share = value / total if total else 0.0
        bar = max(inner * max(share, 0.0), 1.0)
        parts.append(_text(LEFT - 8, y + row / 2 + 4, name, "end"))
        parts.append(
            f'<rect x="{LEFT}" y="{y}" width="{bar:.1f}" height="{row}" fill="{color}">'
            f"<title>{html.escape(f'{name}: {dollars(value)}')}</title></rect>"
        )
        text = f"{dollars(value)} · {percent(share)}"
        parts.append(_text(LEFT + bar + 8, y + row / 2 + 4, text, "start"))
    parts.append(_text(LEFT, 18, f"Total {dollars(total)}", "start", ' font-weight="600"'))
    return _svg(label, parts, height, width)
