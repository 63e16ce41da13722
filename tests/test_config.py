"""Loading and validating bot.yaml, persona.yaml, the FAQ files and the environment.

The broken files under ``tests/data/broken`` pin the exact lines admins are
sent to; fixtures written into ``tmp_path`` cover the rest.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.config_check import check
from bot.environment import load_environment
from bot.errors import ConfigError, Problem
from bot.knowledge.loader import faq_paths, load_faq, load_persona
from bot.knowledge.persona import MESSAGE_KEYS, STAFF_MESSAGE_KEYS
from bot.reasons import REASON_CODES
from bot.settings import Settings
from bot.settings_loader import load_settings

REPO = Path(__file__).resolve().parent.parent
BROKEN = Path(__file__).resolve().parent / "data" / "broken"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def persona_yaml(messages: dict[str, str] | None = None) -> str:
    if messages is None:
        messages = {key: f"Text for {key}." for key in MESSAGE_KEYS}
    lines = [
        "name: Nora",
        "company: Northwind Home",
        "instructions: Be brief and kind.",
        "messages:",
    ]
    lines += [f"  {key}: {value!r}" for key, value in messages.items()]
    lines += ["reasons:"] + [f"  {code}: Reason {code}" for code in REASON_CODES]
    lines += ["staff_messages:"] + [f"  {key}: Staff text {key}" for key in STAFF_MESSAGE_KEYS]
    return "\n".join(lines) + "\n"


FAQ = """\
faq:
  - id: shipping_time
    question: How long does shipping take?
    answer: Three to five working days.
    tags: [shipping, delivery]
    examples:
      - when will my parcel arrive
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A minimal valid install: config/bot.yaml, config/persona.yaml, faq/general.yaml."""
    write(tmp_path / "config" / "bot.yaml", "retrieval:\n  top_k: 4\n")
    write(tmp_path / "config" / "persona.yaml", persona_yaml())
    write(tmp_path / "faq" / "general.yaml", FAQ)
    return tmp_path


def messages_of(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


def problems_of(call, *args) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        call(*args)
    return messages_of(caught.value.problems)


# --- valid files ---------------------------------------------------------------


def test_minimal_valid_install_has_no_problems(tree: Path) -> None:
    assert check(tree / "config", tree / "faq", {}) == []
    settings = load_settings(tree / "config", {})
    assert settings.retrieval.top_k == 4
    assert settings.llm == Settings().llm
    persona = load_persona(tree / "config" / "persona.yaml")
    assert set(persona.messages) == set(MESSAGE_KEYS)
    faq = load_faq(faq_paths(tree / "faq"))
    entry = faq.by_id("shipping_time")
    assert entry is not None
    assert entry.tags == ("shipping", "delivery")
    assert entry.examples == ("when will my parcel arrive",)
    assert entry.source == str(tree / "faq" / "general.yaml")
    assert entry.line == 2


def test_shipped_config_and_faq_are_valid() -> None:
    config, faq = REPO / "config", REPO / "faq"
    if not (
        (config / "persona.yaml").exists() and (config / "bot.yaml").exists() and faq_paths(faq)
    ):
        pytest.skip("config/ or faq/ not present in this checkout")
    assert messages_of(check(config, faq, {})) == []
    assert load_faq(faq_paths(faq)).entries


def test_missing_bot_yaml_means_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, {})
    assert dataclass_without_env(settings) == dataclass_without_env(Settings())


def dataclass_without_env(settings: Settings) -> tuple:
    return (settings.llm, settings.retrieval, settings.conversation, settings.telegram)


def test_empty_sections_and_empty_file_mean_defaults(tmp_path: Path) -> None:
    write(tmp_path / "bot.yaml", "llm:\n  # model: commented out\nretrieval:\n")
    assert load_settings(tmp_path, {}).llm == Settings().llm
    write(tmp_path / "bot.yaml", "# nothing set yet\n")
    assert load_settings(tmp_path, {}).retrieval == Settings().retrieval


def test_texts_are_stripped_and_entries_keep_file_order(tmp_path: Path) -> None:
    write(
        tmp_path / "b.yaml",
        """\
        faq:
          - id: "  second  "
            question: |
              Where is my parcel?
            answer: "  It is on its way.  "
        """,
    )
    write(tmp_path / "a.yaml", "faq:\n  - {id: first, question: q, answer: a}\n")
    faq = load_faq(faq_paths(tmp_path))
    assert [e.id for e in faq.entries] == ["first", "second"]
    second = faq.entries[1]
    assert (second.question, second.answer) == ("Where is my parcel?", "It is on its way.")


def test_faq_paths_are_sorted_yaml_and_yml_without_hidden_files(tmp_path: Path) -> None:
    for name in ("b.yml", "a.yaml", ".#a.yaml", "notes.txt"):
        write(tmp_path / name, FAQ)
    assert [p.name for p in faq_paths(tmp_path)] == ["a.yaml", "b.yml"]
    assert faq_paths(tmp_path / "missing") == []


def test_ints_are_accepted_for_floats_and_level_names_in_any_case(tmp_path: Path) -> None:
    write(tmp_path / "bot.yaml", "llm:\n  temperature: 1\nlogging:\n  level: debug\n")
    settings = load_settings(tmp_path, {})
    assert settings.llm.temperature == 1.0 and isinstance(settings.llm.temperature, float)
    assert settings.logging.level == "DEBUG"


def test_a_setting_left_blank_keeps_its_default(tmp_path: Path) -> None:
    write(tmp_path / "bot.yaml", "llm:\n  model:\n  max_tokens: 100\n")
    llm = load_settings(tmp_path, {}).llm
    assert (llm.model, llm.max_tokens) == (Settings().llm.model, 100)


def test_escalation_rules_are_read_into_dataclasses(tmp_path: Path) -> None:
    write(
        tmp_path / "bot.yaml",
        """\
        escalation:
          rules:
            - phrases: [lawyer, sue you]
            - phrases: [complaint]
              action: offer
        """,
    )
    rules = load_settings(tmp_path, {}).escalation.rules
    assert [(r.phrases, r.action) for r in rules] == [
        (("lawyer", "sue you"), "escalate"),
        (("complaint",), "offer"),
    ]


def test_staff_reply_prefix_may_be_empty_and_keeps_its_spaces(tmp_path: Path) -> None:
    messages = {key: "x" for key in MESSAGE_KEYS}
    messages["staff_reply_prefix"] = "Support: "
    path = write(tmp_path / "persona.yaml", persona_yaml(messages))
    assert load_persona(path).messages["staff_reply_prefix"] == "Support: "
    messages["staff_reply_prefix"] = ""
    write(tmp_path / "persona.yaml", persona_yaml(messages))
    assert load_persona(path).messages["staff_reply_prefix"] == ""


# --- broken YAML syntax -----------------------------------------------------------


def test_bad_indentation_points_at_the_misindented_line() -> None:
    path = BROKEN / "faq" / "bad_indent.yaml"
    [problem] = problems_of(load_faq, [path])
    assert problem.startswith(f"{path}:5: bad indentation")
    assert "\n" not in problem


def test_tab_and_unclosed_quote_are_explained(tmp_path: Path) -> None:
    tab = write(tmp_path / "tab.yaml", "faq:\n  - id: a\n\tquestion: q\n")
    [problem] = problems_of(load_faq, [tab])
    assert problem == f"{tab}:3: tab character; indent with spaces only"

    quote = write(
        tmp_path / "quote.yaml", 'faq:\n  - id: a\n    question: "Where is\n    answer: b\n'
    )
    [problem] = problems_of(load_faq, [quote])
    assert problem.startswith(f"{quote}:3: unclosed quote")


def test_relative_paths_are_reported_as_given(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    write(tree / "faq" / "broken.yaml", "faq:\n  - id: a\n    question: q\n")
    assert messages_of(check(Path("config"), Path("faq"), {})) == [
        "faq/broken.yaml:2: missing required key 'answer'"
    ]


# --- FAQ content ---------------------------------------------------------------------


def test_missing_answer_names_file_and_entry_line() -> None:
    path = BROKEN / "faq" / "missing_answer.yaml"
    assert problems_of(load_faq, [path]) == [f"{path}:2: missing required key 'answer'"]


def test_misspelt_key_gets_did_you_mean_once() -> None:
    path = BROKEN / "faq" / "misspelt_key.yaml"
    assert problems_of(load_faq, [path]) == [
        f"{path}:4: unknown key 'anwser', did you mean 'answer'?"
    ]


def test_duplicate_id_across_files_names_both_places() -> None:
    a, b = BROKEN / "faq" / "duplicate_a.yaml", BROKEN / "faq" / "duplicate_b.yaml"
    problems = problems_of(load_faq, [a, b])
    assert f"{b}:2: duplicate id 'returns_window' (first defined at {a}:6)" in problems
    assert f"{a}:6: id 'returns_window' is defined again at {b}:2" in problems
    assert len(problems) == 2


def test_every_problem_in_a_file_is_reported_at_once() -> None:
    path = BROKEN / "faq" / "three_problems.yaml"
    problems = problems_of(load_faq, [path])
    assert len(problems) == 3
    assert problems[0] == f'{path}:2: id: expected a string, got 7; put it in quotes: "7"'
    assert problems[1].startswith(f"{path}:8: tags: expected a list of strings, got a single value")
    assert problems[2] == f"{path}:10: question: is empty"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ":1: the file is empty"),
        ("- id: a\n  question: q\n", ":1: expected a mapping with the key 'faq'"),
        ("faqs:\n  - id: a\n", ":1: unknown key 'faqs', did you mean 'faq'?"),
        (
            "faq:\n  - just a sentence\n",
            ":2: entry 1: expected a mapping with id, question and answer",
        ),
        ("faq:\n  id: a\n", ":2: faq: expected a list of entries"),
        (
            "faq:\n  - {id: a, question: q, answer: a, tags: [x, 3]}\n",
            ":2: tags[1]: expected a string",
        ),
    ],
)
def test_wrong_file_shapes_get_clear_messages(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "faq.yaml", text)
    [problem] = problems_of(load_faq, [path])
    assert problem.startswith(f"{path}{expected}")


def test_an_empty_faq_list_is_allowed(tmp_path: Path) -> None:
    path = write(tmp_path / "faq.yaml", "faq:\n  # - id: coming soon\n")
    assert load_faq([path]).entries == ()


# --- bot.yaml ---------------------------------------------------------------------------


def test_wrong_type_says_what_was_expected_and_found() -> None:
    path = BROKEN / "config" / "bot.yaml"
    problems = problems_of(load_settings, BROKEN / "config", {})
    assert f"{path}:3: retrieval.top_k: expected an integer, got 'three'" in problems
    assert f"{path}:4: retrieval.confidence_threshold: must be between 0 and 1, got 1.5" in problems
    assert f"{path}:6: logging: unknown key 'levle', did you mean 'level'?" in problems
    assert len(problems) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("llm:\n  max_tokens: true\n", "llm.max_tokens: expected an integer, got true"),
        ("llm:\n  max_tokens: 600.5\n", "llm.max_tokens: expected an integer, got 600.5"),
        ("llm:\n  temperature: 2.5\n", "llm.temperature: must be between 0 and 2"),
        ("llm:\n  read_timeout_seconds: 0\n", "llm.read_timeout_seconds: must be greater than 0"),
        ("retrieval:\n  top_k: 0\n", "retrieval.top_k: must be between 1 and 20"),
        (
            "escalation:\n  handoff_phrases: agent\n",
            "escalation.handoff_phrases: expected a list of strings",
        ),
        (
            "escalation:\n  rules:\n    - phrases: [x]\n      action: later\n",
            "action: must be one of",
        ),
        (
            "escalation:\n  rules:\n    - action: offer\n",
            "rules[0]: missing required key 'phrases'",
        ),
        ("logging:\n  format: xml\n", "logging.format: must be one of 'text', 'json'"),
        ("logging:\n  level: LOUD\n", "logging.level: must be one of"),
        (
            "telegram:\n  admin_user_ids: [12, abc]\n",
            "admin_user_ids[1]: expected an integer, got 'abc'",
        ),
        ("llm: fast\n", "llm: expected a mapping, got 'fast'"),
        (
            "llm:\n  transcription_base_url: localhost:8000\n",
            "llm.transcription_base_url: 'localhost:8000' is not an http:// or https:// URL",
        ),
        ("llm:\n  vision_max_pixels: 0\n", "llm.vision_max_pixels: must be greater than 0"),
        ("media:\n  max_voice_seconds: 0\n", "media.max_voice_seconds: must be greater than 0"),
        ("lmm:\n  model: x\n", "unknown key 'lmm', did you mean 'llm'?"),
        ("env:\n  http_port: 1\n", "unknown key 'env'"),
        ("colour: blue\n", "unknown key 'colour'; allowed keys: conversation, escalation, llm"),
    ],
)
def test_bad_settings(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path / "bot.yaml", text)
    [problem] = problems_of(load_settings, tmp_path, {})
    assert expected in problem
    assert problem.startswith(f"{tmp_path / 'bot.yaml'}:")


def test_environment_overrides_settings(tmp_path: Path) -> None:
    write(tmp_path / "bot.yaml", "llm:\n  model: small\ntelegram:\n  staff_chat_id: -100\n")
    environ = {"LLM_MODEL": "large", "STAFF_CHAT_ID": "-1001234", "ADMIN_USER_IDS": "7, 8"}
    settings = load_settings(tmp_path, environ)
    assert settings.llm.model == "large"
    assert settings.telegram.staff_chat_id == -1001234
    assert settings.telegram.admin_user_ids == (7, 8)
    assert settings.env.staff_chat_id == -1001234


def test_transcription_model_comes_from_the_environment_first(tmp_path: Path) -> None:
    write(tmp_path / "bot.yaml", "llm:\n  transcription_model: whisper-1\n")
    assert load_settings(tmp_path, {}).llm.transcription_model == "whisper-1"
    environ = {"LLM_TRANSCRIPTION_MODEL": "whisper-large-v3"}
    assert load_settings(tmp_path, environ).llm.transcription_model == "whisper-large-v3"


def test_settings_and_environment_problems_come_together(tmp_path: Path) -> None:
    write(tmp_path / "bot.yaml", "retrieval:\n  top_k: many\n")
    problems = problems_of(load_settings, tmp_path, {"HTTP_PORT": "http"})
    assert len(problems) == 2


# --- persona.yaml ------------------------------------------------------------------------


def test_unknown_persona_message_key_gets_did_you_mean() -> None:
    path = BROKEN / "config" / "persona.yaml"
    problems = problems_of(load_persona, path)
    assert f"{path}:8: messages: unknown key 'hlep', did you mean 'help'?" in problems


def test_missing_persona_messages_are_listed() -> None:
    path = BROKEN / "config" / "persona.yaml"
    [missing] = [p for p in problems_of(load_persona, path) if "missing" in p]
    assert "reset" in missing and "edited_ignored" in missing
    assert "help" not in missing.split("missing", 1)[1]


def test_broken_placeholder_is_reported() -> None:
    path = BROKEN / "config" / "persona.yaml"
    problems = problems_of(load_persona, path)
    assert any(p.startswith(f"{path}:6: messages.start: broken placeholder") for p in problems)


def test_persona_messages_left_blank_are_all_missing(tmp_path: Path) -> None:
    path = write(tmp_path / "persona.yaml", "name: N\ncompany: C\ninstructions: I\nmessages:\n")
    problem, *others = problems_of(load_persona, path)
    assert others == [
        f"{path}:1: missing required key 'reasons'",
        f"{path}:1: missing required key 'staff_messages'",
    ]
    assert problem.startswith(f"{path}:4: messages: is empty; it needs start, help,")


def test_persona_needs_name_company_instructions_and_messages(tmp_path: Path) -> None:
    path = write(tmp_path / "persona.yaml", "name: ''\ninstructions: Be kind.\n")
    problems = problems_of(load_persona, path)
    assert f"{path}:1: name: is empty" in problems
    assert f"{path}:1: missing required key 'company'" in problems
    assert f"{path}:1: missing required key 'messages'" in problems


# --- environment ------------------------------------------------------------------------


def env_problems(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_environment(environ)
    return messages_of(caught.value.problems)


def test_environment_is_read_and_empty_means_unset() -> None:
    env = load_environment(
        {
            "TELEGRAM_BOT_TOKEN": "123456:AAbb-cc_DD",
            "LLM_BASE_URL": "",
            "STAFF_CHAT_ID": "-1001234567890",
            "ADMIN_USER_IDS": "12,34",
            "WEBHOOK_URL": "https://bot.example.com/hook",
            "WEBHOOK_SECRET": "abc_DEF-123",
            "HTTP_PORT": "8443",
        }
    )
    assert env.telegram_bot_token == "123456:AAbb-cc_DD"
    assert env.llm_base_url is None and not env.llm_configured
    assert env.staff_chat_id == -1001234567890
    assert env.admin_user_ids == (12, 34)
    assert env.http_port == 8443
    assert load_environment({}).admin_user_ids is None


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("STAFF_CHAT_ID", "abc", "STAFF_CHAT_ID: 'abc' is not a chat id"),
        ("HTTP_PORT", "99999", "HTTP_PORT: '99999' is not a port number (1-65535)"),
        (
            "ADMIN_USER_IDS",
            "12,abc",
            "ADMIN_USER_IDS: '12,abc' is not a comma-separated list of user ids",
        ),
        (
            "WEBHOOK_URL",
            "http://bot.example.com",
            "WEBHOOK_URL: 'http://bot.example.com' is not an https://",
        ),
        ("LLM_BASE_URL", "localhost:8000/v1", "LLM_BASE_URL: 'localhost:8000/v1' is not an http"),
    ],
)
def test_bad_environment_values_name_the_variable(name: str, value: str, expected: str) -> None:
    [problem] = env_problems({name: value})
    assert problem.startswith(f"environment: {expected}")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TELEGRAM_BOT_TOKEN", "12345 AAsecretTokenValue"),
        ("LLM_API_KEY", "sk-secret\nKeyValue"),
        ("WEBHOOK_SECRET", "secret!value with spaces"),
        ("WEBHOOK_SECRET", "s" * 257),
    ],
)
def test_bad_secrets_are_named_but_never_echoed(name: str, value: str) -> None:
    [problem] = env_problems({name: value})
    assert problem.startswith(f"environment: {name}:")
    for fragment in value.split():
        assert fragment[:6] not in problem


def test_all_environment_problems_are_reported_at_once() -> None:
    problems = env_problems({"STAFF_CHAT_ID": "abc", "HTTP_PORT": "99999", "ADMIN_USER_IDS": "1,x"})
    assert len(problems) == 3


# --- check --------------------------------------------------------------------------------


def test_check_reports_every_file_sorted_by_path_and_line() -> None:
    problems = check(BROKEN / "config", BROKEN / "faq", {"HTTP_PORT": "0"})
    keys = [(p.path, p.line or 0) for p in problems]
    assert keys == sorted(keys)
    paths = {Path(p.path).name for p in problems}
    assert paths >= {
        "bot.yaml",
        "persona.yaml",
        "bad_indent.yaml",
        "duplicate_a.yaml",
        "duplicate_b.yaml",
        "missing_answer.yaml",
        "misspelt_key.yaml",
        "three_problems.yaml",
        "environment",
    }


def test_check_needs_a_persona_and_at_least_one_faq_file(tmp_path: Path) -> None:
    (tmp_path / "faq").mkdir()
    problems = messages_of(check(tmp_path, tmp_path / "faq", {}))
    assert problems == [
        f"{tmp_path / 'faq'}: no FAQ files (*.yaml) in this folder",
        f"{tmp_path / 'persona.yaml'}: file not found",
    ]


def test_check_never_raises_on_unreadable_content(tree: Path) -> None:
    (tree / "faq" / "binary.yaml").write_bytes(b"faq:\n  - id: \xff\xfe\n")
    (tree / "config" / "persona.yaml").write_text("name: !!python/object:os.system x\n")
    (tree / "faq" / "tagged.yaml").write_text(
        "faq: [{id: a, question: q, answer: !!binary aGk=}]\n"
    )
    problems = messages_of(check(tree / "config", tree / "faq", {}))
    assert any("binary.yaml:2: not valid UTF-8" in p for p in problems)
    assert any("persona.yaml:1: name: unsupported YAML tag" in p for p in problems)
    assert any("tagged.yaml:1: answer: expected a string" in p for p in problems)
