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

from harness import Rig, cpu_seconds, median, memory_kb, percentile

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


# The same kind of questions as customers write them to a shop whose FAQ is English:
# each is matched by meaning with the bundled model, and answered in its language.
MULTILINGUAL_QUESTIONS = [
    "我的订单{n}什么时候到？",
    "Wie lange dauert der Versand nach Berlin für Paket {n}?",
    "¿Puedo devolver la lámpara del pedido {n}?",
    "Quels moyens de paiement acceptez-vous pour le panier {n} ?",
    "Как изменить адрес в заказе {n}?",
    "注文{n}のソファは海外に発送できますか？",
    "Quando chega o reembolso do pedido {n}?",
    "Jak zresetować hasło do konta {n}?",
]


def question(n: int, questions: list[str] = QUESTIONS) -> str:
    return questions[n % len(questions)].format(n=n)


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
        for n in range(messages):
            # A new customer each time: one chat answered twice a second would be
            # paced by Telegram's per-chat limit, which is not the bot's overhead.
            chat = 101 + n
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


async def burst(
    kind: str,
    customers: int = 200,
    messages: int = 2,
    enforce_limits: bool = False,
    wrapper: list[str] | None = None,
    questions: list[str] = QUESTIONS,
    all_new: bool = False,
) -> dict[str, float]:
    """Every customer's messages arrive at once; the model answers instantly.

    Customers ask the same few questions about their own orders: the 5-digit order
    numbers are identifiers, which the bot's model reads as one ("Where is my order
    0000?"). ``all_new`` gives each message a 3-digit number instead, a quantity the
    model reads as it is, so no two messages are alike to it: the cost of a burst in
    which every message must be embedded."""
    async with Rig(kind, llm_delay=0.0, enforce_limits=enforce_limits, wrapper=wrapper) as rig:
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
                k = 100 + (chat - 10_000) * messages + n if all_new else chat + n
                await rig.send(chat, question(k, questions))

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
    mixed = await burst("ours", questions=MULTILINGUAL_QUESTIONS)
    ref_mixed = await burst("reference", questions=MULTILINGUAL_QUESTIONS)
    new = await burst("ours", questions=MULTILINGUAL_QUESTIONS, all_new=True)
    return [
        Row(
            "c",
            "the same in 8 languages (meaning matched): messages/s",
            mixed["rate"],
            ref_mixed["rate"],
            ">= 0.8x ref",
            ratio=True,
        ),
        Row(
            "c",
            "8 languages: bot CPU per message (ms)",
            mixed["cpu_ms"],
            ref_mixed["cpu_ms"],
            "<= 2.0x ref",
            ratio=True,
        ),
        Row("c", "8 languages: latency p99 (ms)", mixed["p99"], ref_mixed["p99"]),
        Row(
            "c",
            "8 languages, every message new to the model: messages/s",
            new["rate"],
            ref_mixed["rate"],
            ratio=True,
        ),
        Row(
            "c",
            "8 languages, every message new: bot CPU per message (ms)",
            new["cpu_ms"],
            ref_mixed["cpu_ms"],
            ratio=True,
        ),
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


# ----------------------------------------------------------------------------- (d)

STREAMED_ANSWER = " ".join(
    f"Sentence {n} of a long answer that the model writes word by word." for n in range(3)
)


async def streaming(kind: str, messages: int = 5, chunk_delay: float = 0.03) -> dict[str, float]:
    """From the model's first token to the first text the customer can see."""
    async with Rig(kind, llm_delay=0.0) as rig:
        await warm_up(rig)
        gaps = []
        for n in range(messages):
            chat = 500 + n
            await rig.llm_control("clear_timings", {})
            await rig.llm_control(
                "script", {"content": STREAMED_ANSWER, "chunk_delay": chunk_delay}
            )
            await rig.send(chat, question(n))
            await rig.wait_chat(chat, 1)
            timings = await rig.llm_control("timings")
            first_token = timings[0]["first_token"] if timings else None
            shown = [
                c["at"]
                for method in ("sendMessageDraft", "sendMessage", "editMessageText")
                for c in await rig.sent_calls(method)
                if int(c["params"]["chat_id"]) == chat
            ]
            if first_token is not None and shown:
                gaps.append((min(shown) - first_token) * 1000)
        return {"p50": median(gaps), "p99": percentile(gaps, 99), "n": len(gaps)}


async def scenario_d() -> list[Row]:
    ours = await streaming("ours")
    if not ours["n"]:
        return [Row("d", "first token -> first visible text (ms)", "n/a", "n/a", "<= 150")]
    return [
        Row("d", "first token -> first visible text p50 (ms)", ours["p50"], "no stream"),
        Row("d", "first token -> first visible text p99 (ms)", ours["p99"], "no stream", "<= 150"),
    ]


# ----------------------------------------------------------------------------- (f)


def build_history_db(path: str, chats: int = 10_000, per_chat: int = 100) -> float:
    """``chats`` x ``per_chat`` messages written straight with executemany; returns seconds.

    Messages are interleaved across chats, as they arrive in real life, so one
    chat's rows are spread over the whole file rather than sitting together.
    """
    import sqlite3

    from bot.store.db import Database

    async def migrate() -> None:
        db = await Database(path).open()
        await db.close()

    asyncio.run(migrate())
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    now = "2026-01-01T00:00:00.000+00:00"
    conn.executemany(
        "INSERT INTO customers (chat_id, user_id, first_name, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?)",
        ((c, c, f"Customer{c}", now, now) for c in range(1, chats + 1)),
    )
    # Conversation 2c-1 is the chat's finished one, 2c its open one.
    conn.executemany(
        "INSERT INTO conversations (id, chat_id, started_at, ended_at, end_reason) "
        "VALUES (?, ?, ?, ?, ?)",
        (
            (2 * c - 1 + k, c, now, None if k else now, None if k else "reset")
            for c in range(1, chats + 1)
            for k in (0, 1)
        ),
    )
    split = per_chat * 6 // 10
    text = "Where is my order? It was meant to arrive on Tuesday and nothing came."

    def rows():
        for step in range(per_chat):
            role = "customer" if step % 2 == 0 else "bot"
            for c in range(1, chats + 1):
                conversation = 2 * c - 1 + (step >= split)
                yield (conversation, c, role, text, now)

    conn.executemany(
        "INSERT INTO messages (conversation_id, chat_id, role, text, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        rows(),
    )
    conn.commit()
    conn.close()
    return time.perf_counter() - started


def scenario_f(lookups: int = 2000) -> list[Row]:
    import tempfile
    from pathlib import Path

    from bot.store.conversations import ConversationStore
    from bot.store.db import Database

    chats, per_chat = 10_000, 100
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        path = str(Path(tmp) / "history.sqlite3")
        build = build_history_db(path, chats, per_chat)

        async def measure() -> list[float]:
            db = await Database(path).open()
            store = ConversationStore(db)
            rng = random.Random(3)
            times = []
            try:
                for _ in range(lookups):
                    chat = rng.randint(1, chats)
                    t0 = time.perf_counter()
                    await store.history(chat, 20)
                    times.append((time.perf_counter() - t0) * 1000)
            finally:
                await db.close()
            return times

        times = asyncio.run(measure())
    return [
        Row("f", f"history(20) among {chats * per_chat:,} messages: p50 (ms)", median(times)),
        Row("f", "history p99 (ms)", percentile(times, 99), None, "<= 2"),
        Row("f", "building that database with executemany (s)", build),
    ]


# ----------------------------------------------------------------------------- (g)


async def many_customers(
    kind: str, customers: int = 10_000, answer_window: float = 20.0
) -> dict[str, float]:
    """Ten thousand customers write at once; peak memory while the bot takes them all in.

    Answers leave at Telegram's 30 messages a second (our bot keeps to that
    limit), so all 10,000 would take over five minutes; the run stops after
    ``answer_window`` seconds and says how many were answered by then.
    """
    async with Rig(kind, llm_delay=0.0) as rig:
        await warm_up(rig)
        assert rig.bot is not None
        baseline = rig.bot and memory_rss(rig.bot.pid)
        sent_before = (await rig.tg("stats"))["sent"]
        gate = asyncio.Semaphore(64)
        started = time.time()

        async def customer(chat: int) -> None:
            async with gate:
                await rig.tg("user_text", {"chat_id": chat, "text": question(chat)})

        await asyncio.gather(*(customer(100_000 + c) for c in range(customers)))
        injected = time.time() - started
        deadline = time.monotonic() + answer_window
        sent = sent_before
        while time.monotonic() < deadline:
            stats = await rig.tg("stats")
            sent = stats["sent"]
            if sent - sent_before >= customers:
                break
            await asyncio.sleep(0.5)
        answered = sent - sent_before
        return {
            "hwm_mb": memory_kb(rig.bot.pid, "VmHWM") / 1024,
            "rss_mb": memory_kb(rig.bot.pid, "VmRSS") / 1024,
            "baseline_mb": baseline / 1024,
            "answered": answered,
            "seconds": time.time() - started,
            "inject_s": injected,
        }


def memory_rss(pid: int) -> int:
    return memory_kb(pid, "VmRSS")


async def scenario_g() -> list[Row]:
    ours = await many_customers("ours")
    ref = await many_customers("reference")
    return [
        Row("g", "RSS at start (MB)", ours["baseline_mb"], ref["baseline_mb"]),
        Row(
            "g",
            "peak RSS, 10,000 customers writing at once (MB)",
            ours["hwm_mb"],
            ref["hwm_mb"],
            "<= 120",
        ),
        Row(
            "g",
            f"of those answered within {ours['seconds']:.0f} s",
            int(ours["answered"]),
            int(ref["answered"]),
        ),
    ]


# ----------------------------------------------------------------------------- checks


async def flood_check(kind: str, customers: int = 100, window: float = 12.0) -> dict[str, int]:
    """The burst of (c) with the double enforcing Telegram's flood limits."""
    async with Rig(kind, llm_delay=0.0, enforce_limits=True) as rig:
        await warm_up(rig)
        before = await rig.tg("stats")

        async def customer(chat: int) -> None:
            for n in range(2):
                await rig.send(chat, question(chat + n))

        await asyncio.gather(*(customer(20_000 + c) for c in range(customers)))
        deadline = time.monotonic() + window
        while time.monotonic() < deadline:
            stats = await rig.tg("stats")
            if stats["sent"] - before["sent"] >= 2 * customers:
                break
            await asyncio.sleep(0.2)
        stats = await rig.tg("stats")
        return {
            "429": stats["too_many_requests"] - before["too_many_requests"],
            "answered": stats["sent"] - before["sent"],
        }


async def echo_rate(
    server: Any, url: str, body: dict, requests: int = 2000, parallel: int = 32
) -> tuple[float, float]:
    """The double alone: requests per second served, and per second of its own CPU.

    The first figure is bounded by this driver; the second is what the double
    could serve on one core, far above any rate the bots reach.
    """
    import httpx

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=parallel)) as http:
        gate = asyncio.Semaphore(parallel)

        async def one() -> None:
            async with gate:
                response = await http.post(url, json=body)
                response.raise_for_status()

        cpu = server.cpu()
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(requests)))
        elapsed = time.perf_counter() - started
        cpu = server.cpu() - cpu
        return requests / elapsed, requests / max(cpu, 1e-3)


async def scenario_h() -> list[Row]:
    ours = await flood_check("ours")
    ref = await flood_check("reference")
    async with Rig("reference") as rig:
        assert rig.telegram and rig.llm and rig.bot
        rig.bot.stop()  # measure the doubles alone
        token = rig.telegram.info["token"]
        tg_rate, tg_capacity = await echo_rate(
            rig.telegram,
            f"{rig.telegram.info['url']}/bot{token}/sendMessage",
            {"chat_id": 42, "text": "echo"},
        )
        llm_rate, llm_capacity = await echo_rate(
            rig.llm,
            f"{rig.llm.info['base_url']}/chat/completions",
            {"model": "m", "messages": [{"role": "user", "content": "echo"}]},
            requests=1000,
        )
    return [
        Row("h", "Telegram 429s, 100 x 2 burst, --enforce-limits", ours["429"], ref["429"], "0"),
        Row(
            "h",
            "answers delivered (of 200) with limits enforced",
            ours["answered"],
            ref["answered"],
        ),
        Row("check", "Telegram double alone: sendMessage/s (driver-bound)", tg_rate),
        Row("check", "  per second of its own CPU", tg_capacity, None, ">> (c) rates"),
        Row("check", "LLM double alone: completions/s (driver-bound)", llm_rate),
        Row("check", "  per second of its own CPU", llm_capacity, None, ">> (c) rates"),
    ]
