"""The documented defaults are the code's defaults.

docs/admins.md shows every field of bot.yaml with its default; a default changed in
``bot/settings.py`` (or a new field) must change there too, and this test says where.
"""

from __future__ import annotations

import dataclasses
import re

import yaml

from bot.settings import Settings
from tests.helpers import REPO

# Shown as examples in the docs, not as the defaults (which are empty).
EXAMPLES = {"escalation.rules"}


def documented_settings() -> dict:
    text = (REPO / "docs" / "admins.md").read_text(encoding="utf-8")
    section = text.split("## `config/bot.yaml`", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, "docs/admins.md lost its bot.yaml example"
    return yaml.safe_load(block.group(1))


def defaults(value) -> object:
    if dataclasses.is_dataclass(value):
        return {f.name: defaults(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [defaults(v) for v in value]
    return value


def test_every_documented_default_is_the_codes() -> None:
    code = defaults(Settings())
    code.pop("env")
    docs = documented_settings()
    assert sorted(docs) == sorted(code), "sections differ"
    for section, fields in code.items():
        assert sorted(docs[section]) == sorted(fields), f"fields of {section} differ"
        for name, value in fields.items():
            if f"{section}.{name}" not in EXAMPLES:
                assert docs[section][name] == value, f"{section}.{name} in docs/admins.md"


def test_the_shipped_bot_yaml_holds_the_defaults() -> None:
    shipped = yaml.safe_load((REPO / "config" / "bot.yaml").read_text(encoding="utf-8"))
    code = defaults(Settings())
    for section, fields in shipped.items():
        for name, value in fields.items():
            if f"{section}.{name}" not in EXAMPLES:
                assert value == code[section][name], f"{section}.{name} in config/bot.yaml"
