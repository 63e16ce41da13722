"""Pictures for a model that can see: which size to send, what the bytes really are, and how
they travel (an OpenAI-compatible image content part) without being kept for audit."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

# What a model that can see accepts, by the file's own first bytes.
IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})


@dataclass(frozen=True)
class ImageSize:
    """One of the sizes Telegram keeps of a photo; each is a file of its own."""

    file_id: str
    file_unique_id: str
    width: int
    height: int
    size: int | None = None


def pick_size(sizes: tuple[ImageSize, ...], max_pixels: int) -> ImageSize:
    """The largest size within the pixel budget; the smallest when none fits."""
    fitting = [s for s in sizes if s.width * s.height <= max_pixels]
    if fitting:
        return max(fitting, key=lambda s: s.width * s.height)
    return min(sizes, key=lambda s: s.width * s.height)


def image_type(data: bytes) -> str | None:
    """The image type by the file's signature, never by what the sender claimed."""
    for signature, mime in IMAGE_SIGNATURES:
        if data.startswith(signature):
            return mime
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_content_part(mime: str, data: bytes) -> dict[str, Any]:
    """An OpenAI-compatible image content part carrying the picture itself as a data URL."""
    encoded = base64.b64encode(data).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{encoded}"}}


def without_images(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request as kept for audit: images replaced by a note of what they were.

    The database keeps file ids, never the pictures themselves.
    """
    kept = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts = [_described(part) for part in content]
            message = {**message, "content": parts}
        kept.append(message)
    return kept


def _described(part: Any) -> Any:
    if not isinstance(part, dict) or part.get("type") != "image_url":
        return part
    url = str((part.get("image_url") or {}).get("url", ""))
    head, _, body = url.partition(",")
    note = (
        f"[{head.removeprefix('data:').split(';')[0]} image, {len(body) * 3 // 4} bytes, not kept]"
    )
    return {"type": "image_url", "image_url": {"url": note}}
