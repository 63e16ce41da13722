"""``python main.py doctor``, run as operators run it, against the fake Bot API and model server.

Every broken piece must show up as a problem line with its fix and exit 1; a working setup
exits 0; and no run may print the bot token or the API key, whatever the servers echo.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from bot.commands.doctor import check_storage
from bot.commands.doctor_report import Masker
from tests.conftest import BOT_TOKEN
from tests.helpers import REPO, cli_environment

# Bots started as processes find the shipped FAQ's vectors already made.
pytestmark = pytest.mark.usefixtures("warm_vector_cache")

API_KEY = "sk-live-key-0123456789abcdef"
STAFF = -1001234567890
MODEL = "fake-model"


@pytest.fixture
def good(fake_telegram, fake_llm):
    """A setup that works: a forum staff group where the bot is an admin, a strict server."""
    fake_telegram.add_forum_group(STAFF)
    fake_llm.api_key = API_KEY
    fake_llm.check_models = True
    fake_llm.server, fake_llm.context_window = "llamacpp", 8192
    return fake_telegram, fake_llm


@pytest.fixture
def doctor(tmp_path, knowledge_dirs, good):
    fake_telegram, fake_llm = good

    async def run(**extra: str) -> tuple[int, str]:
        settings = {
            "TELEGRAM_BOT_TOKEN": fake_telegram.token,
            "TELEGRAM_API_BASE_URL": fake_telegram.base_url,
            "LLM_BASE_URL": fake_llm.base_url,
            "LLM_API_KEY": API_KEY,
            "LLM_MODEL": MODEL,
            "STAFF_CHAT_ID": str(STAFF),
            **extra,
        }
        settings = {k: v for k, v in settings.items() if v is not None}
        env = cli_environment(knowledge_dirs, tmp_path / "data" / "bot.sqlite3", **settings)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "main.py",
            "doctor",
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        output = out.decode() + err.decode()
        assert "Traceback" not in output, output
        secrets = [BOT_TOKEN, BOT_TOKEN.split(":")[1], API_KEY]
        secrets += [extra[k] for k in ("TELEGRAM_BOT_TOKEN", "LLM_API_KEY") if extra.get(k)]
        for secret in secrets:
            assert secret not in output, output
        # The checklist is on standard output; a setting refused before any check, on
        # standard error, as every command reports one.
        return process.returncode, out.decode() or err.decode()

    return run


def finding(output: str, subject: str) -> tuple[str, str, str]:
    """(status, detail, fix) of the checklist line about `subject`."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        status, _, rest = line.strip().partition(" ")
        if rest.strip().startswith(f"{subject}: "):
            detail = rest.strip()[len(subject) + 2 :]
            after = lines[index + 1].strip() if index + 1 < len(lines) else ""
            fix = after[5:] if after.startswith("fix: ") else ""
            return status, detail, fix
    raise AssertionError(f"no line about {subject!r} in:\n{output}")


def statuses(output: str) -> set[str]:
    return {
        line.split()[0]
        for line in output.splitlines()
        if line.startswith("  ") and not line.strip().startswith("fix:")
    }


# -- a working setup ------------------------------------------------------------------------


async def test_a_working_setup_passes_every_check(doctor):
    code, output = await doctor()
    assert code == 0, output
    assert statuses(output) == {"ok"}, output
    assert finding(output, "bot token")[1] == "accepted: @shop_support_bot (id 123456)"
    assert "with topics" in finding(output, "staff chat")[1]
    assert 'an admin with "Manage topics"' in finding(output, "bot in staff chat")[1]
    assert "polls" in finding(output, "webhook")[1]
    for subject in ("endpoint", "model", "streaming", "tool calls"):
        assert finding(output, subject)[0] == "ok"
    assert finding(output, "context window")[1] == "8,192 tokens per slot (n_ctx in /props)"
    assert "does not exist yet" in finding(output, "database")[1]
    assert output.rstrip().endswith("All checks passed.")


async def test_the_database_check_writes_nothing(doctor, tmp_path):
    database = tmp_path / "data" / "bot.sqlite3"
    database.parent.mkdir()
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE kept (x)")
    before = database.read_bytes()
    code, output = await doctor()
    assert code == 0, output
    assert finding(output, "database") == ("ok", f"{database} is writable", "")
    assert database.read_bytes() == before


async def test_without_telegram_and_model_it_says_what_is_missing(doctor):
    code, output = await doctor(TELEGRAM_BOT_TOKEN=None, LLM_BASE_URL=None, LLM_API_KEY=None)
    assert code == 1, output
    status, detail, fix = finding(output, "bot token")
    assert status == "problem" and "TELEGRAM_BOT_TOKEN is not set" in detail
    assert "@BotFather" in fix
    assert finding(output, "model") == (
        "ok",
        "none configured: answers come from the FAQ alone",
        "",
    )


# -- Telegram -------------------------------------------------------------------------------


async def test_a_rejected_bot_token(doctor):
    code, output = await doctor(TELEGRAM_BOT_TOKEN="123456:WRONG-token-value")
    assert code == 1
    status, detail, fix = finding(output, "bot token")
    assert (status, detail) == ("problem", "Telegram rejected it (401 Unauthorized)")
    assert "@BotFather" in fix
    assert "WRONG-token-value" not in output


@pytest.mark.parametrize(
    ("member", "expected", "fix"),
    [
        ({"can_manage_topics": False}, 'admin without the "Manage topics" right', "Manage topics"),
        ({"status": "member"}, "is a member, not an admin", 'an admin with the "Manage topics"'),
        ({"status": "kicked"}, "kicked from the supergroup", "add @shop_support_bot"),
        ({"status": "left"}, "chat not found", "add @shop_support_bot"),
    ],
)
async def test_missing_rights_in_the_staff_group(doctor, good, member, expected, fix):
    fake_telegram, _ = good
    fake_telegram.set_bot_member(STAFF, **member)
    code, output = await doctor()
    assert code == 1, output
    subject = "staff chat" if member.get("status") in ("left", "kicked") else "bot in staff chat"
    status, detail, advice = finding(output, subject)
    assert status == "problem" and expected in detail, output
    assert fix in advice


async def test_a_plain_group_needs_no_admin_right(doctor, good):
    fake_telegram, _ = good
    plain = -1009876543210
    fake_telegram.add_group(plain)
    fake_telegram.set_bot_member(plain, "member")
    code, output = await doctor(STAFF_CHAT_ID=str(plain))
    assert code == 0, output
    assert "topics off: tickets arrive as cards" in finding(output, "staff chat")[1]
    assert finding(output, "bot in staff chat")[0] == "ok"


async def test_a_positive_staff_chat_id(doctor):
    # The settings refuse it before anything is asked, with the id it should have been.
    code, output = await doctor(STAFF_CHAT_ID="1234567890")
    assert code == 1, output
    assert "STAFF_CHAT_ID: 1234567890 is positive" in output
    assert "-1001234567890" in output


async def test_a_webhook_delivery_error(doctor, good):
    fake_telegram, _ = good
    # A token in the webhook path is common; Telegram reports the URL back as registered.
    url = f"https://bot.example.com/hook/{BOT_TOKEN}"
    fake_telegram.set_webhook_error("Wrong response from the webhook: 502 Bad Gateway", url=url)
    code, output = await doctor(WEBHOOK_URL=url)
    assert code == 1, output
    assert finding(output, "webhook") == (
        "ok",
        "Telegram posts to https://bot.example.com/hook/***",
        "",
    )
    status, detail, fix = finding(output, "webhook delivery")
    assert status == "problem"
    assert detail.endswith("s ago: Wrong response from the webhook: 502 Bad Gateway")
    assert "reverse proxy" in fix


async def test_a_webhook_left_behind_while_polling(doctor, good):
    fake_telegram, _ = good
    fake_telegram.webhook["url"] = "https://old.example.com/hook"
    code, output = await doctor()
    assert code == 0, output
    status, detail, fix = finding(output, "webhook")
    assert status == "warning" and "WEBHOOK_URL is not set" in detail
    assert "deletes it" in fix


# -- the model ------------------------------------------------------------------------------


async def test_a_wrong_api_key(doctor):
    code, output = await doctor(LLM_API_KEY="sk-wrong-key-fedcba9876543210")
    assert code == 1, output
    status, detail, fix = finding(output, "API key")
    assert status == "problem"
    # The server echoed the key it was sent; the doctor masks it.
    assert detail == "rejected (401): Incorrect API key provided: ***."
    assert fix == "check LLM_API_KEY"
    assert finding(output, "model, streaming, tools")[0] == "skipped"


async def test_an_unknown_model(doctor):
    code, output = await doctor(LLM_MODEL="gpt-9-imaginary")
    assert code == 1, output
    status, detail, fix = finding(output, "model")
    assert status == "problem"
    assert "gpt-9-imaginary not found" in detail and "model_not_found" not in detail
    assert "does not exist" in detail
    assert fix == "set LLM_MODEL (or llm.model) to one the server has: fake-model, fake-embedding"


@pytest.mark.parametrize(
    ("support", "refusal", "fix"),
    [
        ("vllm_no_auto", '"auto" tool choice requires', "--enable-auto-tool-choice"),
        ("llamacpp_no_jinja", "tools param requires --jinja flag", "--jinja"),
        ("ignored", "without a tool call", "set llm.use_tools: false"),
    ],
)
async def test_a_server_without_tool_support(doctor, good, support, refusal, fix):
    _, fake_llm = good
    fake_llm.tool_support = support
    code, output = await doctor()
    assert code == 1, output
    status, detail, advice = finding(output, "tool calls")
    assert status == "problem" and refusal in detail
    assert fix in advice and "llm.use_tools: false" in advice
    assert finding(output, "model")[0] == "ok"


async def test_tools_off_are_not_checked(doctor, good, knowledge_dirs):
    _, fake_llm = good
    fake_llm.tool_support = "vllm_no_auto"
    bot_yaml = knowledge_dirs[0] / "bot.yaml"
    bot_yaml.write_text(
        bot_yaml.read_text().replace("use_tools: true", "use_tools: false"), encoding="utf-8"
    )
    code, output = await doctor()
    assert code == 0, output
    assert finding(output, "tool calls")[1].startswith("off (llm.use_tools: false)")


@pytest.mark.parametrize(
    ("server", "window", "status", "expected"),
    [
        ("vllm", 32768, "ok", "32,768 tokens (max_model_len in /v1/models)"),
        ("ollama", 16384, "ok", "16,384 tokens (num_ctx in Ollama's /api/show)"),
        ("ollama", None, "warning", "the model takes up to 131,072 tokens, but Ollama"),
        ("openai", None, "warning", "unknown: the server reports it in none"),
    ],
)
async def test_the_context_window(doctor, good, server, window, status, expected):
    _, fake_llm = good
    fake_llm.server, fake_llm.context_window = server, window
    code, output = await doctor()
    assert code == 0, output
    found = finding(output, "context window")
    assert found[0] == status and found[1].startswith(expected), output


async def test_a_base_url_without_v1_and_an_unreachable_one(doctor, good):
    _, fake_llm = good
    code, output = await doctor(LLM_BASE_URL=fake_llm.url)
    assert code == 0, output
    assert finding(output, "base URL")[0] == "warning"
    code, output = await doctor(LLM_BASE_URL="http://127.0.0.1:9/v1")
    assert code == 1
    status, detail, fix = finding(output, "endpoint")
    assert status == "problem" and "cannot reach http://127.0.0.1:9/v1" in detail
    assert "LLM_BASE_URL" in fix


async def test_provider_embeddings(doctor, good, knowledge_dirs):
    _, fake_llm = good
    bot_yaml = knowledge_dirs[0] / "bot.yaml"
    bot_yaml.write_text(
        bot_yaml.read_text().replace("embedding_source: bundled", "embedding_source: provider"),
        encoding="utf-8",
    )
    code, output = await doctor()
    assert code == 1, output
    status, detail, fix = finding(output, "embeddings")
    assert (
        status == "problem"
        and "text-embedding-3-small: HTTP 404: The model `text-embedding-3-small` does not exist"
        in detail
    )
    assert "retrieval.embedding_model" in fix
    fake_llm.models.append("text-embedding-3-small")
    code, output = await doctor()
    assert code == 0, output
    assert finding(output, "embeddings")[1] == "text-embedding-3-small answers with 256 dimensions"


# -- storage --------------------------------------------------------------------------------


def broken_database(tmp_path: Path, kind: str) -> Path:
    if kind == "a folder":
        return tmp_path
    if kind == "not SQLite":
        path = tmp_path / "bot.sqlite3"
        path.write_bytes(b"these are not the bytes of a database" * 100)
        return path
    if kind == "under a file":
        (tmp_path / "plain.txt").write_text("x")
        return tmp_path / "plain.txt" / "bot.sqlite3"
    path = tmp_path / "bot.sqlite3"
    sqlite3.connect(path).close()
    path.chmod(0o444)
    return path


@pytest.mark.parametrize("kind", ["a folder", "not SQLite", "under a file", "read-only"])
async def test_an_unusable_database(doctor, tmp_path, kind):
    if kind == "read-only" and os.geteuid() == 0:
        pytest.skip("root writes to read-only files")
    path = broken_database(tmp_path, kind)
    code, output = await doctor(DATABASE_PATH=str(path))
    assert code == 1, output
    status, detail, fix = finding(output, "database")
    assert status == "problem" and str(path) in detail
    assert "DATABASE_PATH" in fix


def test_little_free_disk_space_is_a_warning(tmp_path):
    findings = check_storage(str(tmp_path / "bot.sqlite3"), low_disk_bytes=1 << 60)
    assert [f.status for f in findings] == ["ok", "warning"]
    assert findings[1].detail.startswith("only ")


# -- secrets --------------------------------------------------------------------------------


def test_secrets_are_masked_in_every_form():
    mask = Masker([BOT_TOKEN, API_KEY, "x"])
    text = (
        f"https://api.telegram.org/bot{BOT_TOKEN}/getMe bot%3A{BOT_TOKEN.replace(':', '%3A')} "
        f"secret part {BOT_TOKEN.split(':')[1]} key {API_KEY} "
        "https://user:hunter2@llm.example.com/v1?api_key=abc123&x=1"
    )
    masked = mask(text)
    for secret in (BOT_TOKEN, BOT_TOKEN.split(":")[1], API_KEY, "hunter2", "abc123"):
        assert secret not in masked
    assert "https://user:***@llm.example.com/v1?api_key=***&x=1" in masked
    assert "x=1" in masked  # too short to be a secret: left alone
