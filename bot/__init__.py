"""A self-hosted customer-service bot for Telegram.

The package is split by job: ``knowledge`` (persona and FAQ YAML, search),
``store`` (SQLite), ``llm`` (OpenAI-compatible client), ``core`` (the
Telegram-free conversation logic) and ``telegram`` (the python-telegram-bot
adapter). The terminal ``console`` drives the same core as Telegram does.
"""
