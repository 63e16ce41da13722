"""The doctor's checklist: one finding per line, how it is printed, and secrets kept out.

Servers echo what they were sent (a rejected key in a 401, the webhook URL with a token
in its path), so every line is masked on its way out instead of trusting each check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

OK, WARNING, PROBLEM, SKIPPED = "ok", "warning", "problem", "skipped"
MASK = "***"
# Shorter values are placeholders ("x", "none") that local servers accept, not secrets;
# masking them would garble every word that contains them.
MIN_SECRET_LENGTH = 4

_URL_PASSWORD = re.compile(r"(?P<head>://[^/\s:@]+):[^@\s/]+@")
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&](?:api[-_]?key|key|token|secret|password|access_token|sig)=)[^&\s#]+",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Finding:
    status: str
    subject: str
    detail: str
    fix: str | None = None


def ok(subject: str, detail: str) -> Finding:
    return Finding(OK, subject, detail)


def warning(subject: str, detail: str, fix: str | None = None) -> Finding:
    return Finding(WARNING, subject, detail, fix)


def problem(subject: str, detail: str, fix: str | None = None) -> Finding:
    return Finding(PROBLEM, subject, detail, fix)


def skipped(subject: str, detail: str) -> Finding:
    return Finding(SKIPPED, subject, detail)


class Masker:
    """Replaces every secret (and its URL-encoded forms) with ``***`` in a text."""

    def __init__(self, secrets: Iterable[str | None]):
        variants: set[str] = set()
        for secret in secrets:
            if not secret or len(secret) < MIN_SECRET_LENGTH:
                continue
            variants.update({secret, quote(secret, safe=""), quote(secret)})
            # A bot token is "<bot id>:<secret>"; the part after the colon is the secret.
            head, _, tail = secret.partition(":")
            if head.isdigit() and len(tail) >= MIN_SECRET_LENGTH:
                variants.add(tail)
        self._variants = sorted(variants, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for variant in self._variants:
            text = text.replace(variant, MASK)
        text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
        return _SECRET_QUERY.sub(lambda m: f"{m['name']}{MASK}", text)


_LABEL_WIDTH = 9


def render(sections: list[tuple[str, list[Finding]]], mask: Masker) -> str:
    """The checklist as printed: a heading per section, then ``status  subject: detail``."""
    lines: list[str] = []
    for heading, findings in sections:
        lines.append(heading)
        for finding in findings:
            label = f"{finding.status:<{_LABEL_WIDTH}}"
            lines.append(f"  {label}{finding.subject}: {finding.detail}")
            if finding.fix:
                lines.append(f"  {'':<{_LABEL_WIDTH}}fix: {finding.fix}")
        lines.append("")
    lines.append(summary([f for _, findings in sections for f in findings]))
    return mask("\n".join(lines))


def summary(findings: list[Finding]) -> str:
    problems = sum(f.status == PROBLEM for f in findings)
    warnings = sum(f.status == WARNING for f in findings)
    if not problems and not warnings:
        return "All checks passed."
    counts = [_plural(problems, "problem"), _plural(warnings, "warning")]
    text = ", ".join(c for c in counts if c)
    if problems:
        return f"{text}: fix the problems above, then run `python main.py doctor` again."
    return f"{text}; no problems."


def _plural(count: int, word: str) -> str:
    if not count:
        return ""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def has_problem(sections: list[tuple[str, list[Finding]]]) -> bool:
    return any(f.status == PROBLEM for _, findings in sections for f in findings)
