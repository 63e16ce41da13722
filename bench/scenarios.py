"""The benchmark scenarios. Each returns rows for the table printed by ``bench/run.py``.

A row is (scenario, metric, ours, reference, target). ``ours`` and ``reference``
are numbers (or None / text); the target is text such as ``"<= 20"`` or
``">= 1.0x ref"`` and is only printed, never asserted.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

from harness import Rig, cpu_seconds, median, percentile

QUESTIONS = [
    "Where is my order {n}?",
    "How long does delivery to Berlin take for parcel {n}?",
    "Can I return the lamp from order {n}?",
    "Which payment methods do you accept for basket {n}?",
    "How do I change the address on order {n}?",
    "Do you ship sofa model {n} abroad?",
    "When will my refund for order {n} arrive?",
    "How do I reset the password of account {n}?",
]


def question(n: int) -> str:
    return QUESTIONS[n % len(QUESTIONS)].format(n=n)


@dataclass
class Row:
    scenario: str
    metric: str
    ours: Any
    reference: Any = None
    target: str = ""
    ratio: bool = False  # print ours/reference


async def warm_up(rig: Rig, chats: int = 3) -> None:
    """First messages pay for imports and connection set-up; they are not measured."""
    base = 9_000_000
    for chat in range(chats):
        await rig.send(base + chat, question(chat))
    for chat in range(chats):
        await rig.wait_chat(base + chat, 1)
    rig.forget_injected()
    await rig.llm_control("clear_timings", {})


# ----------------------------------------------------------------------------- (a)


async def overhead(kind: str, messages: int = 20) -> dict[str, float]:
    """One customer at a time, LLM 0.5 s: latency minus the model's own time."""
    async with Rig(kind, llm_delay=0.5) as rig:
        await warm_up(rig)
        chat = 100
        for n in range(messages):
            if n % 5 == 0:  # our bot asks customers to slow down after 10 a minute
                chat += 1
            count = len(rig.injected.get(chat, [])) + 1
            await rig.send(chat, question(n))
            await rig.wait_chat(chat, count)
        latencies = await rig.latencies()
        timings = await rig.llm_control("timings")
        llm = [t["end"] - t["start"] for t in timings]
        own = [(lat - model) * 1000 for lat, model in zip(latencies, llm, strict=False)]
        return {"p50": median(own), "p99": percentile(own, 99), "n": len(own)}


async def scenario_a() -> list[Row]:
    ours = await overhead("ours")
    ref = await overhead("reference")
    return [
        Row("a", "overhead p50 (ms, 1 customer, LLM 0.5 s)", ours["p50"], ref["p50"]),
        Row("a", "overhead p99 (ms)", ours["p99"], ref["p99"], "<= 20"),
    ]


# ----------------------------------------------------------------------------- (b)


async def conversations(kind: str, customers: int = 50, messages: int = 3) -> dict[str, float]:
    """Customers that each wait for the answer before writing again, LLM 1 s."""
    async with Rig(kind, llm_delay=1.0) as rig:
        await warm_up(rig)

        async def customer(chat: int) -> None:
            await asyncio.sleep(random.random() * 0.2)
            for n in range(messages):
                await rig.send(chat, question(chat + n))
                await rig.wait_chat(chat, n + 1, timeout=120)

        started = time.time()
        await asyncio.gather(*(customer(200 + c) for c in range(customers)))
        total = time.time() - started
        latencies = [x * 1000 for x in await rig.latencies()]
        return {"total": total, "p50": median(latencies), "p99": percentile(latencies, 99)}


async def scenario_b() -> list[Row]:
    ours = await conversations("ours")
    ref = await conversations("reference")
    return [
        Row("b", "50 customers x 3 messages, LLM 1 s: total (s)", ours["total"], ref["total"]),
        Row("b", "latency p50 (ms)", ours["p50"], ref["p50"]),
        Row("b", "latency p99 (ms)", ours["p99"], ref["p99"]),
    ]


# ----------------------------------------------------------------------------- (c)


async def burst(kind: str, customers: int = 200, messages: int = 2) -> dict[str, float]:
    """Every customer's messages arrive at once; the model answers instantly."""
    async with Rig(kind, llm_delay=0.0) as rig:
        await warm_up(rig)
        assert rig.bot and rig.telegram and rig.llm
        already = (await rig.tg("stats"))["sent"]
        expected = customers * messages
        fakes = (rig.telegram, rig.llm)
        bot_cpu = rig.bot.cpu()
        fake_cpu = [p.cpu() for p in fakes]
        driver_cpu = cpu_seconds()
        started = time.time()

        async def customer(chat: int) -> None:
            for n in range(messages):
                await rig.send(chat, question(chat + n))

        await asyncio.gather(*(customer(10_000 + c) for c in range(customers)))
        await rig.wait_total(already + expected, every=0.05)
        bot_cpu = rig.bot.cpu() - bot_cpu
        fake_cpu = [p.cpu() - before for p, before in zip(fakes, fake_cpu, strict=True)]
        driver_cpu = cpu_seconds() - driver_cpu
        replies = await rig.reply_times()
        last = max(t for chat, times in replies.items() if chat >= 10_000 for t in times)
        elapsed = last - started
        latencies = [x * 1000 for x in await rig.latencies()]
        return {
            "rate": expected / elapsed,
            "cpu_ms": bot_cpu * 1000 / expected,
            "elapsed": elapsed,
            "p50": median(latencies),
            "p99": percentile(latencies, 99),
            "bot_cpu_share": bot_cpu / elapsed,
            "telegram_cpu_share": fake_cpu[0] / elapsed,
            "llm_cpu_share": fake_cpu[1] / elapsed,
            "driver_cpu_share": driver_cpu / elapsed,
        }


async def scenario_c() -> list[Row]:
    ours = await burst("ours")
    ref = await burst("reference")
    return [
        Row(
            "c",
            "200 customers x 2 at once, LLM instant: messages/s",
            ours["rate"],
            ref["rate"],
            ">= 1.0x ref",
            ratio=True,
        ),
        Row("c", "bot CPU per message (ms)", ours["cpu_ms"], ref["cpu_ms"], "<= 1.0x ref", True),
        Row("c", "latency p50 (ms)", ours["p50"], ref["p50"]),
        Row("c", "latency p99 (ms)", ours["p99"], ref["p99"]),
        Row(
            "c",
            "bot process CPU (% of one core)",
            100 * ours["bot_cpu_share"],
            100 * ref["bot_cpu_share"],
        ),
        Row(
            "check",
            "Telegram fake CPU during (c) (% of one core)",
            100 * ours["telegram_cpu_share"],
            100 * ref["telegram_cpu_share"],
            "well < 100",
        ),
        Row(
            "check",
            "LLM fake CPU during (c) (% of one core)",
            100 * ours["llm_cpu_share"],
            100 * ref["llm_cpu_share"],
            "well < 100",
        ),
        Row(
            "check",
            "driver CPU during (c) (% of one core)",
            100 * ours["driver_cpu_share"],
            100 * ref["driver_cpu_share"],
            "well < 100",
        ),
    ]


# ----------------------------------------------------------------------------- (e)


def scenario_e() -> list[Row]:
    import retrieval

    result = retrieval.speed(10_000, 2000)
    return [
        Row("e", "FAQ search, 10,000 entries: p50 (ms)", result["p50_ms"]),
        Row("e", "FAQ search p99 (ms)", result["p99_ms"], None, "<= 5"),
    ]
