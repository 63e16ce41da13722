"""``check`` and ``faq search``: what admins run before their edits go live."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bot.knowledge.loader import check as check_files
from bot.knowledge.loader import faq_paths, load_faq, load_settings
from bot.knowledge.search import FaqIndex


def _dirs() -> tuple[Path, Path]:
    return Path(os.environ.get("CONFIG_DIR") or "config"), Path(os.environ.get("FAQ_DIR") or "faq")


def check() -> int:
    config_dir, faq_dir = _dirs()
    problems = check_files(config_dir, faq_dir, os.environ)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"OK: {config_dir}/ and {faq_dir}/ are valid", file=sys.stderr)
    return 0


def faq_search(args: argparse.Namespace) -> int:
    config_dir, faq_dir = _dirs()
    paths = [Path(p) for p in args.faq] if args.faq else faq_paths(faq_dir)
    faq = load_faq(paths)
    top_k = args.top_k or load_settings(config_dir, os.environ).retrieval.top_k
    index = FaqIndex(faq.entries)
    queries = [args.query] if args.query is not None else (line.strip() for line in sys.stdin)
    for query in queries:
        if not query:
            continue
        results = index.search(query, top_k)
        if args.json:
            record = {
                "query": query,
                "results": [
                    {"id": r.id, "score": round(r.score, 4), "confidence": round(r.confidence, 4)}
                    for r in results
                ],
            }
            print(json.dumps(record, ensure_ascii=False), flush=True)
            continue
        print(f"Query: {query}")
        if not results:
            print("  (no match)")
        width = max((len(r.id) for r in results), default=2)
        print(f"  {'#':<2} {'id':<{width}}  {'score':>7}  {'conf':>5}  question")
        for rank, r in enumerate(results, start=1):
            question = r.entry.question.replace("\n", " ")
            if len(question) > 70:
                question = question[:69] + "…"
            print(f"  {rank:<2} {r.id:<{width}}  {r.score:>7.3f}  {r.confidence:>5.2f}  {question}")
        print()
    return 0
