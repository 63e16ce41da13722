"""``python main.py chat``: the terminal door to the same core, run as a separate process.

Messages are piped in one per line, as in ``echo "..." | python main.py chat``; the
process is configured only through the environment and writes to a scratch database.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import cli_environment, rows, tune

# Bots started as processes find the shipped FAQ's vectors already made.
pytestmark = pytest.mark.usefixtures("warm_vector_cache")

REPO = Path(__file__).resolve().parent.parent


def environment(tmp_path: Path, knowledge_dirs, **extra: str) -> dict[str, str]:
    return cli_environment(knowledge_dirs, tmp_path / "console.sqlite3", **extra)


async def chat(env: dict[str, str], *lines: str, args: tuple[str, ...] = ("chat",)):
    """Run the console with `lines` on stdin; returns (exit code, stdout, stderr).

    Run without blocking the event loop, so the LLM double in this process can answer.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "main.py",
        *args,
        cwd=REPO,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdin = "".join(f"{line}\n" for line in lines).encode()
    out, err = await asyncio.wait_for(process.communicate(stdin), 60)
    return process.returncode, out.decode("utf-8"), err.decode("utf-8")


def persona(config: Path) -> dict:
    return yaml.safe_load((config / "persona.yaml").read_text(encoding="utf-8"))


def faq_entry(faq: Path, entry_id: str) -> dict:
    for path in sorted(faq.glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8"))["faq"]:
            if entry["id"] == entry_id:
                return entry
    raise KeyError(entry_id)


def tickets(db: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM tickets ORDER BY id").fetchall()
    finally:
        conn.close()


async def test_faq_answer_reset_and_human_in_the_terminal(tmp_path, knowledge_dirs):
    config, faq = knowledge_dirs
    name = persona(config)["name"]
    entry = faq_entry(faq, "how_to_return")
    code, out, err = await chat(
        environment(tmp_path, knowledge_dirs),
        entry["question"],
        "",
        "/reset",
        "/human",
        args=("chat", "--db", str(tmp_path / "console.sqlite3")),
    )
    assert code == 0, err
    assert "Traceback" not in err
    assert f"{name}: {entry['answer'].strip()}\n" in out
    reset = persona(config)["messages"]["reset"]
    assert f"{name}: {reset}\n" in out
    opened = re.search(r"\(ticket #(\d+), user_request\)", out)
    assert opened, out
    stored = tickets(tmp_path / "console.sqlite3")
    assert [(t["id"], t["reason"], t["status"]) for t in stored] == [
        (int(opened.group(1)), "user_request", "open")
    ]
    # No staff chat behind a terminal: the customer is told how else to reach the team.
    told = persona(config)["messages"]["handoff_unavailable"].format(
        ticket_id=opened.group(1), office_hours=persona(config)["office_hours"]
    )
    assert f"{name}: {told.strip()}\n" in out


async def test_unsure_in_faq_only_mode_the_terminal_offers_entries_to_type(
    tmp_path, knowledge_dirs
):
    config, faq = knowledge_dirs
    code, out, err = await chat(
        environment(tmp_path, knowledge_dirs), "Which glaze suits a volcanic teapot best?", "1"
    )
    assert code == 0, err
    assert persona(config)["messages"]["faq_choices"] in out
    first = re.search(r"^   1\. (.+)$", out, re.MULTILINE)
    assert first is not None, out
    offered = len(re.findall(r"^   \d\. ", out, re.MULTILINE))
    numbers = "1" if offered == 1 else f"1 to {offered}"
    assert f"(type {numbers} for its answer, or /human)" in out
    entries = [e for p in sorted(faq.glob("*.yaml")) for e in yaml.safe_load(p.read_text())["faq"]]
    picked = next(e for e in entries if e["question"] == first.group(1))
    assert picked["answer"].strip() in out
    assert "ticket #" not in out


async def test_unknown_question_in_faq_only_mode_opens_a_ticket(tmp_path, knowledge_dirs):
    config, _ = knowledge_dirs
    tune(config, choices="0")
    code, out, err = await chat(
        environment(tmp_path, knowledge_dirs), "Which glaze suits a volcanic teapot best?"
    )
    assert code == 0, err
    no_answer = persona(config)["messages"]["no_answer_unavailable"].strip()
    assert no_answer in out
    assert re.search(r"\(ticket #\d+, low_confidence\)", out), out


async def test_terminal_uses_the_model_and_reset_clears_its_history(
    tmp_path, knowledge_dirs, fake_llm
):
    env = environment(tmp_path, knowledge_dirs, LLM_BASE_URL=fake_llm.base_url)
    code, out, err = await chat(
        env, "How long does a refund take?", "And to Austria?", "/reset", "Do you ship to Italy?"
    )
    assert code == 0, err
    assert "Answer to: How long does a refund take?" in out
    assert "Answer to: Do you ship to Italy?" in out
    assert len(fake_llm.requests) == 3
    second = fake_llm.requests[1]["messages"][1:]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[0]["content"] == "How long does a refund take?"
    third = fake_llm.requests[2]["messages"][1:]
    assert third == [{"role": "user", "content": "Do you ship to Italy?"}]


async def test_staff_actions_can_be_rehearsed_in_the_terminal(tmp_path, knowledge_dirs):
    config, faq = knowledge_dirs
    name = persona(config)["name"]
    staff = persona(config)["staff_messages"]
    answer = faq_entry(faq, "refund_time")["answer"].strip()
    db = tmp_path / "rehearsal.sqlite3"
    code, out, err = await chat(
        environment(tmp_path, knowledge_dirs),
        "/faq refund_time",  # no ticket yet: a command all the same, not a question
        "/human",
        "/faq refund_time",
        "/close",
        args=("chat", "--db", str(db)),
    )
    assert code == 0, err
    assert staff["no_ticket"].format(command="faq") in out
    prefix = persona(config)["messages"]["staff_reply_prefix"]
    assert out.count(answer) == 1, "sent once, by the team, never matched as a question"
    assert f"{name}: {prefix}{answer}\n" in out
    assert staff["faq_sent"].format(ticket_id=1, faq_id="refund_time") in out
    assert staff["closed"].format(ticket_id=1, agent=env_user()) in out
    assert persona(config)["messages"]["ticket_closed"].strip() in out
    assert [(t["id"], t["status"]) for t in tickets(db)] == [(1, "resolved")]


async def test_a_closed_ticket_is_rated_and_the_chat_forgotten_in_the_terminal(
    tmp_path, knowledge_dirs
):
    config, _ = knowledge_dirs
    messages = persona(config)["messages"]
    db = tmp_path / "rehearsal.sqlite3"
    code, out, err = await chat(
        environment(tmp_path, knowledge_dirs),
        "/human",
        "/close",
        "/rate 4",
        "/forget",
        "/forget yes",
        args=("chat", "--db", str(db)),
    )
    assert code == 0, err
    assert messages["rating_thanks"].strip() in out
    assert messages["forget_confirm"].strip() in out and messages["forget_done"].strip() in out
    assert [(t["id"], t["rating"]) for t in tickets(db)] == [(1, 4)]
    assert rows(db, "SELECT COUNT(*) AS n FROM messages")[0]["n"] == 0


def env_user() -> str:
    import os

    return os.environ.get("USER") or "terminal"


async def test_the_terminal_reloads_edits_and_keeps_no_records(tmp_path, knowledge_dirs):
    """Persona edits show while it runs; without --db nothing is left behind, and the
    bot's DATABASE_PATH is not touched."""
    config, _ = knowledge_dirs
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    bot_yaml = config / "bot.yaml"
    bot_yaml.write_text(
        bot_yaml.read_text().replace("reload_poll_seconds: 3.0", "reload_poll_seconds: 0.2")
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "main.py",
        "chat",
        cwd=REPO,
        env=environment(tmp_path, knowledge_dirs, TMPDIR=str(scratch)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    greeting = persona(config)["messages"]["small_talk_greeting"].format(
        name="Nora", company="Northwind Home"
    )
    process.stdin.write(b"Hi\n")
    await process.stdin.drain()
    first = await asyncio.wait_for(process.stdout.readline(), 60)
    assert greeting in first.decode("utf-8")
    persona_yaml = config / "persona.yaml"
    text = persona_yaml.read_text(encoding="utf-8")
    old = persona(config)["messages"]["small_talk_greeting"]
    persona_yaml.write_text(text.replace(old, "Hello from the edited persona!"), encoding="utf-8")
    await asyncio.sleep(2)
    process.stdin.write(b"Hi\n")
    process.stdin.close()
    rest, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "Hello from the edited persona!" in rest.decode("utf-8")
    assert not (tmp_path / "console.sqlite3").exists(), "DATABASE_PATH is not the terminal's"
    assert list(scratch.iterdir()) == [], "the throw-away database is deleted at exit"


async def test_a_rehearsal_keeps_the_faq_vectors_for_the_next(tmp_path, knowledge_dirs):
    """The throw-away database goes, the FAQ's vectors stay beside the bot's database,
    so the next rehearsal does not embed the FAQ again."""
    _, faq = knowledge_dirs
    for path in faq.glob("*.yaml"):
        path.unlink()
    (faq / "one.yaml").write_text(
        "faq:\n  - id: refunds\n    question: How long do refunds take?\n"
        "    answer: Refunds take five working days.\n",
        encoding="utf-8",
    )
    env = environment(tmp_path, knowledge_dirs)
    env.pop("VECTOR_CACHE_PATH", None)
    code, out, err = await chat(env, "How long do refunds take?")
    assert code == 0, err
    assert "five working days" in out
    assert not (tmp_path / "console.sqlite3").exists()
    vectors = tmp_path / "chat-vectors.sqlite3"
    conn = sqlite3.connect(vectors)
    try:
        rows = conn.execute("SELECT COUNT(*) FROM embedding_cache").fetchone()[0]
    finally:
        conn.close()
    assert rows > 1  # the entry and the bot's own examples
