"""Bar and line charts as inline SVG, drawn on the server.

No JavaScript, no CDN, no build step: a chart is a string of SVG that any
browser (a phone's too) shows as it is, and a test can read. Every label is
escaped, because labels come from the database (reason codes, languages, FAQ ids).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH = 420
PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#64748b")


def _number(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"


def _empty(title: str) -> str:
    return (
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} 60" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        '<text x="10" y="35" class="muted">No data in this period</text></svg>'
    )


def bar_chart(title: str, items: Sequence[tuple[str, float]], unit: str = "") -> str:
    """Horizontal bars, one per (label, value): long labels stay readable on a phone."""
    if not items:
        return _empty(title)
    row, label_width, top = 26, 140, 6
    height = top + row * len(items) + 4
    largest = max(value for _, value in items) or 1
    span = WIDTH - label_width - 50
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
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
    height, left, right, top, bottom = 200, 48, 16, 26, 30
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    high = max(values) or 1
    step = plot_w / max(1, len(labels) - 1)

    def x(i: int) -> float:
        return left + (i * step if len(labels) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / high

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - right}" y2="{top + plot_h}" '
        'class="axis"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{_number(high)}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    ticks = sorted({0, len(labels) - 1, (len(labels) - 1) // 2})
    for i in ticks:
        anchor = "start" if i == 0 else "end" if i == len(labels) - 1 else "middle"
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - 8}" text-anchor="{anchor}">'
            f"{escape(labels[i])}</text>"
        )
    for number, (name, points) in enumerate(series.items()):
        color = PALETTE[number % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for i, value in enumerate(points):
            if value is None:
                runs.append([])
                continue
            runs[-1].append(f"{x(i):.1f},{y(value):.1f}")
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="2.5" fill="{color}">'
                f"<title>{escape(name)} {escape(labels[i])}: {_number(value)}{escape(unit)}"
                "</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                parts.append(
                    f'<polyline class="line" fill="none" stroke="{color}" stroke-width="2" '
                    f'points="{" ".join(run)}"/>'
                )
        parts.append(
            f'<rect x="{left + 8 + number * 120}" y="6" width="10" height="10" fill="{color}"/>'
            f'<text x="{left + 22 + number * 120}" y="15">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
