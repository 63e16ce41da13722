"""The support persona: who the assistant is and every sentence the bot says on its own.

Admins edit ``config/persona.yaml``; nothing a customer reads is hard-coded,
so a shop can change its tone or language without touching code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime

from bot.knowledge.language import in_language

# Keys of ``messages:`` in persona.yaml. Each is required; placeholders in braces
# are filled by the bot and documented next to the key in the shipped file.
MESSAGE_KEYS: tuple[str, ...] = (
    "start",  # /start greeting; {name} {company} {first_name}
    "help",  # /help text; {name} {company}
    "reset",  # after /reset
    "no_answer",  # FAQ-only mode or LLM down, no confident FAQ match
    "unsupported_media",  # sticker, location, contact ... outside a handoff
    "media_no_vision",  # a photo without words, and no model that can see
    "media_file_kept",  # a file without words: kept for staff, not opened
    "media_caption_only",  # before an answer from the caption when the picture failed
    "media_too_large",  # {limit_mb}
    "media_unreadable",  # empty or damaged file
    "media_unsupported",  # {format}
    "media_download_failed",  # the file could not be fetched
    "voice_no_transcription",  # voice note, no transcription configured
    "voice_too_long",  # {seconds} {limit}
    "voice_failed",  # the transcription service failed or heard nothing
    "handoff_opened",  # {ticket_id} {office_hours}
    "handoff_joined",  # ticket already open; {ticket_id}
    "handoff_unavailable",  # no staff group configured; {ticket_id}
    "handoff_joined_unavailable",  # ticket already recorded, no staff group; {ticket_id}
    "llm_failed",  # apology when the model could not answer; {ticket_id} {office_hours}
    "llm_failed_unavailable",  # the same with no staff group; {ticket_id} {office_hours}
    "no_answer_unavailable",  # no confident FAQ match, no staff group
    "faq_choices",  # FAQ-only, unsure: above the entries offered as buttons
    "choice_gone",  # an offered entry was taken out of the FAQ before it was picked
    "rate_limited",  # too many messages in a minute
    "message_truncated",  # message was cut before it reached the assistant
    "ticket_closed",  # staff closed the ticket
    "rating_prompt",  # asked after a ticket is closed
    "rating_thanks",
    "feedback_thanks",
    "talk_to_person_button",  # label of the button offered when unsure
    "staff_reply_prefix",  # put before relayed staff text; may be empty
    "forget_confirm",  # /forget asks before deleting
    "forget_done",
    "forget_cancelled",
    "edited_ignored",  # an edited message is not answered again
    "staff_voice_transcript",  # staff side: {name} {transcript}
    "staff_voice_untranscribed",  # staff side: {name}
    "staff_earlier_attachments",  # staff side, before copies of what came before the ticket
    "handed_back",  # staff gave the conversation back to the bot; {ticket_id}
    "small_talk_greeting",  # reply to "hi": offers help
    "small_talk_thanks",  # reply to "thanks": closes kindly
    "small_talk_ack",  # reply to "ok", "yes", "👍"
    "small_talk_farewell",  # reply to "bye"
    "rephrase",  # once, to a message with nothing to read ("asdfgh", "???")
    "withdraw_button",  # label of the button under a handoff message that takes it back
    "keep_button",  # label of the button that keeps the request (after /reset)
    "withdrawn",  # the customer withdrew their request; {ticket_id}
    "withdraw_refused",  # a person already took the request; {ticket_id}
    "withdraw_nothing",  # /cancel with no open request
    "reset_ticket_open",  # /reset with a request open asks first; {ticket_id}
    "request_kept",  # the customer kept the request; {ticket_id}
    "unclaimed_notice",  # nobody took the ticket yet; {ticket_id} {waited} {expected}
    "unclaimed_notice_closed",  # the same outside office hours; {ticket_id} {waited} {back}
    "auto_closed",  # the ticket closed after the customer's silence; {ticket_id}
)

# Messages staff read, in the staff group: in the persona's own language whatever the
# customer writes, so ``translations:`` may not hold them.
STAFF_SIDE_MESSAGES = frozenset(
    {"staff_voice_transcript", "staff_voice_untranscribed", "staff_earlier_attachments"}
)
TRANSLATABLE_KEYS: tuple[str, ...] = tuple(k for k in MESSAGE_KEYS if k not in STAFF_SIDE_MESSAGES)

# Placeholders every message may use, and the extra ones each message is given.
# ``check`` reports any other placeholder, which the customer would otherwise
# see as written. A message not listed here gets the common ones only.
COMMON_PLACEHOLDERS: tuple[str, ...] = ("name", "company", "office_hours")
MESSAGE_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "start": ("first_name",),
    "handoff_opened": ("ticket_id",),
    "handoff_joined": ("ticket_id",),
    "handoff_unavailable": ("ticket_id",),
    "llm_failed": ("ticket_id",),
    "ticket_closed": ("ticket_id",),
    "rating_prompt": ("ticket_id",),
    "handed_back": ("ticket_id",),
    "withdrawn": ("ticket_id",),
    "withdraw_refused": ("ticket_id",),
    "reset_ticket_open": ("ticket_id",),
    "request_kept": ("ticket_id",),
    "unclaimed_notice": ("ticket_id", "waited", "expected"),
    "unclaimed_notice_closed": ("ticket_id", "waited", "back"),
    "auto_closed": ("ticket_id",),
    "handoff_joined_unavailable": ("ticket_id",),
    "llm_failed_unavailable": ("ticket_id",),
    "media_too_large": ("limit_mb",),
    "media_unsupported": ("format",),
    "voice_too_long": ("seconds", "limit"),
    "staff_voice_transcript": ("transcript",),
}

# Keys of ``staff_messages:``: what the bot says to staff in the staff group,
# each with the placeholders it is given.
STAFF_MESSAGE_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "card_title": ("ticket_id", "reason"),
    "card_customer": ("customer", "chat_id"),
    "card_language": ("language",),
    "card_summary": ("summary",),
    "card_last_messages": (),
    "card_faq_found": ("matches",),
    "card_hint": (),
    "earlier_tickets": ("count",),
    "claimed": ("ticket_id", "agent"),
    "claimed_already_yours": ("ticket_id",),
    "claim_refused": ("ticket_id", "assignee"),
    "taken_over": ("ticket_id", "agent", "assignee"),
    "closed": ("ticket_id", "agent"),
    "handed_back": ("ticket_id", "agent"),
    "already_resolved": ("ticket_id",),
    "reopened": ("ticket_id",),
    "reopen_refused": ("ticket_id",),
    "resolved_reply": ("ticket_id",),
    "no_ticket": ("command",),
    "note_saved": ("ticket_id",),
    "note_usage": (),
    "faq_sent": ("ticket_id", "faq_id"),
    "faq_unknown": ("faq_id", "suggestions"),
    "faq_usage": (),
    "customer_blocked": (),
    "not_delivered": ("error",),
    "asked_again": ("reason",),
    "relayed_text": ("customer", "text"),
    "relayed_media": ("customer", "kind"),
    "ticket_details": (
        "ticket_id",
        "status",
        "reason",
        "customer",
        "opened",
        "assignee",
        "summary",
    ),
    "nobody": (),
    "unknown_ticket": (),
    "ticket_status": ("ticket_id", "status"),
    "sla_reminder": ("ticket_id", "customer", "reason", "waited"),
    "no_open_tickets": (),
    "open_tickets": ("count",),
    "search_results": ("count", "term"),
    "search_none": ("term",),
    "console_link": ("url", "minutes"),
    "console_logged_out": ("count",),
    "withdrawn": ("ticket_id",),
    "auto_closed": ("ticket_id", "hours"),
    "forgotten": ("ticket_id",),
    "edited_message": ("text",),
    "reload_done": ("version", "entries"),
    "reload_failed": ("version", "problems"),
    "knowledge_problems": ("problems",),
}
STAFF_MESSAGE_KEYS: tuple[str, ...] = tuple(STAFF_MESSAGE_PLACEHOLDERS)

# Keys of ``commands:``: the descriptions in Telegram's command menu for customers.
COMMAND_KEYS: tuple[str, ...] = ("start", "help", "human", "reset", "cancel")


def allowed_placeholders(section: str, key: str) -> tuple[str, ...]:
    """The placeholders a message may use: ``section`` is "messages" or "staff_messages"."""
    if section == "staff_messages":
        return STAFF_MESSAGE_PLACEHOLDERS.get(key, ())
    if section == "commands":
        return ()
    return COMMON_PLACEHOLDERS + MESSAGE_PLACEHOLDERS.get(key, ())


# Names of the days, Monday first, in the texts that say when the team is back.
WEEKDAYS: tuple[str, ...] = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)


@dataclass(frozen=True)
class Translation:
    """The persona's texts in one other language; what it leaves out stays as written."""

    messages: dict[str, str] = field(default_factory=dict)
    office_hours: str = ""
    commands: dict[str, str] = field(default_factory=dict)  # the command menu's descriptions
    weekdays: tuple[str, ...] = ()


@dataclass(frozen=True)
class Persona:
    name: str
    company: str
    instructions: str  # system instructions: tone, rules, what not to do
    language_policy: str = "Answer in the language the customer writes in."
    office_hours: str = ""
    messages: dict[str, str] = field(default_factory=dict)
    # Readable names of the escalation reason codes (bot.reasons), for staff.
    reasons: dict[str, str] = field(default_factory=dict)
    staff_messages: dict[str, str] = field(default_factory=dict)
    # Telegram's command menu: command name to its description.
    commands: dict[str, str] = field(default_factory=dict)
    # ``messages`` in other languages, by language code ("zh", "de", "pt-BR"), for
    # customers who write in them; a key left out is said as in ``messages``.
    translations: dict[str, Translation] = field(default_factory=dict)
    weekdays: tuple[str, ...] = WEEKDAYS

    def speaking(self, language: str | None) -> Persona:
        """The persona saying its messages in ``language`` where it has them."""
        translation = in_language(self.translations, language)
        if translation is None:
            return self
        return dataclasses.replace(
            self,
            messages={**self.messages, **translation.messages},
            office_hours=translation.office_hours or self.office_hours,
            commands={**self.commands, **translation.commands},
            weekdays=translation.weekdays or self.weekdays,
        )

    def moment(self, when: datetime) -> str:
        """A day and time of the coming week as this persona says it ("Monday 09:00")."""
        return f"{self.weekdays[when.weekday()]} {when:%H:%M}"

    def message(self, key: str, **values: object) -> str:
        """Fill a persona message; unknown placeholders are left as written rather than crashing."""
        template = self.messages.get(key, "")
        defaults = {"name": self.name, "company": self.company, "office_hours": self.office_hours}
        return _SafeFormatter().format(template, **{**defaults, **values})

    def staff_message(self, key: str, **values: object) -> str:
        """A text for the staff group, filled like ``message``."""
        return _SafeFormatter().format(self.staff_messages.get(key, ""), **values)

    def reason_name(self, code: str) -> str:
        """What staff read for a reason code; the code itself when it has no name."""
        return self.reasons.get(code) or code


class _SafeFormatter:
    def format(self, template: str, **values: object) -> str:
        import string

        out: list[str] = []
        for literal, name, spec, conv in string.Formatter().parse(template):
            out.append(literal)
            if name is None:
                continue
            if name in values:
                out.append(format(values[name], spec or ""))
            else:
                out.append(
                    "{"
                    + name
                    + (("!" + conv) if conv else "")
                    + ((":" + spec) if spec else "")
                    + "}"
                )
        return "".join(out)
