"""What goes into the core and what comes out of it, whatever the door.

A door (the Telegram adapter, the terminal) turns its input into ``Incoming``
and plain calls, and acts on the ``Outcome``: it sends the replies, with their
buttons, and records what it must. ``Path`` says how a message was answered;
its values are stored, logged and counted in ``/metrics``, so they never change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from bot.knowledge.faq import SearchResult
from bot.prompt import Turn
from bot.store.conversations import Customer
from bot.store.tickets import Ticket

if TYPE_CHECKING:
    from bot.knowledge.live import Knowledge
    from bot.media import Attachment
    from bot.store.inbox import ReplyJournal

# Callback data of the buttons the core asks for; the adapter passes them back verbatim.
HUMAN_BUTTON = "human"
FEEDBACK_PREFIX = "fb"
RATING_PREFIX = "rate"
WITHDRAW_BUTTON = "withdraw"  # the customer takes back a request nobody has taken yet
KEEP_BUTTON = "keep"  # ... or, asked on /reset, keeps it
FORGET_PREFIX = "forget"  # "forget:yes" / "forget:no", the answer to /forget
CHOICE_PREFIX = "faq"  # "faq:LANG:ID": the customer picks an FAQ entry offered when unsure
CALLBACK_DATA_LIMIT = 64  # bytes of a button's data, as Telegram allows


def choice_data(language: str, entry_id: str) -> str | None:
    """A choice button's data, ``faq:LANG:ID``; None when it would not fit Telegram's
    64 bytes (an entry with a very long id is not offered)."""
    data = f"{CHOICE_PREFIX}:{language}:{entry_id}"
    return data if len(data.encode("utf-8")) <= CALLBACK_DATA_LIMIT else None


def read_choice(data: str) -> tuple[str, str] | None:
    """The language and entry id of a choice button's data; None for anything else."""
    prefix, _, rest = data.partition(":")
    language, _, entry_id = rest.partition(":")
    if prefix != CHOICE_PREFIX or not entry_id or len(language) > 16:
        return None
    return language, entry_id


class Path(StrEnum):
    """How the core dealt with a message; a member is its stored and logged string."""

    LLM = "llm"
    FAQ = "faq"
    HANDOFF = "handoff"
    RELAY = "relay"
    NOTICE = "notice"
    SMALL_TALK = "small_talk"
    CHOICES = "choices"  # FAQ-only and unsure: entries offered to pick from
    DEFERRED = "deferred"  # over the rate limit: answered later, nothing said now
    IGNORED = "ignored"  # a button press that does nothing (forged, or not this chat's)
    NONE = "none"


@dataclass(frozen=True)
class Incoming:
    """One message from a customer, whatever the door. ``kind`` is 'text' or the media type;
    a photo's or file's caption is ``text``. ``edited``: a new version of the message
    ``message_id``, stored beside the first rather than as the same message."""

    customer: Customer
    text: str | None
    kind: str = "text"
    message_id: int | None = None
    attachments: tuple[Attachment, ...] = ()
    edited: bool = False


@dataclass(frozen=True)
class Button:
    label: str
    data: str


@dataclass
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()
    stored_id: int | None = None  # our messages.id, so the adapter can record Telegram's id
    markdown: bool = False  # an answer (model or FAQ) in Markdown, shown formatted


@dataclass
class Outcome:
    replies: list[Reply] = field(default_factory=list)
    path: Path = Path.NONE
    ticket: Ticket | None = None
    # The message itself is answered later, through the ``later`` callback of ``handle``:
    # a door with a durable inbox keeps it pending until then.
    answered_later: bool = False


@dataclass(frozen=True)
class TicketContext:
    """What staff see on a new ticket's card."""

    customer: Customer
    reason: str
    summary: str
    last_messages: tuple[Turn, ...]
    faq_matches: tuple[SearchResult, ...]
    writes_in: str = ""  # the language the customer's messages are in, when told


class Retriever(Protocol):
    """Re-ranks FAQ matches by meaning (``bot.knowledge.embeddings.SemanticSearch``)."""

    async def search(
        self,
        knowledge: Knowledge,
        query: str,
        top_k: int,
        context: str | None = None,
        in_conversation: bool = False,
    ) -> list[SearchResult]: ...

    def words_decide(self, knowledge: Knowledge, text: str) -> bool: ...


class StaffDesk(Protocol):
    """Where tickets go to people: the Telegram staff group. None in the terminal."""

    async def ticket_opened(self, ticket: Ticket, context: TicketContext) -> None: ...

    async def ticket_escalated_again(self, ticket: Ticket, reason: str) -> None: ...

    async def ticket_ended(self, ticket: Ticket, note: str) -> None:
        """The ticket ended without staff (withdrawn, closed for silence, deleted): post
        the note in its place and close it."""
        ...

    async def relay_from_customer(
        self, ticket: Ticket, incoming: Incoming, journal: ReplyJournal | None = None
    ) -> None:
        """``journal``: the update's, so that a crash replay does not relay it twice."""
        ...


StreamCallback = Callable[[str], Awaitable[None]]
DoneCallback = Callable[[], None]
# Delivers the outcome of a message answered later, once the customer's rate limit allows.
LaterCallback = Callable[[Outcome], Awaitable[None]]
