"""The repeating job that reminds staff of waiting tickets and tells waiting customers.

Both sweeps are Telegram-free (``bot.sla``, ``bot.customer_waits``); this only runs
them on python-telegram-bot's job queue with the desk's stores and sends.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from telegram.ext import Application, ContextTypes

from bot.customer_waits import sweep_customers
from bot.settings import Settings
from bot.sla import sweep
from bot.telegram.desk import TelegramDesk

log = logging.getLogger(__name__)


def schedule_reminders(app: Application, settings: Settings) -> None:
    """Look for tickets waiting too long every ``support.sla_check_seconds``."""
    support = settings.support
    timed = (support.sla_minutes, support.unclaimed_notice_minutes, support.auto_close_hours)
    if not any(value > 0 for value in timed) or app.job_queue is None:
        return
    interval = settings.support.sla_check_seconds
    app.job_queue.run_repeating(_remind, interval=interval, first=interval, name="sla_reminders")


async def _remind(context: ContextTypes.DEFAULT_TYPE) -> None:
    desk: TelegramDesk | None = context.application.bot_data.get("desk")
    services = context.application.bot_data.get("services")
    if desk is None or services is None:
        return
    try:
        await sweep(
            services.settings,
            desk.tickets,
            desk.conversations,
            desk.knowledge.current.persona,
            desk.post,
            datetime.now(UTC),
        )
    except Exception:  # the next run tries again; a reminder is never worth a crash
        log.exception("could not send ticket reminders")
    try:
        await sweep_customers(
            services.settings,
            desk.tickets,
            desk.conversations,
            desk.knowledge.current.persona,
            desk.to_customer,
            desk.ticket_ended,
            datetime.now(UTC),
            services.core.languages,
        )
    except Exception:
        log.exception("could not tell waiting customers or close left tickets")
