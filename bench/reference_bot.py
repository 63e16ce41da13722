"""The bare minimum a Telegram LLM bot can be: the yardstick for our bot's own costs.

python-telegram-bot with ``concurrent_updates(True)``, one chat completion per
message through the official ``openai`` client, a plain ``reply_text``. No
storage, no ordering within a chat, no rate limiting, no retries, no FAQ: what
our bot spends beyond this is the price of those features, and the benchmark
shows it. Reads the same environment as ``python main.py run``.
"""

from __future__ import annotations

import logging
import os

from openai import AsyncOpenAI
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

client = AsyncOpenAI(
    base_url=os.environ["LLM_BASE_URL"], api_key=os.environ.get("LLM_API_KEY") or "none"
)
MODEL = os.environ.get("LLM_MODEL") or "gpt-4o-mini"


async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    completion = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": update.message.text}]
    )
    await update.message.reply_text(completion.choices[0].message.content or "")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    base = os.environ["TELEGRAM_API_BASE_URL"]
    app = (
        Application.builder()
        .token(os.environ["TELEGRAM_BOT_TOKEN"])
        .base_url(base)
        .concurrent_updates(True)
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, answer))
    app.run_polling(allowed_updates=["message"])


if __name__ == "__main__":
    main()
