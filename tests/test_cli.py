"""``python main.py check``, ``faq search`` and the bare command, run as separate processes.

These are the contract documented in README.md ("Commands"): exit codes,
``path:line: message`` problem lines, the JSON shape of ``faq search --json``, and
one clear line (never a traceback) for a bad setting.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import run_main

# Bots started as processes find the shipped FAQ's vectors already made.
pytestmark = pytest.mark.usefixtures("warm_vector_cache")

PROBLEM_LINE = re.compile(r"^(?P<path>[^:\n]+\.ya?ml):(?P<line>\d+): (?P<message>\S.*)$")


def cli(
    tmp_path: Path, knowledge_dirs, *args: str, stdin: str | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return run_main(knowledge_dirs, tmp_path / "cli.sqlite3", *args, stdin=stdin, **extra)


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    output = (result.stdout + result.stderr).strip()
    assert "Traceback" not in output, output
    assert len(output.splitlines()) == 1, output
    return output


# -- check --------------------------------------------------------------------------------


def test_check_accepts_the_shipped_files(tmp_path, knowledge_dirs):
    result = cli(tmp_path, knowledge_dirs, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_check_names_file_and_line_of_each_problem(tmp_path, knowledge_dirs):
    _, faq = knowledge_dirs
    returns = faq / "returns.yaml"
    shipping = faq / "shipping.yaml"
    replace_once(returns, "    answer: ", "    answr: ")
    misspelt = line_of(returns, "answr:")
    first_id = yaml.safe_load(shipping.read_text(encoding="utf-8"))["faq"][0]["id"]
    replace_once(returns, "  - id: how_to_return", f"  - id: {first_id}")
    duplicate = line_of(returns, f"id: {first_id}")

    result = cli(tmp_path, knowledge_dirs, "check")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    parsed = [PROBLEM_LINE.match(line) for line in lines]
    assert all(parsed), lines
    places = {(Path(m["path"]).name, int(m["line"])) for m in parsed}
    assert ("returns.yaml", misspelt) in places, lines
    assert ("returns.yaml", duplicate) in places, lines
    assert any("answr" in m["message"] for m in parsed)
    assert any(first_id in m["message"] for m in parsed)


def test_check_reports_broken_bot_yaml_with_its_line(tmp_path, knowledge_dirs):
    config, _ = knowledge_dirs
    replace_once(config / "bot.yaml", "  temperature: 0.3", "  temperature: [0.3")
    result = cli(tmp_path, knowledge_dirs, "check")
    assert result.returncode == 1
    match = PROBLEM_LINE.match(one_clear_line(result))
    assert match, result.stdout
    assert Path(match["path"]).name == "bot.yaml"
    assert int(match["line"]) == line_of(config / "bot.yaml", "temperature: [0.3")


# -- bad settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [("check",), ("chat",), ("faq", "search", "refund")])
def test_bad_port_is_one_clear_line(tmp_path, knowledge_dirs, command):
    result = cli(tmp_path, knowledge_dirs, *command, HTTP_PORT="99999")
    assert result.returncode == 1
    line = one_clear_line(result)
    assert "HTTP_PORT" in line and "99999" in line


def test_broken_bot_yaml_stops_chat_with_one_clear_line(tmp_path, knowledge_dirs):
    config, _ = knowledge_dirs
    replace_once(config / "bot.yaml", "  temperature: 0.3", "  temperature: hot")
    result = cli(tmp_path, knowledge_dirs, "chat", stdin="hello\n")
    assert result.returncode == 1
    line = one_clear_line(result)
    assert PROBLEM_LINE.match(line), line
    assert "temperature" in line


@pytest.mark.parametrize("where", ["directory", "not_sqlite"])
def test_unusable_database_is_one_clear_line(tmp_path, knowledge_dirs, where):
    if where == "directory":
        database = tmp_path / "a_folder"
        database.mkdir()
    else:
        database = tmp_path / "notes.sqlite3"
        database.write_text("this is not a database\n" * 100, encoding="utf-8")
    result = cli(tmp_path, knowledge_dirs, "chat", "--db", str(database), stdin="hello\n")
    assert result.returncode == 1
    line = one_clear_line(result)
    assert str(database) in line


# -- faq search -------------------------------------------------------------------------------


def test_faq_search_json_shape(tmp_path, knowledge_dirs):
    result = cli(
        tmp_path, knowledge_dirs, "faq", "search", "--json", "How long does a refund take?"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["query"] == "How long does a refund take?"
    results = record["results"]
    assert results[0]["id"] == "refund_time"
    assert len(results) == 3  # retrieval.top_k in the shipped bot.yaml
    for item in results:
        assert isinstance(item["id"], str)
        assert isinstance(item["score"], int | float)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)


def test_faq_search_reads_one_query_per_line(tmp_path, knowledge_dirs):
    queries = ["How long does a refund take?", "¿cómo puedo devolver un producto?", "payment"]
    stdin = "\n".join(queries) + "\n"
    result = cli(tmp_path, knowledge_dirs, "faq", "search", "--json", "--top-k", "2", stdin=stdin)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["query"] for r in records] == queries
    assert all(len(r["results"]) <= 2 for r in records)
    assert records[0]["results"][0]["id"] == "refund_time"
    assert records[1]["results"][0]["id"] == "how_to_return"


def test_faq_search_with_replacement_files(tmp_path, knowledge_dirs):
    own = tmp_path / "own.yaml"
    own.write_text(
        "faq:\n"
        "  - id: teapot_glaze\n"
        "    question: Which glaze do your teapots have?\n"
        "    answer: A lead-free glaze.\n"
        "  - id: opening_hours\n"
        "    question: When is the shop open?\n"
        "    answer: Always online.\n",
        encoding="utf-8",
    )
    result = cli(
        tmp_path, knowledge_dirs, "faq", "search", "--json", "--faq", str(own), "teapot glaze"
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert {r["id"] for r in record["results"]} <= {"teapot_glaze", "opening_hours"}
    assert record["results"][0]["id"] == "teapot_glaze"


def test_faq_search_rejects_a_top_k_below_one(tmp_path, knowledge_dirs):
    result = cli(tmp_path, knowledge_dirs, "faq", "search", "--json", "--top-k", "0", "refund")
    assert result.returncode != 0
    assert "top-k" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# -- no command -------------------------------------------------------------------------------


def test_no_command_without_token_chats_and_says_how_to_connect(tmp_path, knowledge_dirs):
    _, faq = knowledge_dirs
    question = "How do I return an item?"
    result = cli(tmp_path, knowledge_dirs, stdin=question + "\n")
    assert result.returncode == 0, result.stderr
    note = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(note) == 1, result.stderr
    assert "TELEGRAM_BOT_TOKEN" in note[0]
    answer = next(
        e["answer"]
        for e in yaml.safe_load((faq / "returns.yaml").read_text(encoding="utf-8"))["faq"]
        if e["id"] == "how_to_return"
    )
    assert answer.strip() in result.stdout


def test_faq_search_says_whether_the_bot_would_answer(tmp_path, knowledge_dirs):
    config, _ = knowledge_dirs
    bot_yaml = config / "bot.yaml"
    bot_yaml.write_text(
        bot_yaml.read_text(encoding="utf-8").replace(
            "confidence_threshold: 0.83", "confidence_threshold: 0.7"
        ),
        encoding="utf-8",
    )
    sure, vague = "my parcel arrived damaged", "zqx plimb vortal"
    records = [
        json.loads(line)
        for line in cli(
            tmp_path, knowledge_dirs, "faq", "search", "--json", stdin=f"{sure}\n{vague}\n"
        ).stdout.splitlines()
    ]
    assert [(r["threshold"], r["would_answer"]) for r in records] == [(0.7, True), (0.7, False)]
    table = cli(tmp_path, knowledge_dirs, "faq", "search", sure).stdout.splitlines()
    assert "bot (≥ 0.700)" in table[1]
    assert "answers" in table[2] and "damaged_parcel" in table[2]
    confidence = records[0]["results"][0]["confidence"]
    assert f"{int(confidence * 1000) / 1000:.3f}" in table[2], "three decimals, never rounded up"
    assert "hands over" in cli(tmp_path, knowledge_dirs, "faq", "search", vague).stdout
