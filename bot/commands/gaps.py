"""``python main.py gaps [--json] [--days N] [--draft PATH]``: what the FAQ could not answer.

A thin door to ``bot.gaps``: it opens the same services the bot runs with (so
the closest FAQ entry is found by the bot's own search), prints the groups, and
with ``--draft`` writes suggested entries and their eval cases to files an admin
reviews. It never writes into the FAQ directory.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.gaps import GapGroup, condense_drafts, draft_eval_yaml, draft_faq_yaml, find_gaps
from bot.knowledge.sentence_model import unavailable_reason
from bot.services import open_services
from bot.settings import Settings

SHOWN_MESSAGES = 3


async def run(args: argparse.Namespace, settings: Settings) -> int:
    draft_path = Path(args.draft) if args.draft else None
    if draft_path is not None:
        problem = _draft_problem(draft_path, Path(settings.env.faq_dir))
        if problem:
            print(f"{args.draft}: {problem}", file=sys.stderr)
            return 1
    services = await open_services(settings)
    try:
        groups = await find_gaps(services, days=args.days)
        groups = await condense_drafts(services, groups)
    finally:
        await services.close()
    reason = unavailable_reason()
    if reason:
        print(f"grouping by shared words only: {reason}", file=sys.stderr)
    if args.json:
        for group in groups:
            print(json.dumps(group.to_json(), ensure_ascii=False))
    else:
        _print_listing(groups, args.days, settings.retrieval.confidence_threshold)
    if draft_path is not None:
        cases_path = eval_path_for(draft_path)
        draft_path.parent.mkdir(parents=True, exist_ok=True)
        draft_path.write_text(draft_faq_yaml(groups), encoding="utf-8")
        cases_path.write_text(draft_eval_yaml(groups), encoding="utf-8")
        print(f"drafts written to {draft_path}, eval cases to {cases_path}", file=sys.stderr)
    return 0


def eval_path_for(draft_path: Path) -> Path:
    """The eval cases go beside the drafts, named so they are not taken for FAQ files
    if the whole folder is copied: ``drafts.yaml`` -> ``drafts.cases.yml``."""
    return draft_path.with_name(draft_path.stem + ".cases.yml")


def _draft_problem(path: Path, faq_dir: Path) -> str | None:
    if path.exists() and path.is_dir():
        return "is a directory; give a file name such as drafts.yaml"
    try:
        inside_faq = path.resolve().parent == faq_dir.resolve()
    except OSError:
        inside_faq = False
    if inside_faq:
        return "is inside the FAQ directory; drafts are written elsewhere and moved by hand"
    return None


def _print_listing(groups: list[GapGroup], days: float | None, threshold: float) -> None:
    period = f"in the last {days:g} days" if days is not None else "so far"
    if not groups:
        print(f"No unanswered questions {period}.")
        return
    print(
        f"{len(groups)} groups of questions the FAQ could not answer {period}, most customers first:"
    )
    for number, group in enumerate(groups, 1):
        print()
        languages = ", ".join(group.languages) or "language unknown"
        reasons = ", ".join(f"{r} {n}" for r, n in group.reasons.items())
        print(
            f"{number}. {_count(group.customers, 'customer')}, {_count(group.size, 'message')} · "
            f"{languages} · "
            f"last {group.last_seen[:16].replace('T', ' ')} UTC · {reasons}"
        )
        for message in group.messages[:SHOWN_MESSAGES]:
            language = f" [{message.language}]" if message.language else ""
            print(f"   “{_one_line(message.text)}”{language}")
        if group.size > SHOWN_MESSAGES:
            print(f"   … and {group.size - SHOWN_MESSAGES} more")
        if group.closest_faq:
            score = group.closest_faq["score"]
            verdict = (
                "the bot would answer from it now"
                if score >= threshold
                else f"below the {threshold:g} the bot answers from"
            )
            print(f"   closest FAQ entry: {group.closest_faq['id']} (score {score:.2f}, {verdict})")
        else:
            print("   closest FAQ entry: none")
        if group.staff_answers:
            print(f"   staff answered: “{_one_line(group.staff_answers[0], 160)}”")
            if len(group.staff_answers) > 1:
                print(f"   … and {len(group.staff_answers) - 1} more staff replies")
        else:
            print("   staff answered: not yet")
        print(f"   draft entry: {group.draft['id']}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _one_line(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
