"""``python main.py eval CASES.yaml [--llm]``: regression cases for the persona and FAQ.

An FAQ edit that fixes one question can quietly break three others. Admins
keep a file of customer messages with what should happen to each, and run
it after every edit: the cases go through the real ``SupportCore`` (the same
retrieval, escalation rules and answer path customers get), on a throw-away
database so that the production history, tickets and statistics are never
touched. Without ``--llm`` the chat model is left out and the bot answers
from the FAQ alone, so the run is free, offline and repeatable.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core import Incoming, Outcome
from bot.errors import ConfigError
from bot.knowledge.faq import SearchResult
from bot.knowledge.live import Knowledge
from bot.knowledge.schema import INVALID, Report, Rules, build, convert
from bot.knowledge.yaml_source import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    describe,
    read_yaml,
)
from bot.services import Services, open_services
from bot.settings import Settings
from bot.store.conversations import Customer

# Each case talks as its own customer, so no case sees another's history,
# repeat counter or rate limit. Far from real Telegram ids, which are positive.
_FIRST_CHAT_ID = -9_000_000_000
_MESSAGE_WIDTH = 38


@dataclass(frozen=True)
class Case:
    message: str
    expect_faq: str | None = None
    top_k: int = 3
    expect_handoff: bool | None = None
    answer_contains: tuple[str, ...] = ()
    answer_not_contains: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class CasesFile:
    cases: tuple[Case, ...]


def _phrases(node: Node, name: str, report: Report) -> Any:
    """A single phrase is as clear as a list of one, so admins may write either."""
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:str":
        return convert(tuple[str, ...], _as_list(node), name, report, _RULES)
    return convert(tuple[str, ...], node, name, report, _RULES)


def _as_list(node: ScalarNode) -> Node:
    return SequenceNode("tag:yaml.org,2002:seq", [node], node.start_mark, node.end_mark)


def _check_value(cls: type, name: str, value: Any) -> str | None:
    if cls is Case and name == "top_k" and not 1 <= value <= 50:
        return f"must be between 1 and 50, got {value}"
    return None


_RULES = Rules(
    hidden={Case: frozenset({"line"})},
    hooks={(Case, "answer_contains"): _phrases, (Case, "answer_not_contains"): _phrases},
    check=_check_value,
)


def load_cases(path: Path, knowledge: Knowledge | None = None) -> list[Case]:
    """Read and validate a cases file; raises ConfigError listing every problem.

    With ``knowledge``, ``expect_faq`` ids are checked against it too: a typo
    in an id would otherwise show up as a failing case and send the admin
    looking for a retrieval problem that is not there.
    """
    root, problems = read_yaml(path)
    if problems:
        raise ConfigError(problems)
    report = Report(str(path))
    if root is None:
        report.add(1, "the file is empty; expected a 'cases:' list")
        raise ConfigError(report.problems)
    if not isinstance(root, MappingNode):
        report.add(root, f"expected a mapping with a 'cases:' list, got {describe(root)}")
        raise ConfigError(report.problems)
    parsed = build(CasesFile, root, report, _RULES)
    if parsed is INVALID:
        raise ConfigError(report.problems)
    nodes = _case_nodes(root)
    cases = []
    for index, case in enumerate(parsed.cases):
        node = nodes[index] if index < len(nodes) else None
        line = node.start_mark.line + 1 if node is not None else None
        name = f"cases[{index}]"
        if (
            case.expect_faq is None
            and case.expect_handoff is None
            and not (case.answer_contains or case.answer_not_contains)
        ):
            report.add(
                line,
                f"{name}: checks nothing; add expect_faq, expect_handoff, "
                "answer_contains or answer_not_contains",
            )
        if not case.message.strip():
            report.add(line, f"{name}.message: is empty")
        if (
            knowledge is not None
            and case.expect_faq is not None
            and knowledge.faq.by_id(case.expect_faq) is None
        ):
            report.add(line, f"{name}.expect_faq: no FAQ entry has the id '{case.expect_faq}'")
        cases.append(dataclasses.replace(case, line=line or 0))
    if not cases:
        report.add(root, "cases: the list is empty")
    if report.problems:
        raise ConfigError(report.problems)
    return cases


def _case_nodes(root: Node) -> list[Node]:
    for key_node, value_node in root.value:
        if getattr(key_node, "value", None) == "cases" and isinstance(value_node.value, list):
            return list(value_node.value)
    return []


@dataclass
class CaseResult:
    number: int
    case: Case
    matches: list[SearchResult]
    handed_off: bool
    answer: str
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


async def run(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.cases)
    env = settings.env
    if args.llm and not env.llm_configured:
        print("--llm: no LLM configured; set LLM_BASE_URL or LLM_API_KEY", flush=True)
        return 1
    with tempfile.TemporaryDirectory(prefix="bot-eval-") as scratch:
        settings = _scratch_settings(settings, Path(scratch) / "eval.sqlite3")
        # Without --llm, retrieval stays as configured (meaning-based matching may
        # still use the provider's embeddings); only the chat model is left out.
        services = await open_services(settings, chat_model=args.llm, wait_for_vectors=True)
        try:
            try:
                cases = load_cases(path, services.knowledge.current)
            except ConfigError as error:
                for problem in error.problems:
                    print(problem, flush=True)
                return 1
            results = [
                await _run_case(services, number, case)
                for number, case in enumerate(cases, start=1)
            ]
        finally:
            await services.close()
    mode = f"model {settings.llm.model}" if args.llm else "FAQ-only"
    knowledge = services.knowledge.current
    print(f"{path}: {len(results)} cases, {mode}, knowledge version {knowledge.version}")
    _print_table(results)
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _scratch_settings(settings: Settings, database: Path) -> Settings:
    """The same settings on a database of its own; the production file is never opened."""
    storage = dataclasses.replace(settings.storage, database_path=str(database))
    # Rate limits protect the service from a customer; here every case is its own
    # customer, but a long file must not trip the limit on a shared setting.
    conversation = dataclasses.replace(settings.conversation, rate_limit_per_minute=0)
    return dataclasses.replace(settings, storage=storage, conversation=conversation)


async def _run_case(services: Services, number: int, case: Case) -> CaseResult:
    core = services.core
    knowledge = services.knowledge.current
    chat_id = _FIRST_CHAT_ID - number
    customer = Customer(chat_id=chat_id, user_id=chat_id, first_name="Eval")
    matches = await core.retrieve(knowledge, case.message, case.top_k)
    outcome: Outcome = await core.handle(Incoming(customer, case.message))
    handed_off = outcome.path == "handoff" or outcome.ticket is not None
    answer = "\n".join(reply.text for reply in outcome.replies)
    failures = []
    if case.expect_faq is not None:
        ids = [m.id for m in matches]
        if case.expect_faq not in ids:
            failures.append(f"{case.expect_faq} not in top {case.top_k}")
    if case.expect_handoff is not None and handed_off != case.expect_handoff:
        if handed_off:
            reason = outcome.ticket.reason if outcome.ticket is not None else outcome.path
            failures.append(f"handed off ({reason})")
        else:
            failures.append(f"answered ({outcome.path}) instead of handing off")
    folded = answer.casefold()
    for phrase in case.answer_contains:
        if phrase.casefold() not in folded:
            failures.append(f"answer lacks {phrase!r}")
    for phrase in case.answer_not_contains:
        if phrase.casefold() in folded:
            failures.append(f"answer contains {phrase!r}")
    return CaseResult(number, case, matches, handed_off, answer, failures)


def _expected(case: Case) -> str:
    parts = []
    if case.expect_faq is not None:
        parts.append(f"{case.expect_faq}@{case.top_k}")
    if case.expect_handoff is not None:
        parts.append("handoff" if case.expect_handoff else "answer")
    if case.answer_contains or case.answer_not_contains:
        parts.append("text")
    return " ".join(parts)


def _got(result: CaseResult) -> str:
    best = result.matches[0].id if result.matches else "-"
    if result.case.expect_faq is not None and result.case.expect_faq in [
        m.id for m in result.matches
    ]:
        rank = [m.id for m in result.matches].index(result.case.expect_faq) + 1
        best = f"{result.case.expect_faq}#{rank}"
    return f"{best} {'handoff' if result.handed_off else 'answer'}"


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_table(results: list[CaseResult]) -> None:
    rows = [
        (
            str(r.number),
            _shorten(r.case.message, _MESSAGE_WIDTH),
            _expected(r.case),
            _got(r),
            "PASS" if r.passed else "FAIL",
            "; ".join(r.failures),
        )
        for r in results
    ]
    header = ("#", "message", "expected", "got", "result", "why")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
        print("  ".join([*cells, row[5]]).rstrip())
