"""``python main.py check``: every configuration problem at once, sorted by file and line.

Settings, persona, FAQ and environment are each read by their own module; this
one only gathers what they found, so an admin fixes everything in one pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bot.environment import parse_environment
from bot.errors import Problem
from bot.knowledge.loader import PERSONA_FILE, faq_paths, faq_problems, persona_problems
from bot.settings_loader import read_settings


def check(config_dir: Path, faq_dir: Path, environ: Mapping[str, str]) -> list[Problem]:
    problems: list[Problem] = []
    problems += read_settings(config_dir)[1]
    problems += persona_problems(config_dir / PERSONA_FILE)
    paths = faq_paths(faq_dir)
    if paths:
        problems += faq_problems(paths)
    elif not faq_dir.is_dir():
        problems.append(Problem(str(faq_dir), None, "FAQ folder not found"))
    else:
        problems.append(Problem(str(faq_dir), None, "no FAQ files (*.yaml) in this folder"))
    problems += parse_environment(environ)[1]
    return sorted(problems, key=lambda p: (p.path, p.line or 0))
