"""In-process doubles of the Telegram Bot API and of an OpenAI-compatible LLM server.

Both speak their real wire protocols over HTTP on 127.0.0.1, so the production clients
(python-telegram-bot, httpx) are exercised exactly as they are in deployment.
"""

import importlib
import os

# python-telegram-bot warns (and our warnings-as-errors test config fails) unless time
# periods such as RetryAfter.retry_after are timedeltas; opt in before telegram is imported.
os.environ.setdefault("PTB_TIMEDELTA", "1")

# Imported lazily so `python -m tests.fakes.telegram_api` does not load its module twice.
_EXPORTS = {
    "Call": "tests.fakes.telegram_api",
    "FakeTelegram": "tests.fakes.telegram_api",
    "TgUser": "tests.fakes.telegram_api",
    "FakeLLM": "tests.fakes.llm_api",
    "Reply": "tests.fakes.llm_api",
    "embed": "tests.fakes.llm_api",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(name)
    return getattr(importlib.import_module(_EXPORTS[name]), name)
