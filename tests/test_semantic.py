"""Meaning-based matching (``retrieval.semantic``) against the LLM double's /embeddings.

The services are opened the way the bot and the CLI open them, on a real SQLite file,
with the double on loopback; the request log of the double shows what was embedded.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import sqlite3
import sys
from pathlib import Path

import pytest
from aiohttp import web

from bot.services import open_services
from tests.fakes import FakeLLM
from tests.helpers import tune


class EmbeddingsDouble(FakeLLM):
    """The LLM double with two extra switches for its /embeddings endpoint.

    ``concepts`` turns it into a tiny "model" that knows synonyms: each text becomes a
    vector with one axis per concept it mentions, so a message and an entry that share
    no word can still be close in meaning. ``failing`` answers every call with HTTP 500.
    """

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.concepts: dict[str, set[str]] | None = None
        # While set, requests beyond the first ``gate_after`` wait for the gate to open.
        self.gate: asyncio.Event | None = None
        self.gate_after = 0
        self.seen = 0
        self.holding = asyncio.Event()  # set once a request waits at the gate

    async def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()  # no request may hold the server's shutdown
        await super().stop()

    async def _handle_embeddings(self, request: web.Request) -> web.StreamResponse:
        self.seen += 1
        if self.gate is not None and self.seen > self.gate_after:
            self.holding.set()
            await self.gate.wait()
        if self.failing:
            body = await request.json()
            self.embedding_requests.append(body)
            return web.json_response(
                {"error": {"message": "embedding backend down", "type": "server_error"}},
                status=500,
            )
        if self.concepts is None:
            return await super()._handle_embeddings(request)
        body = await request.json()
        self.embedding_requests.append(body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        names = sorted(self.concepts)
        data = []
        for index, text in enumerate(inputs):
            words = set(re.findall(r"\w+", text.lower()))
            vector = [1.0 if words & self.concepts[name] else 0.0 for name in names] + [0.01]
            norm = math.sqrt(sum(v * v for v in vector))
            data.append({"index": index, "embedding": [v / norm for v in vector]})
        return web.json_response({"object": "list", "data": data, "model": body["model"]})


@pytest.fixture
async def embeddings() -> EmbeddingsDouble:
    async with EmbeddingsDouble() as fake:
        yield fake


def enable_semantic(config: Path, weight: str = "0.5") -> None:
    """Meaning from the provider's /embeddings (the double) instead of the bundled model."""
    path = config / "bot.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("embedding_source: bundled", "embedding_source: provider", 1)
    text = text.replace("embedding_model: text-embedding-3-small", "embedding_model: emb-test", 1)
    text = text.replace("semantic_weight: 0.7", f"semantic_weight: {weight}", 1)
    path.write_text(text, encoding="utf-8")


def embedded_inputs(fake: FakeLLM) -> list[int]:
    """Number of texts per /embeddings request, in order."""
    return [len(r["input"]) if isinstance(r["input"], list) else 1 for r in fake.embedding_requests]


def cached_rows(db: str, model: str = "emb-test") -> int:
    """FAQ vectors of the double's model (the bundled model keeps its own there too)."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT COUNT(*) FROM embedding_cache WHERE model = ?", (model,)
        ).fetchone()[0]
    finally:
        conn.close()


def many_entries(faq: Path, count: int) -> None:
    for path in faq.glob("*.yaml"):
        path.unlink()
    lines = ["faq:"]
    for n in range(count):
        lines += [
            f"  - id: entry_{n}",
            f'    question: "Question number {n}?"',
            f'    answer: "Answer number {n}."',
        ]
    (faq / "many.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


async def test_restart_and_reload_reuse_cached_vectors(embeddings, make_settings, knowledge_dirs):
    config, faq = knowledge_dirs
    enable_semantic(config)
    settings = make_settings(llm=embeddings)

    services = await open_services(settings)
    entries = len(services.knowledge.current.faq.entries)
    await services.close()
    assert embedded_inputs(embeddings) == [entries]
    assert {r["model"] for r in embeddings.embedding_requests} == {"emb-test"}
    assert cached_rows(settings.storage.database_path) == entries

    embeddings.reset()
    services = await open_services(settings)
    try:
        assert embeddings.embedding_requests == []
        # A word the FAQ lacks ("chalet"), so the words alone do not decide.
        message = "how much does shipping cost to my chalet in austria?"
        results = await services.core.retrieve(services.knowledge.current, message, 3)
        assert results[0].id == "shipping_costs"
        assert embeddings.embedding_requests[-1]["input"] == [message]

        # One changed answer: a reload embeds that entry alone.
        embeddings.reset()
        shipping = faq / "shipping.yaml"
        text = shipping.read_text(encoding="utf-8")
        shipping.write_text(text.replace("4.95 EUR", "5.45 EUR", 1), encoding="utf-8")
        await services.knowledge.reload()
        assert embedded_inputs(embeddings) == [1]
        assert "5.45 EUR" in embeddings.embedding_requests[0]["input"][0]
    finally:
        await services.close()
    assert cached_rows(settings.storage.database_path) == entries + 1


async def test_databases_share_a_vector_cache_file(
    embeddings, make_settings, knowledge_dirs, tmp_path
):
    # A rehearsal's throw-away database next to production's: the FAQ is embedded once.
    config, _ = knowledge_dirs
    enable_semantic(config)
    shared = str(tmp_path / "vectors.sqlite3")
    first = make_settings(llm=embeddings, VECTOR_CACHE_PATH=shared)
    services = await open_services(first)
    entries = len(services.knowledge.current.faq.entries)
    await services.close()
    assert embedded_inputs(embeddings) == [entries]
    assert cached_rows(shared) == entries
    assert cached_rows(first.storage.database_path) == 0

    embeddings.reset()
    second = make_settings(
        llm=embeddings, VECTOR_CACHE_PATH=shared, DATABASE_PATH=str(tmp_path / "other.sqlite3")
    )
    services = await open_services(second)
    try:
        assert embeddings.embedding_requests == []
        results = await services.core.retrieve(
            services.knowledge.current, "how much does shipping cost to austria?", 3
        )
        assert results[0].id == "shipping_costs"
    finally:
        await services.close()


async def test_entries_are_embedded_in_batches(embeddings, make_settings, knowledge_dirs):
    config, faq = knowledge_dirs
    enable_semantic(config)
    many_entries(faq, 150)
    services = await open_services(make_settings(llm=embeddings))
    await services.close()
    sizes = embedded_inputs(embeddings)
    assert sum(sizes) == 150 and len(sizes) > 1 and max(sizes) <= 96


@pytest.mark.parametrize("when", ["at start", "per message"])
async def test_embeddings_failure_falls_back_to_lexical(
    embeddings, make_settings, knowledge_dirs, when
):
    config, _faq = knowledge_dirs
    enable_semantic(config, weight="1.0")  # meaning alone, were it available
    embeddings.concepts = {"shipping": {"password"}}  # a "model" that would rank wrongly
    embeddings.failing = when == "at start"
    services = await open_services(make_settings(llm=embeddings))
    try:
        embeddings.failing = True
        knowledge = services.knowledge.current
        for query in ["how much does shipping cost to austria?", "i forgot my password"]:
            got = await services.core.retrieve(knowledge, query, 3)
            lexical = knowledge.search(query, 3)
            assert [(r.id, r.score, r.confidence) for r in got] == [
                (r.id, r.score, r.confidence) for r in lexical
            ]
        assert embeddings.embedding_requests  # it was tried
    finally:
        await services.close()


async def test_a_long_first_embedding_does_not_hold_up_start_or_customers(
    embeddings, make_settings, knowledge_dirs, caplog
):
    config, _faq = knowledge_dirs
    enable_semantic(config, weight="1.0")
    tune(config, startup_wait_seconds="0.2")
    embeddings.concepts = {"shipping": {"password"}}  # meaning ranks unlike the words
    embeddings.gate = asyncio.Event()  # the FAQ is still being embedded
    caplog.set_level(logging.WARNING, logger="bot.services")
    services = await asyncio.wait_for(open_services(make_settings(llm=embeddings)), 10)
    try:
        assert "still embedding the FAQ" in caplog.text
        knowledge = services.knowledge.current
        query = "i forgot my password, sigh"  # a word the FAQ lacks: meaning is asked
        lexical = [r.id for r in knowledge.search(query, 3)]
        words = await asyncio.wait_for(services.core.retrieve(knowledge, query, 3), 5)
        assert [r.id for r in words] == lexical

        embeddings.gate.set()
        assert await services.semantic.prepare(knowledge)
        meaning = await services.core.retrieve(knowledge, query, 3)
        assert [r.id for r in meaning] != lexical
    finally:
        await services.close()


async def test_a_first_start_stopped_half_way_resumes_where_it_stopped(
    embeddings, make_settings, knowledge_dirs
):
    config, faq = knowledge_dirs
    enable_semantic(config)
    tune(config, startup_wait_seconds="0")
    many_entries(faq, 600)
    settings = make_settings(llm=embeddings)
    embeddings.gate, embeddings.gate_after = asyncio.Event(), 3  # stopped in the 4th request
    services = await open_services(settings)
    await asyncio.wait_for(embeddings.holding.wait(), 10)
    await services.close()
    kept = cached_rows(settings.storage.database_path)
    assert 0 < kept < 600

    embeddings.gate.set()  # the cancelled request's handler may finish now
    embeddings.reset()
    embeddings.gate = None
    services = await open_services(settings)
    try:
        assert await services.semantic.prepare(services.knowledge.current)
    finally:
        await services.close()
    assert sum(embedded_inputs(embeddings)) == 600 - kept
    assert cached_rows(settings.storage.database_path) == 600


FUSION_FAQ = """\
faq:
  - id: shipping_time
    question: "When will my parcel arrive?"
    answer: "Parcels arrive within 2-4 working days."
    examples: ["when does my order arrive"]
  - id: refund_time
    question: "How long does a refund take?"
    answer: "Refunds are paid out within 5 working days."
    examples: ["how long until i get my money"]
  - id: password_reset
    question: "How do I reset my password?"
    answer: "Use the Forgot password link on the sign-in page."
  - id: opening_hours
    question: "What are your opening hours?"
    answer: "We are open Monday to Friday."
"""
CONCEPTS = {
    "refund": {"refund", "refunds", "reimbursement", "money"},
    "shipping": {"parcel", "parcels", "order", "delivery"},
    "time": {"when", "long", "days"},
    "account": {"password", "sign"},
    "hours": {"opening", "hours", "open"},
}
QUERY = "when will my reimbursement arrive"


def use_fusion_faq(faq: Path, embeddings: EmbeddingsDouble) -> None:
    """The FAQ whose words and meaning disagree, its meaning read by the double."""
    for path in faq.glob("*.yaml"):
        path.unlink()
    (faq / "fusion.yaml").write_text(FUSION_FAQ, encoding="utf-8")
    embeddings.concepts = CONCEPTS


@pytest.mark.parametrize("with_numpy", [True, False], ids=["numpy", "pure-python"])
@pytest.mark.parametrize(
    ("semantic", "weight", "best"),
    [
        (False, "0.5", "shipping_time"),
        (True, "0.0", "shipping_time"),
        (True, "0.7", "refund_time"),
    ],
)
async def test_strong_meaning_signal_changes_the_ranking(
    embeddings, make_settings, knowledge_dirs, semantic, weight, best, with_numpy, monkeypatch
):
    if not with_numpy:  # numpy comes only with the local extra; a plain install lacks it
        monkeypatch.setitem(sys.modules, "numpy", None)  # how Python marks it missing
    config, faq = knowledge_dirs
    if semantic:
        enable_semantic(config, weight)
    use_fusion_faq(faq, embeddings)
    services = await open_services(make_settings(llm=embeddings))
    try:
        knowledge = services.knowledge.current
        # Words alone favour the parcel entry ("when", "arrive"); meaning says refund.
        assert knowledge.search(QUERY, 3)[0].id == "shipping_time"
        results = await services.core.retrieve(knowledge, QUERY, 3)
        assert results[0].id == best
        if best == "refund_time":
            assert [r.id for r in results[:2]] == ["refund_time", "shipping_time"]
            # The direct-answer confidence is still the lexical one.
            assert results[0].confidence < services.settings.retrieval.confidence_threshold
    finally:
        await services.close()


async def start_on_fusion_faq(embeddings, fake_telegram, make_settings, start_bot, dirs) -> None:
    """The bot on the FAQ whose words and meaning disagree, meaning read by the double."""
    config, faq = dirs
    enable_semantic(config, "0.7")
    use_fusion_faq(faq, embeddings)
    await start_bot(make_settings(fake_telegram, embeddings))


async def test_the_model_sees_the_entries_found_by_meaning(
    embeddings, fake_telegram, make_settings, start_bot, knowledge_dirs
):
    await start_on_fusion_faq(embeddings, fake_telegram, make_settings, start_bot, knowledge_dirs)
    fake_telegram.user_text(4242, QUERY)
    await fake_telegram.wait_for_messages(4242, 1)
    system = embeddings.last_request["messages"][0]["content"]
    assert system.index('faq id="refund_time"') < system.index('faq id="shipping_time"')


def embedded_texts(fake: FakeLLM) -> list[str]:
    texts: list[str] = []
    for request in fake.embedding_requests:
        given = request["input"]
        texts += given if isinstance(given, list) else [given]
    return texts


async def test_a_question_the_words_answer_clearly_is_not_embedded(
    embeddings, fake_telegram, make_settings, start_bot, knowledge_dirs
):
    await start_on_fusion_faq(embeddings, fake_telegram, make_settings, start_bot, knowledge_dirs)
    clear = "How do I reset my password? Order 48213"  # a number is no unknown word
    fake_telegram.user_text(4242, clear)
    await fake_telegram.wait_for_messages(4242, 1)
    fake_telegram.user_text(4343, QUERY)
    await fake_telegram.wait_for_messages(4343, 1)
    embedded = embedded_texts(embeddings)
    assert QUERY in embedded  # a message the words leave open is read by meaning
    assert clear not in embedded
    prompt = embeddings.requests[0]["messages"][0]["content"]
    assert 'faq id="password_reset"' in prompt


async def test_vectors_no_entry_uses_are_pruned_once_old(embeddings, make_settings, knowledge_dirs):
    config, _faq = knowledge_dirs
    enable_semantic(config)
    settings = make_settings(llm=embeddings)
    services = await open_services(settings)
    entries = len(services.knowledge.current.faq.entries)
    await services.close()
    db = settings.storage.database_path
    conn = sqlite3.connect(db)
    with conn:
        # Entries still in the FAQ stay, however old their vectors are.
        conn.execute("UPDATE embedding_cache SET created_at = '2020-01-01T00:00:00.000+00:00'")
        rows = [
            ("stale-old", "2020-01-01T00:00:00.000+00:00"),  # an entry long gone
            ("stale-recent", "2999-01-01T00:00:00.000+00:00"),  # one edited away just now
        ]
        conn.executemany(
            "INSERT INTO embedding_cache (key, model, dimensions, vector, created_at)"
            " VALUES (?, 'emb-test', 1, x'00000000', ?)",
            rows,
        )
    conn.close()

    embeddings.reset()
    services = await open_services(settings)
    await services.close()
    assert embeddings.embedding_requests == []  # nothing in use was lost
    conn = sqlite3.connect(db)
    kept = {
        row[0] for row in conn.execute("SELECT key FROM embedding_cache WHERE model = 'emb-test'")
    }
    conn.close()
    assert "stale-old" not in kept
    assert "stale-recent" in kept
    assert len(kept) == entries + 1


async def test_a_follow_up_is_read_by_meaning_however_clear_its_words(
    embeddings, make_settings, knowledge_dirs
):
    config, faq = knowledge_dirs
    enable_semantic(config, "0.7")
    use_fusion_faq(faq, embeddings)
    services = await open_services(make_settings(llm=embeddings))
    try:
        knowledge = services.knowledge.current
        clear = "How do I reset my password?"
        await services.core.retrieve(knowledge, clear, 3)
        assert clear not in embedded_texts(embeddings)
        # Read alone too, beside the question before: neither reading skips the model.
        await services.core.retrieve(knowledge, clear, 3, previous="What are your opening hours?")
        requests = [r["input"] for r in embeddings.embedding_requests]
        assert [clear] in requests
    finally:
        await services.close()
