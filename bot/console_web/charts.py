"""Bar and line charts as inline SVG, drawn on the server.

No JavaScript, no CDN, no build step: a chart is a string of SVG that any
browser (a phone's too) shows as it is, and a test can read. Every label is
escaped, because labels come from the database (reason codes, languages, FAQ ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 420
PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#64748b")


def _number(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"


def _svg(title: str, height: int) -> str:
    """The opening tag, titled for screen readers and for the browser's tooltip."""
    return (
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )


def _empty(title: str) -> str:
    return _svg(title, 60) + '<text x="10" y="35" class="muted">No data in this period</text></svg>'


def bar_chart(title: str, items: Sequence[tuple[str, float]], unit: str = "") -> str:
    """Horizontal bars, one per (label, value): long labels stay readable on a phone."""
    if not items:
        return _empty(title)
    row, label_width, top = 26, 140, 6
    height = top + row * len(items) + 4
    largest = max(value for _, value in items) or 1
    span = WIDTH - label_width - 50
    parts = [_svg(title, height)]
    for number, (label, value) in enumerate(items):
        y = top + number * row
        width = max(1.0, span * value / largest) if value else 0
        color = PALETTE[number % len(PALETTE)]
        shown = label if len(label) <= 20 else label[:19] + "…"
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 16}" text-anchor="end">{escape(shown)}</text>'
            f'<rect class="bar" x="{label_width}" y="{y + 3}" width="{width:.1f}" height="18" '
            f'fill="{color}"><title>{escape(label)}: {_number(value)}{escape(unit)}</title></rect>'
            f'<text x="{label_width + width + 6:.1f}" y="{y + 16}">'
            f"{_number(value)}{escape(unit)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class _Plot:
    """Where a line chart puts a point: the drawing area inside the margins, and its scale."""

    labels: Sequence[str]
    high: float
    height: int = 200
    left: int = 48
    right: int = 16
    top: int = 26
    bottom: int = 30

    @property
    def width(self) -> float:
        return WIDTH - self.left - self.right

    @property
    def inner_height(self) -> float:
        return self.height - self.top - self.bottom

    def x(self, i: int) -> float:
        step = self.width / max(1, len(self.labels) - 1)
        return self.left + (i * step if len(self.labels) > 1 else self.width / 2)

    def y(self, v: float) -> float:
        return self.top + self.inner_height - self.inner_height * v / self.high


def line_chart(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float | None]],
    unit: str = "",
) -> str:
    """One line per series over the x labels (days); a None is a gap, not a zero."""
    values = [v for points in series.values() for v in points if v is not None]
    if not labels or not values:
        return _empty(title)
    plot = _Plot(labels, max(values) or 1)
    parts = [_svg(title, plot.height), *_axes(plot)]
    for number, (name, points) in enumerate(series.items()):
        parts += _line(plot, number, name, points, unit)
    parts.append("</svg>")
    return "".join(parts)


def _axes(plot: _Plot) -> list[str]:
    """The x axis with its first, middle and last day, and the scale from 0 to the highest."""
    bottom, last = plot.top + plot.inner_height, len(plot.labels) - 1
    parts = [
        f'<line x1="{plot.left}" y1="{bottom}" x2="{WIDTH - plot.right}" y2="{bottom}" '
        'class="axis"/>',
        f'<text x="{plot.left - 6}" y="{plot.top + 4}" text-anchor="end">'
        f"{_number(plot.high)}</text>",
        f'<text x="{plot.left - 6}" y="{bottom}" text-anchor="end">0</text>',
    ]
    for i in sorted({0, last, last // 2}):
        anchor = "start" if i == 0 else "end" if i == last else "middle"
        parts.append(
            f'<text x="{plot.x(i):.1f}" y="{plot.height - 8}" text-anchor="{anchor}">'
            f"{escape(plot.labels[i])}</text>"
        )
    return parts


def _line(
    plot: _Plot, number: int, name: str, points: Sequence[float | None], unit: str
) -> list[str]:
    """One series: a dot with a tooltip per value, lines between neighbours, its legend."""
    color = PALETTE[number % len(PALETTE)]
    parts = []
    runs: list[list[str]] = [[]]
    for i, value in enumerate(points):
        if value is None:
            runs.append([])
            continue
        runs[-1].append(f"{plot.x(i):.1f},{plot.y(value):.1f}")
        parts.append(
            f'<circle cx="{plot.x(i):.1f}" cy="{plot.y(value):.1f}" r="2.5" fill="{color}">'
            f"<title>{escape(name)} {escape(plot.labels[i])}: {_number(value)}{escape(unit)}"
            "</title></circle>"
        )
    for run in runs:
        if len(run) > 1:
            parts.append(
                f'<polyline class="line" fill="none" stroke="{color}" stroke-width="2" '
                f'points="{" ".join(run)}"/>'
            )
    parts.append(
        f'<rect x="{plot.left + 8 + number * 120}" y="6" width="10" height="10" fill="{color}"/>'
        f'<text x="{plot.left + 22 + number * 120}" y="15">{escape(name)}</text>'
    )
    return parts
