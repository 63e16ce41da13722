"""Run every benchmark and print one table: ``python bench/run.py [--only a,c,e]``.

Each end-to-end scenario starts the Telegram and LLM doubles and the bot as
separate processes and drives them over the doubles' control APIs; our bot and
the bare reference bot (``bench/reference_bot.py``) run the same load, one
after the other, on the same machine. See bench/README.md for what each row means.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import math
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))
os.environ.setdefault("PTB_TIMEDELTA", "1")

import scenarios  # noqa: E402
from scenarios import Row  # noqa: E402

ORDER = "abcdefgh"


def fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def table(rows: list[Row]) -> str:
    header = ("", "metric", "ours", "reference", "ours/ref", "target")
    lines = []
    for row in rows:
        ratio = ""
        if (
            row.ratio
            and isinstance(row.ours, (int, float))
            and isinstance(row.reference, (int, float))
            and row.reference
        ):
            ratio = f"{row.ours / row.reference:.2f}x"
        lines.append(
            (row.scenario, row.metric, fmt(row.ours), fmt(row.reference), ratio, row.target)
        )
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    out = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for line in lines:
        cells = [
            str(c).ljust(w) if i < 2 or i == 5 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


async def run(selected: str) -> list[Row]:
    rows: list[Row] = []
    for letter in ORDER:
        if letter not in selected:
            continue
        func = getattr(scenarios, f"scenario_{letter}", None)
        if func is None:
            continue
        started = time.monotonic()
        print(f"running ({letter}) ...", file=sys.stderr, flush=True)
        if inspect.iscoroutinefunction(func):
            result = await func()
        else:  # the in-process benchmarks run their own event loops
            result = await asyncio.to_thread(func)
        rows.extend(result)
        print(f"  ({letter}) took {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=ORDER, help="scenario letters to run, e.g. ace")
    args = parser.parse_args()
    selected = args.only.replace(",", "").lower()
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    rows = asyncio.run(run(selected))
    print(table(rows))
    # Tail latencies move with whatever else the machine runs; the load says how busy it was.
    print(
        f"\ntotal {time.monotonic() - started:.0f} s on {os.cpu_count()} cores; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )


if __name__ == "__main__":
    main()
