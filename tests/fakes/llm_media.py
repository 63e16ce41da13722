"""Images and audio at the LLM double: image content parts in chat requests, and
``POST /v1/audio/transcriptions`` as OpenAI, Groq and local whisper servers serve it.

Image parts are checked the way OpenAI checks them (a ``data:`` URL must hold a real
JPEG, PNG, GIF or WebP, else 400) and recorded with their decoded bytes. Transcriptions
take multipart ``file`` + ``model`` (+ ``language``), refuse unknown containers with 400
and bodies over 25 MB with 413, and answer ``{"text": ...}``; replies can be scripted,
including 413, 415, 500 and requests that never answer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections import deque
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.llm_replies import Reply

if TYPE_CHECKING:
    from tests.fakes.llm_api import FakeLLM

MAX_AUDIO = 25 * 1024 * 1024
AUDIO_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")
_PART_TYPES = ("text", "image_url", "input_audio", "file")


def _is_image(data: bytes) -> bool:
    return data.startswith(_IMAGE_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


class MediaEndpoints:
    """Mixin for FakeLLM: images in chat requests and the transcription endpoint."""

    images: list[dict]  # every image part received: {"mime", "data", "detail"}
    transcription_requests: list[dict]

    def _init_media(self: FakeLLM) -> None:
        self.images = []
        self.transcription_requests = []
        self._transcripts: deque[Reply] = deque()

    def script_transcription(self: FakeLLM, *replies: Reply | str) -> None:
        """Queue transcription answers: a text, or a Reply error / hang / delay."""
        self._transcripts.extend(Reply.text(r) if isinstance(r, str) else r for r in replies)

    def _reset_media(self: FakeLLM) -> None:
        self.images.clear()
        self.transcription_requests.clear()
        self._transcripts.clear()

    # ------------------------------------------------------------------ images

    def _check_content_parts(self: FakeLLM, body: dict) -> web.Response | None:
        """A 400 for parts OpenAI would refuse; images that pass are recorded."""
        found: list[dict] = []
        for message in body["messages"]:
            content = message.get("content") if isinstance(message, dict) else None
            if not isinstance(content, list):
                continue
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in _PART_TYPES:
                    return self._error_response(
                        Reply.http_error(
                            400,
                            f"Invalid value: {kind!r}. Supported values are: "
                            + ", ".join(repr(t) for t in _PART_TYPES),
                            code="invalid_value",
                        )
                    )
                if kind != "image_url":
                    continue
                image = self._decode_image(part.get("image_url") or {})
                if image is None:
                    return self._error_response(
                        Reply.http_error(
                            400,
                            "You uploaded an unsupported image. Please make sure your image "
                            "is valid.",
                            code="invalid_image_format",
                        )
                    )
                found.append(image)
        self.images.extend(found)
        return None

    @staticmethod
    def _decode_image(image_url: dict) -> dict | None:
        url = str(image_url.get("url") or "")
        if url.startswith(("http://", "https://")):
            return {"mime": None, "data": None, "url": url, "detail": image_url.get("detail")}
        head, _, payload = url.partition(",")
        if not head.startswith("data:image/") or not head.endswith(";base64"):
            return None
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return None
        if not _is_image(data):
            return None
        mime = head[len("data:") : -len(";base64")]
        return {"mime": mime, "data": data, "url": None, "detail": image_url.get("detail")}

    # ------------------------------------------------------------------ transcriptions

    async def _handle_transcription(self: FakeLLM, request: web.Request) -> web.StreamResponse:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        if (request.content_length or 0) > MAX_AUDIO:
            return self._error_response(
                Reply.http_error(413, f"Maximum content size limit ({MAX_AUDIO}) exceeded")
            )
        if not request.content_type.startswith("multipart/form-data"):
            return self._error_response(
                Reply.http_error(400, "Could not parse multipart form", code="invalid_request")
            )
        form = await request.post()
        upload = form.get("file")
        model = form.get("model")
        if not isinstance(upload, web.FileField):
            return self._error_response(Reply.http_error(400, "'file' is a required property"))
        if not model:
            return self._error_response(Reply.http_error(400, "'model' is a required property"))
        data = upload.file.read()
        record = {
            "model": str(model),
            "language": form.get("language"),
            "response_format": form.get("response_format"),
            "filename": upload.filename,
            "content_type": upload.content_type,
            "data": data,
        }
        self.transcription_requests.append(record)
        self._changed()
        extension = (upload.filename or "").rsplit(".", 1)[-1].lower()
        if extension not in AUDIO_FORMATS:
            return self._error_response(
                Reply.http_error(
                    400, f"Invalid file format. Supported formats: {list(AUDIO_FORMATS)}"
                )
            )
        reply = self._transcripts.popleft() if self._transcripts else None
        if reply is None:
            # The double "hears" whatever follows the container's four-byte signature.
            reply = Reply.text(data[4:].decode("utf-8", "ignore").strip())
        if reply.hangs:
            await self._stopping.wait()
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            return self._error_response(reply)
        result: Any = {"text": reply.content or ""}
        return web.json_response(result)
