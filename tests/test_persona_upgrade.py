"""Texts once in code now live in the persona; an older persona.yaml still loads.

Keys added since persona.yaml first shipped fall back to the texts in
bot/knowledge/added_texts.yaml, which must say what the shipped persona says.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from bot.config_check import check
from bot.knowledge.loader import load_persona
from bot.knowledge.persona_loader import added_texts

REPO = Path(__file__).resolve().parent.parent


def without_added_keys(persona_yaml: Path) -> None:
    """Rewrite a persona.yaml the way it looked before the added keys (and the optional
    sections, commands and translations) existed."""
    added = added_texts()
    kept: list[str] = []
    section = ""
    for line in persona_yaml.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith((" ", "#")):
            section = line.split(":", 1)[0]
        key = line.strip().split(":", 1)[0]
        top_key = line.startswith("  ") and not line.startswith("   ")
        if section in ("commands", "translations") or (top_key and key in added.get(section, {})):
            continue
        kept.append(line)
    persona_yaml.write_text("\n".join(kept) + "\n", encoding="utf-8")


def test_the_fallback_texts_are_the_shipped_ones():
    shipped = yaml.safe_load((REPO / "config" / "persona.yaml").read_text(encoding="utf-8"))
    for section, texts in added_texts().items():
        for key, text in texts.items():
            assert shipped[section][key] == text, f"{section}.{key}"


def test_an_older_persona_loads_with_the_shipped_texts(knowledge_dirs):
    config, faq = knowledge_dirs
    without_added_keys(config / "persona.yaml")
    text = (config / "persona.yaml").read_text(encoding="utf-8")
    assert "commands:" not in text and "reload_done" not in text and "faq_choices" not in text
    assert check(config, faq, {}) == []
    persona = load_persona(config / "persona.yaml")
    assert persona.commands["human"] == "Talk to a person"
    assert persona.message("faq_choices").startswith("I'm not sure I understood.")
    assert persona.staff_message("reload_done", version="v1", entries=3) == (
        "✅ Knowledge version v1: 3 FAQ entries."
    )


def test_mistakes_in_commands_are_reported_with_file_and_line(knowledge_dirs):
    config, faq = knowledge_dirs
    path = config / "persona.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace('  human: "Talk to a person"', '  humans: "Talk to a person"')
    text = text.replace('  help: "What I can do"', '  help: "What {name} can do"')
    path.write_text(text, encoding="utf-8")
    lines = text.splitlines()
    problems = [str(p) for p in check(config, faq, {})]
    typo = lines.index('  humans: "Talk to a person"') + 1
    braces = lines.index('  help: "What {name} can do"') + 1
    assert any(p.startswith(f"{path}:{typo}: commands: unknown key 'humans'") for p in problems)
    assert any(
        f"{path}:{braces}: commands.help: unknown placeholder {{name}}" in p for p in problems
    )


async def test_the_command_menu_is_the_personas(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    path = knowledge_dirs[0] / "persona.yaml"
    text = path.read_text(encoding="utf-8")
    menu = text.replace('  human: "Talk to a person"', '  human: "Mit einem Menschen sprechen"')
    path.write_text(menu, encoding="utf-8")
    await start_bot(make_settings(fake_telegram))
    # The menu for every app language the persona has no translated menu for.
    [call] = [c for c in fake_telegram.calls("setMyCommands") if not c.params.get("language_code")]
    commands = call.params["commands"]
    if isinstance(commands, str):
        commands = json.loads(commands)
    assert [(c["command"], c["description"]) for c in commands] == [
        ("start", "Start"),
        ("help", "What I can do"),
        ("human", "Mit einem Menschen sprechen"),
        ("reset", "Start a new conversation"),
        ("cancel", "Withdraw my request to a person"),
    ]
