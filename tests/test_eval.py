"""``python main.py eval``: run as admins run it, in a subprocess, on copies of the shipped files."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.fakes import Reply
from tests.fakes.llm_replies import last_user_text
from tests.helpers import cli_environment

# Bots started as processes find the shipped FAQ's vectors already made.
pytestmark = pytest.mark.usefixtures("warm_vector_cache")

REPO = Path(__file__).resolve().parent.parent
SHOP_CASES = REPO / "tests" / "cases" / "shop_cases.yaml"


@pytest.fixture
def eval_env(tmp_path: Path, knowledge_dirs: tuple[Path, Path]) -> dict[str, str]:
    database = tmp_path / "production" / "bot.sqlite3"
    return cli_environment(knowledge_dirs, database, PYTHONPATH=str(REPO))


async def run_eval(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Runs without blocking the loop, so a fake server in this test can answer it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "main.py"),
        "eval",
        *args,
        env=env,
        cwd=str(REPO),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, output.decode()


def rows(output: str) -> dict[str, str]:
    """Table rows by case number."""
    found = {}
    for line in output.splitlines():
        first = line.split(" ", 1)[0]
        if first.isdigit() and ("PASS" in line or "FAIL" in line):
            found[first] = line
    return found


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


async def test_shipped_cases_pass_without_touching_the_database(eval_env, tmp_path):
    code, output = await run_eval(eval_env, str(SHOP_CASES))
    assert code == 0, output
    table = rows(output)
    assert len(table) == 13
    assert all("PASS" in line for line in table.values()), output
    assert output.rstrip().endswith("13 passed, 0 failed")
    assert not (tmp_path / "production").exists()


async def test_failing_cases_are_reported_and_exit_1(eval_env, tmp_path):
    cases = write(
        tmp_path / "cases.yaml",
        """\
cases:
  - message: "how much does shipping cost to austria?"
    expect_faq: shipping_costs
    top_k: 1
    answer_contains: ["4.95 EUR"]
  - message: "how much does shipping cost to austria?"
    expect_faq: password_reset
  - message: "i forgot my password and cant sign in"
    expect_handoff: true
  - message: "I want to talk to a human"
    expect_handoff: false
  - message: "what are your opening hours on saturday"
    answer_contains: "sunday brunch"
  - message: "what are your opening hours on saturday"
    answer_not_contains: ["10:00-14:00"]
  - message: "WHERE IS MY PARCEL? HOW CAN I TRACK IT"
    answer_contains: ["TRACKING LINK"]
""",
    )
    code, output = await run_eval(eval_env, str(cases))
    assert code == 1, output
    table = rows(output)
    assert "PASS" in table["1"]
    assert "FAIL" in table["2"] and "password_reset not in top 3" in table["2"]
    assert "FAIL" in table["3"] and "answered (faq) instead of handing off" in table["3"]
    assert "FAIL" in table["4"] and "handed off (user_request)" in table["4"]
    assert "FAIL" in table["5"] and "answer lacks 'sunday brunch'" in table["5"]
    assert "FAIL" in table["6"] and "answer contains '10:00-14:00'" in table["6"]
    assert "PASS" in table["7"], "answer checks ignore case"
    assert output.rstrip().endswith("2 passed, 5 failed")


async def test_long_messages_are_cut_in_the_table(eval_env, tmp_path):
    message = "how much does shipping cost to austria? " + "please tell me " * 10
    cases = write(
        tmp_path / "cases.yaml",
        f'cases:\n  - message: "{message}"\n    expect_faq: shipping_costs\n',
    )
    code, output = await run_eval(eval_env, str(cases))
    assert code == 0, output
    assert message.strip() not in output
    assert "how much does shipping cost to austri…" in rows(output)["1"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cases:\n  - message: 'unclosed\n", ":2: unclosed quote"),
        ("cases:\n  - expect_faq: track_order\n", ":2: cases[0]: missing required key 'message'"),
        (
            "cases:\n  - message: hi\n    expect_fqa: track_order\n",
            ":3: cases[0]: unknown key 'expect_fqa'",
        ),
        ("cases:\n  - message: hi\n    top_k: many\n", ":3: cases[0].top_k: expected"),
        ("cases:\n  - message: hi\n", ":2: cases[0]: checks nothing"),
        (
            "cases:\n  - message: hi\n    expect_handoff: false\n  - message: x\n    expect_faq: nope\n",
            ":4: cases[1].expect_faq: no FAQ entry has the id 'nope'",
        ),
        ("", ":1: the file is empty"),
        ("- message: hi\n", ":1: expected a mapping with a 'cases:' list, got a list"),
    ],
)
async def test_malformed_cases_file(eval_env, tmp_path, text, expected):
    cases = write(tmp_path / "cases.yaml", text)
    code, output = await run_eval(eval_env, str(cases))
    assert code == 1, output
    assert f"{cases}{expected}" in output, output
    assert "passed" not in output


async def test_missing_cases_file(eval_env, tmp_path):
    code, output = await run_eval(eval_env, str(tmp_path / "nothing.yaml"))
    assert code == 1
    assert f"{tmp_path / 'nothing.yaml'}: file not found" in output


async def test_llm_mode_uses_the_model(eval_env, tmp_path, fake_llm):
    def responder(request: dict) -> Reply:
        system = request["messages"][0]["content"]
        text = last_user_text(request)
        if "blender" in text:
            return Reply.tool_call("escalate", {"reason": "defect", "summary": "noisy blender"})
        found = "shipping_costs" if 'faq id="shipping_costs"' in system else "nothing"
        return Reply.text(f"Model here, I found {found}.")

    fake_llm.responder = responder
    cases = write(
        tmp_path / "cases.yaml",
        """\
cases:
  - message: "how much does shipping cost to austria?"
    expect_faq: shipping_costs
    expect_handoff: false
    answer_contains: ["model here", "found shipping_costs"]
    answer_not_contains: ["4.95 EUR"]
  - message: "where is my parcel? it's been a week"
    expect_handoff: false
    answer_contains: ["Model here"]
  - message: "my blender makes a strange noise, what now?"
    expect_handoff: true
  - message: "what are your opening hours on saturday"
    answer_contains: ["10:00-14:00"]
""",
    )
    eval_env["LLM_BASE_URL"] = fake_llm.base_url
    code, output = await run_eval(eval_env, str(cases), "--llm")
    assert code == 1, output
    table = rows(output)
    assert "PASS" in table["1"] and "PASS" in table["2"] and "PASS" in table["3"], output
    assert "FAIL" in table["4"] and "answer lacks '10:00-14:00'" in table["4"]
    assert output.rstrip().endswith("3 passed, 1 failed")
    assert len(fake_llm.requests) == 4
    # The same file without --llm never calls the model and answers from the FAQ.
    fake_llm.reset()
    code, output = await run_eval(eval_env, str(cases))
    assert len(fake_llm.requests) == 0
    table = rows(output)
    assert "FAIL" in table["1"] and "answer contains '4.95 eur'" in table["1"].lower()
    # Unsure without a model: entries offered to pick from, which is not the model's answer.
    assert "FAIL" in table["2"] and "answer lacks 'Model here'" in table["2"]
    assert "PASS" in table["4"]


async def test_llm_flag_needs_a_configured_model(eval_env):
    code, output = await run_eval(eval_env, str(SHOP_CASES), "--llm")
    assert code == 1
    assert "--llm: no LLM configured" in output
