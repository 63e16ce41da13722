"""Photos, voice notes and files: what the bot can do with each before the core reads the text.

No Telegram here. The adapter describes attachments as ``Attachment`` and hands
over a ``MediaFetcher`` for the bytes, so the terminal and tests drive the same
decisions. Bytes live only in memory for one message: photos go to a model that
can see, voice notes to a transcription service, and nothing is written to disk.
Whatever cannot be used is said truthfully to the customer, and the message and
its attachments are stored either way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot.images import IMAGE_TYPES, ImageSize, image_content_part, image_type, pick_size
from bot.settings import Settings
from bot.transcription import Transcriber, TranscriptionError

if TYPE_CHECKING:
    from bot.core import Incoming
    from bot.knowledge.persona import Persona

log = logging.getLogger(__name__)

AUDIO_KINDS = ("voice", "audio")
# Containers OpenAI-compatible transcription endpoints take, with the file name they expect.
AUDIO_TYPES = {
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/m4a": "m4a",
    "audio/x-m4a": "m4a",
    "audio/aac": "m4a",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/webm": "webm",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
}


@dataclass(frozen=True)
class Attachment:
    """A photo, voice note or file, described without Telegram types. The caption is the
    message's text. ``transcript`` and ``outcome`` are filled in once the bot has tried it."""

    kind: str  # photo, voice, audio, video, video_note, animation, document
    file_id: str
    file_unique_id: str = ""
    size: int | None = None
    duration: int | None = None
    mime: str | None = None
    file_name: str | None = None
    sizes: tuple[ImageSize, ...] = ()  # photos: every size, smallest first
    transcript: str | None = None
    outcome: str | None = None


class MediaFetcher(Protocol):
    """Gets a file's bytes from wherever the door keeps them (Telegram's getFile)."""

    async def fetch(self, file_id: str, max_bytes: int) -> bytes: ...


class MediaError(Exception):
    """A file the bot could not use. ``reason``: too_large, empty, corrupt, unsupported,
    unavailable (the download failed) or timeout."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class Prepared:
    """A message made ready for the core: its text (caption or transcript), images for the
    model, or a notice to send instead of an answer (a persona key and its placeholders)."""

    incoming: Incoming
    images: tuple[tuple[str, bytes], ...] = ()  # (mime type, bytes)
    notice: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    warning: str | None = None  # said before the answer, when only the caption could be used

    def notice_text(self, persona: Persona) -> str:
        return persona.message(self.notice or "unsupported_media", **self.values)

    def image_parts(self) -> list[dict[str, Any]]:
        return [image_content_part(mime, data) for mime, data in self.images]


# Persona keys for files the bot could not use, by MediaError.reason.
_NOTICES = {
    "too_large": "media_too_large",
    "empty": "media_unreadable",
    "corrupt": "media_unreadable",
    "unsupported": "media_unsupported",
    "unavailable": "media_download_failed",
    "timeout": "media_download_failed",
}


class MediaHandler:
    """Turns an incoming message with attachments into text, images or a truthful notice."""

    def __init__(
        self,
        settings: Settings,
        transcriber: Transcriber | None = None,
        fetcher: MediaFetcher | None = None,
        observer: Any = None,
    ):
        self.settings = settings
        self.transcriber = transcriber
        self.fetcher = fetcher  # given by a door that can download (Telegram)
        self.observer = observer  # bot.metrics.BotMetrics when the bot serves /metrics
        self.vision = settings.llm.vision and settings.env.llm_configured

    @property
    def max_bytes(self) -> int:
        return int(self.settings.media.max_download_mb * 1024 * 1024)

    async def aclose(self) -> None:
        if self.transcriber is not None:
            await self.transcriber.aclose()

    async def prepare(self, incoming: Incoming) -> Prepared:
        """Decide what the core answers: the caption or transcript as text, or a notice."""
        text = (incoming.text or "").strip()
        if not incoming.attachments:
            if incoming.kind != "text" or not text:
                return Prepared(incoming, notice="unsupported_media")
            return Prepared(incoming)
        attachment = incoming.attachments[0]
        if attachment.kind in AUDIO_KINDS:
            return await self._listen(incoming, attachment, text)
        if self.vision and is_image(attachment):
            return await self._look(incoming, attachment, text)
        if text:
            return self._done(incoming, attachment, "attached")
        if attachment.kind == "photo" or is_image(attachment):
            return self._refuse(incoming, attachment, "no_vision", "media_no_vision")
        return self._refuse(incoming, attachment, "kept", "media_file_kept")

    async def for_staff(self, incoming: Incoming) -> Incoming:
        """With a ticket open staff answer, not the bot: only voice notes get a transcript."""
        if not incoming.attachments:
            return incoming
        attachment = incoming.attachments[0]
        if attachment.kind not in AUDIO_KINDS or self.transcriber is None:
            return self._record(incoming, attachment, "relayed")
        try:
            transcript = await self._transcribe(attachment)
        except (MediaError, TranscriptionError) as error:
            log.info("no transcript for staff in chat %s: %s", incoming.customer.chat_id, error)
            return self._record(incoming, attachment, _reason(error))
        attachment = dataclasses.replace(attachment, transcript=transcript)
        incoming = dataclasses.replace(incoming, text=_said(incoming.text, transcript))
        return self._record(incoming, attachment, "transcribed")

    # -- photos -----------------------------------------------------------------------

    async def _look(self, incoming: Incoming, attachment: Attachment, text: str) -> Prepared:
        file_id, size = attachment.file_id, attachment.size
        if attachment.sizes:
            chosen = pick_size(attachment.sizes, self.settings.llm.vision_max_pixels)
            file_id, size = chosen.file_id, chosen.size
        try:
            if attachment.kind == "document" and attachment.mime not in IMAGE_TYPES:
                raise MediaError("unsupported", attachment.mime or "unknown type")
            data = await self._fetch(file_id, size)
            mime = image_type(data)
            if mime is None:
                raise MediaError("corrupt", "not a JPEG, PNG or WebP image")
        except MediaError as error:
            log.info("photo in chat %s not used: %s", incoming.customer.chat_id, error)
            if text:
                prepared = self._done(incoming, attachment, error.reason)
                prepared.warning = "media_caption_only"
                return prepared
            return self._problem(incoming, attachment, error)
        prepared = self._done(incoming, attachment, "seen")
        prepared.images = ((mime, data),)
        return prepared

    # -- voice notes and audio --------------------------------------------------------

    async def _listen(self, incoming: Incoming, attachment: Attachment, text: str) -> Prepared:
        if self.transcriber is None:
            if text:  # an audio file with a caption: the caption is the question
                return self._done(incoming, attachment, "attached")
            return self._refuse(incoming, attachment, "no_transcription", "voice_no_transcription")
        limit = self.settings.media.max_voice_seconds
        if attachment.duration is not None and attachment.duration > limit:
            prepared = self._refuse(incoming, attachment, "too_long", "voice_too_long")
            prepared.values = {"seconds": attachment.duration, "limit": limit}
            return prepared
        try:
            transcript = await self._transcribe(attachment)
        except MediaError as error:
            return self._problem(incoming, attachment, error)
        except TranscriptionError as error:
            log.warning("transcription failed in chat %s: %s", incoming.customer.chat_id, error)
            return self._refuse(incoming, attachment, _reason(error), "voice_failed")
        if not transcript:
            return self._refuse(incoming, attachment, "silent", "voice_failed")
        attachment = dataclasses.replace(attachment, transcript=transcript)
        prepared = self._done(incoming, attachment, "transcribed")
        prepared.incoming = dataclasses.replace(prepared.incoming, text=_said(text, transcript))
        return prepared

    async def _transcribe(self, attachment: Attachment) -> str:
        assert self.transcriber is not None
        mime = attachment.mime or ("audio/ogg" if attachment.kind == "voice" else None)
        extension = AUDIO_TYPES.get(mime or "")
        if extension is None:
            raise MediaError("unsupported", mime or "unknown audio type")
        data = await self._fetch(attachment.file_id, attachment.size)
        return await self.transcriber.transcribe(data, f"{attachment.kind}.{extension}", mime)

    # -- shared -----------------------------------------------------------------------

    async def _fetch(self, file_id: str, declared_size: int | None) -> bytes:
        """Download within the size cap and the timeout; an empty file is an error too."""
        if declared_size is not None and declared_size > self.max_bytes:
            raise MediaError("too_large", f"{declared_size} bytes")
        if self.fetcher is None:
            raise MediaError("unavailable", "this door cannot download files")
        try:
            async with asyncio.timeout(self.settings.media.download_timeout_seconds):
                data = await self.fetcher.fetch(file_id, self.max_bytes)
        except TimeoutError:
            raise MediaError("timeout", "the download took too long") from None
        if len(data) > self.max_bytes:
            raise MediaError("too_large", f"{len(data)} bytes")
        if not data:
            raise MediaError("empty", "zero bytes")
        return data

    def _problem(self, incoming: Incoming, attachment: Attachment, error: MediaError) -> Prepared:
        prepared = self._refuse(incoming, attachment, error.reason, _NOTICES[error.reason])
        if error.reason == "too_large":
            prepared.values = {"limit_mb": f"{self.settings.media.max_download_mb:g}"}
        elif error.reason == "unsupported":
            prepared.values = {"format": attachment.mime or attachment.kind}
        return prepared

    def _refuse(
        self, incoming: Incoming, attachment: Attachment, outcome: str, notice: str
    ) -> Prepared:
        return Prepared(self._record(incoming, attachment, outcome), notice=notice)

    def _done(self, incoming: Incoming, attachment: Attachment, outcome: str) -> Prepared:
        return Prepared(self._record(incoming, attachment, outcome))

    def _record(self, incoming: Incoming, attachment: Attachment, outcome: str) -> Incoming:
        """Note the outcome on the attachment (it is stored with it) and count it."""
        if self.observer is not None:
            self.observer.media(attachment.kind, outcome)
        done = dataclasses.replace(attachment, outcome=outcome)
        return dataclasses.replace(incoming, attachments=(done, *incoming.attachments[1:]))


def _said(caption: str | None, transcript: str) -> str:
    """What a voice message or audio file says: its caption, if any, then the transcript."""
    caption = (caption or "").strip()
    return f"{caption}\n\n{transcript}" if caption else transcript


def _reason(error: Exception) -> str:
    if isinstance(error, TranscriptionError):
        return f"transcription_{error.reason}"
    return getattr(error, "reason", "failed")


def is_image(attachment: Attachment) -> bool:
    """A photo, or a file sent as a document whose type says it is a picture."""
    return attachment.kind == "photo" or (
        attachment.kind == "document" and (attachment.mime or "").startswith("image/")
    )
