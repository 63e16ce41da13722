"""The core's per-customer rate limit, on its own: no Telegram, a real database."""

from __future__ import annotations

import asyncio

from bot.core import Incoming
from bot.services import open_services
from bot.store.conversations import Customer


async def test_windows_of_quiet_customers_are_forgotten(make_settings, knowledge_dirs):
    # A bot meets many customers once; keeping a window for each for ever is a leak.
    config, _ = knowledge_dirs
    bot_yaml = config / "bot.yaml"
    bot_yaml.write_text(bot_yaml.read_text().replace("semantic: true", "semantic: false", 1))
    services = await open_services(make_settings())
    core = services.core
    core.rate_limit.window_seconds = 0.2
    try:
        for chat in range(1, 31):
            await core.handle(Incoming(Customer(chat_id=chat, user_id=chat), "hello there"))
        assert core.rate_limit.tracked_customers == 30
        await asyncio.sleep(0.3)
        await core.handle(Incoming(Customer(chat_id=99, user_id=99), "hello there"))
        assert core.rate_limit.tracked_customers == 1
    finally:
        await services.close()
