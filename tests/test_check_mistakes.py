"""``python main.py check`` catches the mistakes that would break the bot only later.

Each runs ``main.py check`` as a separate process on copies of the shipped files, the way
an admin runs it before a restart.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers import run_main


def check(knowledge_dirs, tmp_path: Path, **env: str):
    return run_main(knowledge_dirs, tmp_path / "bot.sqlite3", "check", **env)


def line_of(path: Path, text: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, start=1) if text in line)


def test_the_shipped_files_pass(knowledge_dirs, tmp_path):
    done = check(knowledge_dirs, tmp_path, STAFF_CHAT_ID="-1001234567890")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


def test_a_positive_staff_chat_id_is_a_problem(knowledge_dirs, tmp_path):
    done = check(knowledge_dirs, tmp_path, STAFF_CHAT_ID="12345")
    assert done.returncode == 1
    assert "environment: STAFF_CHAT_ID: 12345 is positive" in done.stdout
    assert "-10012345" in done.stdout, "the fix is shown"


def test_a_positive_staff_chat_id_in_bot_yaml_too(knowledge_dirs, tmp_path):
    bot_yaml = knowledge_dirs[0] / "bot.yaml"
    text = bot_yaml.read_text(encoding="utf-8").replace(
        "staff_chat_id: null", "staff_chat_id: 12345"
    )
    bot_yaml.write_text(text, encoding="utf-8")
    done = check(knowledge_dirs, tmp_path)
    line = line_of(bot_yaml, "staff_chat_id: 12345")
    assert done.returncode == 1
    assert f"{bot_yaml}:{line}: telegram.staff_chat_id: is positive" in done.stdout


def test_an_unknown_placeholder_is_reported_at_its_line(knowledge_dirs, tmp_path):
    persona = knowledge_dirs[0] / "persona.yaml"
    text = persona.read_text(encoding="utf-8").replace("Hi {first_name}!", "Hi {first_nam}!")
    persona.write_text(text, encoding="utf-8")
    done = check(knowledge_dirs, tmp_path)
    assert done.returncode == 1
    line = line_of(persona, "Hi {first_nam}!")
    assert done.stdout.splitlines() == [
        f"{persona}:{line}: messages.start: unknown placeholder {{first_nam}}; the customer "
        "would see it as written. Allowed here: {name} {company} {office_hours} {first_name}; "
        "write {{ and }} for literal braces"
    ]


def test_an_unknown_placeholder_in_a_staff_text(knowledge_dirs, tmp_path):
    persona = knowledge_dirs[0] / "persona.yaml"
    text = persona.read_text(encoding="utf-8").replace(
        'closed: "✅ Ticket #{ticket_id} closed by {agent}."',
        'closed: "✅ Ticket #{ticket} closed by {agent}."',
    )
    persona.write_text(text, encoding="utf-8")
    done = check(knowledge_dirs, tmp_path)
    line = line_of(persona, "Ticket #{ticket} closed")
    assert done.returncode == 1
    assert done.stdout.startswith(
        f"{persona}:{line}: staff_messages.closed: unknown placeholder {{ticket}}"
    )
    assert "Allowed here: {ticket_id} {agent};" in done.stdout


def test_a_reason_without_a_name(knowledge_dirs, tmp_path):
    persona = knowledge_dirs[0] / "persona.yaml"
    text = persona.read_text(encoding="utf-8").replace('  llm_error: "Assistant failed"\n', "")
    persona.write_text(text, encoding="utf-8")
    done = check(knowledge_dirs, tmp_path)
    assert done.returncode == 1
    assert "reasons: missing llm_error" in done.stdout


def test_an_unclosed_quote_is_reported_where_it_opens(knowledge_dirs, tmp_path):
    persona = knowledge_dirs[0] / "persona.yaml"
    text = persona.read_text(encoding="utf-8")
    opened = '  reset: "Done, we\'re starting fresh. What can I help you with?"'
    assert opened in text
    text = text.replace(opened, "  reset: \"Done, we're starting fresh. What can I help you with?")
    persona.write_text(text, encoding="utf-8")
    done = check(knowledge_dirs, tmp_path)
    assert done.returncode == 1
    line = line_of(persona, "  reset: ")
    assert done.stdout.startswith(f"{persona}:{line}: unclosed quote"), done.stdout


def test_llm_base_url_without_v1_is_only_a_warning(knowledge_dirs, tmp_path):
    done = check(knowledge_dirs, tmp_path, LLM_BASE_URL="http://localhost:8000")
    assert done.returncode == 0, done.stdout
    assert "warning: LLM_BASE_URL" in done.stdout and "http://localhost:8000/v1" in done.stdout
    fine = check(knowledge_dirs, tmp_path, LLM_BASE_URL="http://localhost:8000/v1/")
    assert fine.returncode == 0 and "warning" not in fine.stdout
