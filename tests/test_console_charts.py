"""The console's SVG charts: well-formed, escaped, honest about gaps and empty periods."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bot.console_web.charts import bar_chart, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def test_bar_chart_has_one_bar_per_item_sized_by_value() -> None:
    root = parse(bar_chart("Reasons", [("user_request", 4), ("llm_error", 2), ("model", 0)]))
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    widths = [float(b.get("width")) for b in bars]
    assert len(bars) == 3 and widths[0] == 2 * widths[1] and widths[2] == 0
    assert "user_request" in "".join(root.itertext())


def test_labels_are_escaped() -> None:
    svg = bar_chart("<b>", [('<script>alert("x")</script>', 1)])
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    parse(svg)  # still well-formed
    svg = line_chart("t", ["<i>"], {'"><img src=x>': [1.0]})
    assert "<img" not in svg and "<i>" not in svg
    parse(svg)


def test_line_chart_leaves_gaps_for_days_without_data() -> None:
    root = parse(line_chart("Latency", ["a", "b", "c", "d"], {"s": [1.0, 2.0, None, 3.0]}))
    assert len(list(root.iter(f"{SVG}circle"))) == 3
    lines = list(root.iter(f"{SVG}polyline"))
    assert len(lines) == 1 and len(lines[0].get("points").split()) == 2  # d stands alone


def test_empty_charts_say_so() -> None:
    assert "No data in this period" in bar_chart("x", [])
    assert "No data in this period" in line_chart("x", ["a"], {"s": [None]})
