"""``check`` and ``faq search``: what admins run before their edits go live."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from bot.config_check import check as check_files
from bot.environment import warnings
from bot.knowledge.faq import FaqSet, SearchResult
from bot.knowledge.live import faq_knowledge
from bot.knowledge.loader import faq_paths, load_faq
from bot.knowledge.search import FaqIndex
from bot.services import semantic_search, words_only_reason
from bot.settings import Settings
from bot.settings_loader import load_settings
from bot.store.db import Database


def _dirs() -> tuple[Path, Path]:
    return Path(os.environ.get("CONFIG_DIR") or "config"), Path(os.environ.get("FAQ_DIR") or "faq")


def check() -> int:
    config_dir, faq_dir = _dirs()
    problems = check_files(config_dir, faq_dir, os.environ)
    for problem in problems + warnings(os.environ):
        print(problem)
    if problems:
        return 1
    print(f"OK: {config_dir}/ and {faq_dir}/ are valid", file=sys.stderr)
    reason = words_only_reason(load_settings(config_dir, os.environ))
    if reason:
        # Not a problem in the files: the bot runs, matching by words alone.
        print(f"warning: FAQ entries will be matched by words only: {reason}", file=sys.stderr)
    return 0


async def faq_search(args: argparse.Namespace) -> int:
    """What the bot would match: by meaning too when ``retrieval.semantic`` is on."""
    config_dir, faq_dir = _dirs()
    settings = load_settings(config_dir, os.environ)
    paths = [Path(p) for p in args.faq] if args.faq else faq_paths(faq_dir)
    faq = load_faq(paths)
    top_k = args.top_k or settings.retrieval.top_k
    queries = [args.query] if args.query is not None else (line.strip() for line in sys.stdin)
    queries = (q for q in queries if q)
    threshold = settings.retrieval.confidence_threshold
    if settings.retrieval.semantic:
        return await _search_by_meaning(settings, faq, queries, top_k, args.json)
    index = FaqIndex(faq.entries)
    for query in queries:
        _show(query, index.search(query, top_k), args.json, threshold)
    return 0


async def _search_by_meaning(
    settings: Settings, faq: FaqSet, queries: Iterable[str], top_k: int, as_json: bool
) -> int:
    # The bot's own database holds the entry vectors, so a search embeds only the
    # entries it has not seen, exactly as the bot would.
    db = await Database(settings.storage.database_path).open()
    semantic = await semantic_search(settings, db)
    try:
        if semantic is None:
            print(f"matching by words only: {words_only_reason(settings)}", file=sys.stderr)
        knowledge = faq_knowledge(faq)
        for query in queries:
            if semantic is None:
                results = knowledge.search(query, top_k)
            else:
                results = await semantic.search(knowledge, query, top_k)
            _show(query, results, as_json, settings.retrieval.confidence_threshold)
    finally:
        if semantic is not None:
            await semantic.aclose()
        await db.close()
    return 0


def _show(query: str, results: list[SearchResult], as_json: bool, threshold: float) -> None:
    """The matches, and what the bot would do without a model: answer from the best
    entry when its confidence reaches ``retrieval.confidence_threshold``, else hand over."""
    answers = bool(results) and results[0].confidence >= threshold
    if as_json:
        record = {
            "query": query,
            "results": [
                {"id": r.id, "score": round(r.score, 4), "confidence": round(r.confidence, 4)}
                for r in results
            ],
            "threshold": threshold,
            "would_answer": answers,
        }
        print(json.dumps(record, ensure_ascii=False), flush=True)
        return
    print(f"Query: {query}")
    if not results:
        print("  (no match: the bot hands over)\n")
        return
    width = max((len(r.id) for r in results), default=2)
    print(
        f"  {'#':<2} {'id':<{width}}  {'score':>7}  {'conf':>5}  {'bot (≥ ' + _floor3(threshold) + ')':<17}"
        "  question"
    )
    for rank, r in enumerate(results, start=1):
        question = r.entry.question.replace("\n", " ")
        if len(question) > 70:
            question = question[:69] + "…"
        verdict = ("answers" if answers else "hands over") if rank == 1 else ""
        print(
            f"  {rank:<2} {r.id:<{width}}  {r.score:>7.3f}  {_floor3(r.confidence):>5}  "
            f"{verdict:<17}  {question}"
        )
    print()


def _floor3(value: float) -> str:
    """Three decimals, cut rather than rounded: 0.8299 must not show as 0.830 beside a
    threshold of 0.830 that it misses."""
    return f"{math.floor(value * 1000 + 1e-9) / 1000:.3f}"
