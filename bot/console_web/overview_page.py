"""The overview page's HTML: the period's numbers as cards, its trends as charts.

Only drawing: ``queries.overview`` reads the numbers and ``ConsolePages`` decides who
may see them, so this module can be read (and tested) as plain functions of the data.
"""

from __future__ import annotations

from bot.console_web.charts import bar_chart, line_chart
from bot.console_web.queries import PERIODS, Overview
from bot.console_web.templates import card, panel


def period_links(path: str, days: int) -> str:
    """The periods a page can show, the current one marked; the gap page offers the same."""
    return " ".join(
        f'<a href="{path}?days={d}"{" class=on" if d == days else ""}>{d} days</a>' for d in PERIODS
    )


def overview_body(data: Overview) -> str:
    return (
        f'<p class="period">Period: {period_links("/console", data.days)}</p>'
        f'<div class="cards">{_cards(data)}</div>'
        f'<div class="grid">{"".join(_charts(data))}</div>'
    )


def _minutes(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} min"


def _cards(data: Overview) -> str:
    stats = data.stats
    rate = stats.deflection_rate
    return "".join(
        [
            card("Messages", f"{sum(v or 0 for v in data.messages):.0f}"),
            card("Conversations", str(stats.conversations)),
            card("Answered without a person", "–" if rate is None else f"{rate:.0%}"),
            card("Handed to staff", str(stats.handed_over)),
            card("Median first response", _minutes(stats.median_first_response_minutes)),
            card("Median resolution", _minutes(stats.median_resolution_minutes)),
            card(
                "CSAT",
                "–"
                if stats.average_rating is None
                else f"{stats.average_rating:.1f} / 5 ({stats.ratings})",
            ),
            card("👍 / 👎", f"{stats.helpful} / {stats.not_helpful}"),
        ]
    )


def _charts(data: Overview) -> list[str]:
    short = [label[5:] for label in data.labels]  # MM-DD
    return [
        panel(
            "Messages and customers per day",
            line_chart(
                "Messages and customers per day",
                short,
                {"messages": data.messages, "customers": data.customers},
            ),
        ),
        panel("Who answered", bar_chart("Who answered", data.answered_by)),
        panel("Escalation reasons", bar_chart("Escalation reasons", data.reasons)),
        panel("Ratings (CSAT)", bar_chart("Ratings", data.ratings)),
        panel("Answer feedback", bar_chart("Answer feedback", data.feedback)),
        panel(
            "First response and resolution (median minutes)",
            line_chart(
                "First response and resolution",
                short,
                {"first response": data.first_response, "resolution": data.resolution},
                " min",
            ),
        ),
        panel("Languages (customers)", bar_chart("Languages", data.languages)),
        panel(
            "Model tokens per day",
            line_chart(
                "Model tokens per day",
                short,
                {"prompt": data.prompt_tokens, "completion": data.completion_tokens},
            ),
        ),
        panel(
            "Model latency (average seconds)",
            line_chart("Model latency", short, {"latency": data.latency}, " s"),
        ),
    ]
