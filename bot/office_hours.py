"""Office hours: is the support team at work now, and when does it start again?

Reminders and anything else that should not ping people at night ask here.
``support.office_hours`` gives one time zone, the working days and the same
start and end time on each of them.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.settings import OfficeHoursSettings, Settings

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_clock(text: str) -> time | None:
    """``"09:30"`` as a time; ``"24:00"`` as the last moment of the day; None if malformed."""
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        return None
    h, m = int(hours), int(minutes)
    if (h, m) == (24, 0):
        return time.max
    if h > 23 or m > 59:
        return None
    return time(h, m)


def problem(hours: OfficeHoursSettings) -> str | None:
    """What is wrong with the settings, in an admin's words, or None."""
    try:
        ZoneInfo(hours.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return f"timezone: unknown time zone {hours.timezone!r}; use a name such as Europe/Berlin"
    wrong = [d for d in hours.days if d not in DAY_NAMES]
    if wrong:
        return f"days: {wrong[0]!r} is not a day; use {', '.join(DAY_NAMES)}"
    start, end = parse_clock(hours.start), parse_clock(hours.end)
    if start is None or start == time.max:
        return f"start: {hours.start!r} is not a time of day such as 09:00"
    if end is None:
        return f"end: {hours.end!r} is not a time of day such as 18:00"
    if end <= start:
        return f"end: {hours.end} must be later than start {hours.start}"
    return None


def is_open(settings: Settings, now: datetime) -> bool:
    """True while the team works; ``now`` must carry its time zone (UTC is fine)."""
    hours = settings.support.office_hours
    local = now.astimezone(ZoneInfo(hours.timezone))
    if DAY_NAMES[local.weekday()] not in hours.days:
        return False
    start, end = parse_clock(hours.start), parse_clock(hours.end)
    assert start is not None and end is not None, "validated by the settings loader"
    return start <= local.time().replace(tzinfo=None) < end or (
        end == time.max and local.time() >= start
    )


def next_open(settings: Settings, now: datetime) -> datetime:
    """When the team is next at work: ``now`` itself while open; in ``now``'s time zone."""
    if is_open(settings, now):
        return now
    hours = settings.support.office_hours
    zone = ZoneInfo(hours.timezone)
    local = now.astimezone(zone)
    start = parse_clock(hours.start)
    assert start is not None
    for days_ahead in range(8):
        day = local.date() + timedelta(days=days_ahead)
        if DAY_NAMES[day.weekday()] not in hours.days:
            continue
        opening = datetime.combine(day, start, tzinfo=zone)
        if opening > local:
            return opening.astimezone(now.tzinfo)
    raise ValueError("office hours name no working day")
