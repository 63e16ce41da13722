"""Files in the Bot API double: customers sending photos, voice notes and documents, and the
bot fetching them with ``getFile`` and the file download path.

As on the real server, ``getFile`` answers with a ``file_path`` and refuses files over
20 MB ("file is too big"); the bytes are then served at ``{base_file_url}{token}/{file_path}``.
Tests can make downloads fail or stall, and see which files the bot downloaded.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.telegram_state import UserLike, bad_request

if TYPE_CHECKING:
    from tests.fakes.telegram_api import FakeTelegram

# Telegram's cloud Bot API hands bots files of up to 20 MB.
MAX_DOWNLOAD = 20 * 1024 * 1024
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64


class FileServing:
    """Mixin for FakeTelegram: media messages from customers, getFile and downloads."""

    downloads: list[str]  # file_ids, in the order the bot downloaded them
    _download_faults: list[int]
    download_delay: float

    def _init_files(self: FakeTelegram) -> None:
        self.downloads = []
        self._download_faults = []
        self.download_delay = 0.0

    # ------------------------------------------------------------------ controls

    def fail_downloads(self: FakeTelegram, status: int = 500, count: int = 1) -> None:
        """Answer the next `count` file downloads with `status` instead of the bytes."""
        self._download_faults.extend([status] * count)

    def delay_downloads(self: FakeTelegram, seconds: float) -> None:
        """Serve file bytes only after `seconds`, e.g. to trigger the bot's download timeout."""
        self.download_delay = seconds

    # ------------------------------------------------------------------ getFile & download

    async def api_getFile(self: FakeTelegram, p: dict, files: dict) -> Any:
        meta = self._files_meta.get(p.get("file_id") or "")
        if meta is None:
            raise bad_request("invalid file_id")
        if meta.get("file_size", 0) > MAX_DOWNLOAD:
            raise bad_request("file is too big")
        return {
            "file_id": meta["file_id"],
            "file_unique_id": meta["file_unique_id"],
            "file_size": meta.get("file_size", 0),
            "file_path": self._file_path(meta["file_id"]),
        }

    async def _handle_file(self: FakeTelegram, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        found = [f for f in self._file_data if self._file_path(f) == path]
        if not found:
            return web.Response(status=404, text="Not Found")
        file_id = found[0]
        data = self._file_data[file_id][0]
        if self.download_delay:
            await asyncio.sleep(self.download_delay)
        if self._download_faults:
            status = self._download_faults.pop(0)
            return web.json_response(
                {"ok": False, "error_code": status, "description": "Internal Server Error"},
                status=status,
            )
        self.downloads.append(file_id)
        self._changed()
        return web.Response(body=data, content_type="application/octet-stream")

    # ------------------------------------------------------------------ customers sending

    def _media_meta(
        self: FakeTelegram, kind: str, data: bytes, declared_size: int | None, **extra: Any
    ) -> dict:
        """A file's Bot API object; `declared_size` claims a size other than the bytes'."""
        meta = self.add_file(data, kind=kind, **extra)
        if declared_size is not None:
            meta["file_size"] = declared_size
            self._files_meta[meta["file_id"]]["file_size"] = declared_size
        return meta

    def _with_caption(
        self: FakeTelegram, chat_id: int, user: UserLike, caption: str | None, **content: Any
    ) -> int:
        if caption:
            content["caption"] = caption
        return self.user_message(chat_id, user, **content)

    def user_photo(
        self: FakeTelegram,
        chat_id: int,
        user: UserLike = None,
        caption: str | None = None,
        data: bytes = JPEG,
        sizes: tuple[tuple[int, int], ...] = ((90, 68), (320, 240), (800, 600), (1280, 960)),
        declared_size: int | None = None,
    ) -> int:
        """A photo as Telegram delivers it: one PhotoSize per resolution, smallest first."""
        photo = []
        for width, height in sizes:
            meta = self._media_meta("photo", data, declared_size)
            meta.update(width=width, height=height)
            self._files_meta[meta["file_id"]].update(width=width, height=height)
            photo.append(meta)
        return self._with_caption(chat_id, user, caption, photo=photo)

    def user_document(
        self: FakeTelegram,
        chat_id: int,
        user: UserLike = None,
        file_name: str = "invoice.pdf",
        caption: str | None = None,
        data: bytes = b"%PDF-1.4",
        mime_type: str = "application/pdf",
        declared_size: int | None = None,
    ) -> int:
        meta = self._media_meta(
            "document", data, declared_size, file_name=file_name, mime_type=mime_type
        )
        return self._with_caption(chat_id, user, caption, document=meta)

    def user_voice(
        self: FakeTelegram,
        chat_id: int,
        user: UserLike = None,
        duration: int = 3,
        data: bytes = b"OggS",
        caption: str | None = None,
        declared_size: int | None = None,
    ) -> int:
        """A voice note (OGG/Opus). The LLM double "hears" the bytes after the OggS header."""
        meta = self._media_meta("voice", data, declared_size, mime_type="audio/ogg")
        meta["duration"] = duration
        return self._with_caption(chat_id, user, caption, voice=meta)

    def user_audio(
        self: FakeTelegram,
        chat_id: int,
        user: UserLike = None,
        duration: int = 30,
        data: bytes = b"ID3\x04",
        mime_type: str = "audio/mpeg",
        file_name: str = "recording.mp3",
        caption: str | None = None,
    ) -> int:
        meta = self._media_meta("audio", data, None, mime_type=mime_type, file_name=file_name)
        meta["duration"] = duration
        return self._with_caption(chat_id, user, caption, audio=meta)

    def user_video(
        self: FakeTelegram,
        chat_id: int,
        user: UserLike = None,
        duration: int = 5,
        data: bytes = b"\x00\x00\x00\x18ftypmp42",
        caption: str | None = None,
    ) -> int:
        meta = self._media_meta("video", data, None, mime_type="video/mp4")
        meta["duration"] = duration
        return self._with_caption(chat_id, user, caption, video=meta)
