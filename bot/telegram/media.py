"""Telegram's side of media: describe a message's attachments for the core, fetch their bytes.

``getFile`` serves files of up to 20 MB from Telegram's cloud; the bytes are
read into memory only (``File.download_as_bytearray``), never written to disk.
"""

from __future__ import annotations

from telegram import Bot, Message
from telegram.error import BadRequest, TelegramError

from bot.images import ImageSize
from bot.media import Attachment, MediaError

# Message fields that carry a file, with the duration field they may have.
_FILE_KINDS = ("voice", "audio", "video", "video_note", "animation", "document")


def attachments_of(message: Message) -> tuple[Attachment, ...]:
    """The photo, voice note or file of a message, without Telegram types; () if none."""
    if message.photo:
        sizes = tuple(
            ImageSize(p.file_id, p.file_unique_id, p.width, p.height, p.file_size)
            for p in sorted(message.photo, key=lambda p: p.width * p.height)
        )
        largest = sizes[-1]
        return (
            Attachment(
                "photo",
                largest.file_id,
                largest.file_unique_id,
                size=largest.size,
                mime="image/jpeg",  # Telegram re-encodes every photo as JPEG
                sizes=sizes,
            ),
        )
    for kind in _FILE_KINDS:
        media = getattr(message, kind, None)
        if media is None:
            continue
        duration = getattr(media, "duration", None)
        seconds = int(duration.total_seconds()) if hasattr(duration, "total_seconds") else duration
        return (
            Attachment(
                kind,
                media.file_id,
                media.file_unique_id,
                size=media.file_size,
                duration=seconds,
                mime=getattr(media, "mime_type", None),
                file_name=getattr(media, "file_name", None),
            ),
        )
    return ()


class TelegramFetcher:
    """The core's ``MediaFetcher`` for Telegram: getFile, then the file download path."""

    def __init__(self, bot: Bot):
        self.bot = bot

    async def fetch(self, file_id: str, max_bytes: int) -> bytes:
        try:
            file = await self.bot.get_file(file_id)
        except BadRequest as error:
            if "too big" in error.message.lower():
                raise MediaError("too_large", error.message) from None
            raise MediaError("unavailable", error.message) from None
        except TelegramError as error:
            raise MediaError("unavailable", str(error)) from None
        if file.file_size is not None and file.file_size > max_bytes:
            raise MediaError("too_large", f"{file.file_size} bytes")
        try:
            data = await file.download_as_bytearray()
        except TelegramError as error:
            raise MediaError("unavailable", str(error)) from None
        return bytes(data)
