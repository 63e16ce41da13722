"""Logging for operators: one line per event, readable text or JSON, and never a secret.

The bot token sits in every Bot API URL, and libraries log URLs (httpx at
INFO, tracebacks of network errors). Rather than trusting every call site,
a filter on the handler rewrites each record with the token and the LLM API key
replaced, so a secret cannot reach the log whichever library wrote it.

Customer message text is personal data: it is only logged when
``logging.log_message_text`` is switched on (see ``message_text``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO

from bot.settings import LoggingSettings, Settings

_log_message_text = False

# Noisy libraries: httpx logs every request URL at INFO, and the Bot API URL holds the token.
_QUIET = ("httpx", "httpcore", "aiohttp.access", "apscheduler")


def message_text(text: str | None) -> str:
    """What a log line may say about a customer's message: the text only when allowed."""
    if text is None:
        return "(no text)"
    if _log_message_text:
        return repr(text)
    return f"({len(text)} characters)"


class RedactSecrets(logging.Filter):
    """Replaces secrets in the message, its arguments and any traceback of a record."""

    def __init__(self, secrets: Iterable[str | None]):
        super().__init__()
        found: set[str] = set()
        for secret in secrets:
            if not secret or len(secret) < 6:
                continue
            found.add(secret)
            # The part of a bot token after the colon is the secret half; catch it alone too.
            _, colon, tail = secret.partition(":")
            if colon and len(tail) >= 8:
                found.add(tail)
        self.secrets = sorted(found, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "[REDACTED]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is logged as written, still redacted
            message = str(record.msg)
        redacted = self.redact(message)
        if redacted != message or record.args:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class OneLineFormatter(logging.Formatter):
    """Human-readable, with tracebacks folded onto the same line (``\\n`` escaped)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "").replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    """One JSON object per line for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Configure the root logger from ``settings.logging``; ``LOG_LEVEL`` overrides the level.

    Returns the handler so a caller (or a test) can remove it again.
    """
    global _log_message_text
    conf: LoggingSettings = settings.logging
    _log_message_text = conf.log_message_text
    level_name = (os.environ.get("LOG_LEVEL") or conf.level or "INFO").upper()
    level = getattr(logging, level_name, logging.INFO)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if conf.format == "json" else OneLineFormatter())
    handler.addFilter(RedactSecrets([settings.env.telegram_bot_token, settings.env.llm_api_key]))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_support_bot", False):
            root.removeHandler(old)
    handler._support_bot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    return handler
