"""Reading the environment: secrets and deployment details, never kept in a file.

The variables are the design's table (README, "Environment"); an empty value
counts as unset. Problems name the variable and, for secrets, never repeat the
value: ``check`` output ends up in terminals, CI logs and chat messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from bot.errors import ConfigError, Problem
from bot.settings import Environment

ENVIRONMENT = "environment"  # the "path" of problems found in environment variables

# Group and supergroup ids are negative; a positive id is a person or a bot, and the
# usual slip is copying a supergroup's id without its "-100" in front.
STAFF_CHAT_HINT = (
    "is positive, but a staff group's id is negative (supergroups start with -100, "
    "e.g. -100{}); copy the whole id, minus sign included"
)

_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_URLS = (
    ("TELEGRAM_API_BASE_URL", "telegram_api_base_url"),
    ("LLM_BASE_URL", "llm_base_url"),
    ("CONSOLE_URL", "console_url"),
)
_TEXTS = (
    ("LLM_MODEL", "llm_model"),
    ("LLM_TRANSCRIPTION_MODEL", "llm_transcription_model"),
    ("DATABASE_PATH", "database_path"),
    ("VECTOR_CACHE_PATH", "vector_cache_path"),
    ("CONFIG_DIR", "config_dir"),
    ("FAQ_DIR", "faq_dir"),
    ("HTTP_HOST", "http_host"),
)

# A reader takes the variable's value and returns (value for Environment, or a problem).
_Reader = Callable[[str], tuple[Any, str | None]]


def load_environment(environ: Mapping[str, str]) -> Environment:
    environment, problems = parse_environment(environ)
    if problems:
        raise ConfigError(problems)
    return environment


def parse_environment(environ: Mapping[str, str]) -> tuple[Environment, list[Problem]]:
    """Every variable read, every problem collected: one run shows them all."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    readers: list[tuple[str, str, _Reader]] = [
        ("TELEGRAM_BOT_TOKEN", "telegram_bot_token", _bot_token),
        ("LLM_API_KEY", "llm_api_key", _api_key),
        ("WEBHOOK_SECRET", "webhook_secret", _webhook_secret),
        *((name, attr, _http_url) for name, attr in _URLS),
        ("WEBHOOK_URL", "webhook_url", _webhook_url),
        *((name, attr, _text) for name, attr in _TEXTS),
        ("STAFF_CHAT_ID", "staff_chat_id", _staff_chat_id),
        ("ADMIN_USER_IDS", "admin_user_ids", _admin_user_ids),
        ("HTTP_PORT", "http_port", _port),
    ]
    for name, attr, read in readers:
        raw = environ.get(name, "").strip()
        if not raw:
            continue
        value, problem = read(raw)
        if problem is None:
            values[attr] = value
        else:
            problems.append(Problem(ENVIRONMENT, None, f"{name}: {problem}"))
    return Environment(**values), problems


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


def _bot_token(token: str) -> tuple[Any, str | None]:
    if ":" not in token or re.search(r"[\s/]", token):
        return None, (
            "does not look like a bot token (digits, ':', then letters); "
            "paste it exactly as @BotFather gave it (value not shown)"
        )
    return token, None


def _api_key(key: str) -> tuple[Any, str | None]:
    if re.search(r"\s", key):
        return None, "contains spaces or line breaks (value not shown)"
    return key, None


def _webhook_secret(secret: str) -> tuple[Any, str | None]:
    if _WEBHOOK_SECRET.fullmatch(secret):
        return secret, None
    return None, (
        "Telegram accepts 1-256 characters of A-Z, a-z, 0-9, '_' and '-' (value not shown)"
    )


def _http_url(url: str) -> tuple[Any, str | None]:
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return url, None
    return None, f"{url!r} is not an http:// or https:// URL"


def _webhook_url(url: str) -> tuple[Any, str | None]:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.netloc:
        return url, None
    return None, f"{url!r} is not an https:// URL; Telegram only posts to HTTPS"


def _text(text: str) -> tuple[Any, str | None]:
    return text, None


def _staff_chat_id(staff: str) -> tuple[Any, str | None]:
    if re.fullmatch(r"-\d+", staff):
        return int(staff), None
    if re.fullmatch(r"\d+", staff):
        return None, f"{staff} " + STAFF_CHAT_HINT.format(staff)
    return None, f"{staff!r} is not a chat id (an integer such as -1001234567890)"


def _admin_user_ids(admins: str) -> tuple[Any, str | None]:
    items = [item.strip() for item in admins.split(",") if item.strip()]
    wrong = [item for item in items if not re.fullmatch(r"\d+", item) or int(item) == 0]
    if wrong:
        return None, (
            f"{admins!r} is not a comma-separated list of user ids ({wrong[0]!r} is not a user id)"
        )
    return tuple(int(item) for item in items), None


def _port(port: str) -> tuple[Any, str | None]:
    if re.fullmatch(r"\d+", port) and 1 <= int(port) <= 65535:
        return int(port), None
    return None, f"{port!r} is not a port number (1-65535)"
