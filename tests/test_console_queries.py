"""What the web console's overview counts, read from a real database the core wrote."""

from __future__ import annotations

import pytest

from bot.console_web.queries import overview
from bot.core import Incoming
from bot.services import open_services
from bot.store.conversations import Customer

pytestmark = pytest.mark.usefixtures("warm_vector_cache")


async def test_who_answered_counts_each_path_the_core_took(make_settings):
    services = await open_services(make_settings())
    try:
        customer = Customer(chat_id=901, user_id=901, first_name="Ana")
        core = services.core
        greeted = await core.handle(Incoming(customer, "Hello!", message_id=1))
        asked = await core.handle(
            Incoming(customer, "How long does it take to get my refund?", message_id=2)
        )
        assert (greeted.path, asked.path) == ("small_talk", "faq")
        answered_by = dict((await overview(services.db, 7)).answered_by)
        assert answered_by["Small talk"] == 1
        assert answered_by["FAQ"] == 1
        assert answered_by["Handed over"] == 0
    finally:
        await services.close()
