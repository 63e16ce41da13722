"""The Bot API methods the double implements, with the real server's validation and errors.

Each ``api_<methodName>`` coroutine receives the decoded parameters and uploaded files and
returns the ``result`` value, or raises ApiError. State lives on FakeTelegram.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from tests.fakes.telegram_entities import read_entities
from tests.fakes.telegram_markup import MarkupError, parse_text
from tests.fakes.telegram_state import ApiError, ChatState, bad_request, snapshot

if TYPE_CHECKING:
    from tests.fakes.telegram_api import FakeTelegram

Params = dict[str, Any]
Files = dict[str, tuple[bytes, str | None, str | None]]

MAX_TEXT = 4096
MAX_CAPTION = 1024
CONTENT_KEYS = (
    "text",
    "entities",
    "photo",
    "document",
    "voice",
    "audio",
    "video",
    "animation",
    "sticker",
    "video_note",
    "caption",
    "caption_entities",
    "location",
    "contact",
    "venue",
    "dice",
)
MEDIA_KINDS = ("photo", "document", "voice", "audio", "video", "animation", "sticker", "video_note")
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)


def int_param(params: Params, key: str, required: bool = True) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        if required:
            raise bad_request(
                f"{key} is empty" if key != "message_id" else "message identifier is not specified"
            )
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {key} specified") from None


class BotApiMethods:
    """Mixin holding the method implementations; see FakeTelegram for the state."""

    # ------------------------------------------------------------------ helpers

    def _formatted(
        self: FakeTelegram, p: Params, key: str, entities_key: str, limit: int, required: bool
    ) -> tuple[str, list[dict]]:
        raw = "" if p.get(key) is None else str(p.get(key))
        if p.get(entities_key) and not p.get("parse_mode"):
            text, entities = raw, read_entities(raw, p[entities_key])
        else:
            try:
                text, entities = parse_text(raw, p.get("parse_mode"))
            except MarkupError as exc:
                raise bad_request(f"can't parse entities: {exc}") from None
            except ValueError:
                raise bad_request("unsupported parse_mode") from None
        if required and not text.strip():
            raise bad_request("message text is empty")
        if len(text) > limit:  # code points: 4,096 emoji are accepted, 4,097 are not
            raise bad_request(
                "message is too long" if key == "text" else "message caption is too long"
            )
        return text, entities

    def _reply_target(self: FakeTelegram, chat: ChatState, p: Params) -> dict | None:
        params = p.get("reply_parameters") or {}
        message_id = params.get("message_id", p.get("reply_to_message_id"))
        if message_id in (None, ""):
            return None
        source_chat = chat.id if params.get("chat_id") is None else self._chat(params["chat_id"]).id
        target = self._messages.get((source_chat, int(message_id)))
        if target is None or target.get("_deleted"):
            allow = params.get("allow_sending_without_reply", p.get("allow_sending_without_reply"))
            if allow:
                return None
            raise bad_request("message to be replied not found")
        return target

    def _thread_for(
        self: FakeTelegram, chat: ChatState, p: Params, reply: dict | None
    ) -> int | None:
        thread_id = int_param(p, "message_thread_id", required=False)
        if thread_id is None and reply is not None and chat.is_forum:
            thread_id = reply.get("message_thread_id")
        if thread_id is None or not chat.is_forum:
            return thread_id
        topic = chat.topics.get(thread_id)
        if topic is None and thread_id != 1:
            raise bad_request("message thread not found")
        if topic is not None and topic.closed:
            raise bad_request("TOPIC_CLOSED")
        return thread_id

    def _bot_message(self: FakeTelegram, p: Params, content: dict) -> dict:
        """Create, store and return a message the bot sends, with reply and thread context."""
        chat = self._chat(p.get("chat_id"))
        reply = self._reply_target(chat, p)
        thread_id = self._thread_for(chat, p, reply)
        message = self._make_message(
            chat, self.bot_user, content, thread_id=thread_id, reply_to=reply
        )
        markup = p.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._store(message, outgoing=True)
        return message

    def _find_own(self: FakeTelegram, p: Params, missing: str) -> dict:
        chat = self._chat(p.get("chat_id"))
        message_id = int_param(p, "message_id")
        message = self._messages.get((chat.id, message_id))
        if message is None or message.get("_deleted"):
            raise bad_request(missing)
        if message.get("from", {}).get("id") != self.bot_user["id"]:
            raise bad_request("message can't be edited")
        return message

    def _media_content(self: FakeTelegram, kind: str, p: Params, files: Files) -> dict:
        value = p.get(kind)
        upload = None
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value[len("attach://") :])
        elif value is None:
            upload = files.get(kind)
        if upload is not None:
            data, filename, mime = upload
            meta = self.add_file(data, kind=kind, file_name=filename, mime_type=mime)
        elif isinstance(value, str) and value:
            meta = self._files_meta.get(value) or self.add_file(b"", kind=kind, file_id=value)
        else:
            raise bad_request(f"there is no {kind} in the request")
        return {kind: [meta] if kind == "photo" else meta}

    def _sent_text(self: FakeTelegram, p: Params) -> dict:
        text, entities = self._formatted(p, "text", "entities", MAX_TEXT, required=True)
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        return content

    # ------------------------------------------------------------------ bot & updates

    async def api_getMe(self: FakeTelegram, p: Params, files: Files) -> Any:
        return dict(self.bot_user)

    async def api_logOut(self: FakeTelegram, p: Params, files: Files) -> Any:
        return True

    async def api_close(self: FakeTelegram, p: Params, files: Files) -> Any:
        return True

    async def api_setWebhook(self: FakeTelegram, p: Params, files: Files) -> Any:
        url = p.get("url") or ""
        if p.get("drop_pending_updates"):
            self._pending.clear()
        self.webhook = {
            "url": url,
            "secret_token": p.get("secret_token"),
            "allowed_updates": p.get("allowed_updates"),
            "max_connections": p.get("max_connections", 40),
        }
        if url:
            self.deliver_to_webhook(url, p.get("secret_token"))
        else:
            self._stop_webhook_delivery()
        return True

    async def api_deleteWebhook(self: FakeTelegram, p: Params, files: Files) -> Any:
        if p.get("drop_pending_updates"):
            self._pending.clear()
        self.webhook = {"url": ""}
        self._stop_webhook_delivery()
        return True

    async def api_getWebhookInfo(self: FakeTelegram, p: Params, files: Files) -> Any:
        info: dict[str, Any] = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if info["url"]:
            info["max_connections"] = int(self.webhook.get("max_connections") or 40)
            if self.webhook.get("allowed_updates"):
                info["allowed_updates"] = self.webhook["allowed_updates"]
        for key in ("last_error_date", "last_error_message", "last_synchronization_error_date"):
            if self.webhook.get(key) is not None:
                info[key] = self.webhook[key]
        return info

    def set_webhook_error(
        self: FakeTelegram, message: str, date: int | None = None, url: str | None = None
    ) -> None:
        """Telegram's record of a failed webhook delivery, as getWebhookInfo reports it."""
        if url is not None:
            self.webhook["url"] = url
        self.webhook["last_error_message"] = message
        self.webhook["last_error_date"] = int(time.time()) if date is None else int(date)

    async def api_getUpdates(self: FakeTelegram, p: Params, files: Files) -> Any:
        if self.webhook.get("url"):
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int_param(p, "offset", required=False)
        limit = max(1, min(100, int_param(p, "limit", required=False) or 100))
        timeout = max(0, int_param(p, "timeout", required=False) or 0)
        if p.get("allowed_updates") is not None:
            self._allowed_updates = list(p["allowed_updates"]) or None
        if offset is not None:
            if offset < 0:
                del self._pending[: max(0, len(self._pending) + offset)]
            else:
                self._pending[:] = [u for u in self._pending if u["update_id"] >= offset]
        self._poll_generation += 1
        generation = self._poll_generation
        deadline = time.monotonic() + timeout
        self.waiting_polls += 1
        self._changed()
        try:
            while True:
                ready = [u for u in self._pending if self._allowed(u)]
                if ready:
                    return snapshot(ready[:limit])
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                event = self._changed_event
                try:
                    await asyncio.wait_for(event.wait(), remaining)
                except TimeoutError:
                    return []
                if generation != self._poll_generation:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    )
        finally:
            self.waiting_polls -= 1

    # ------------------------------------------------------------------ messages

    async def api_sendMessage(self: FakeTelegram, p: Params, files: Files) -> Any:
        return self._public(self._bot_message(p, self._sent_text(p)))

    async def api_sendMessageDraft(self: FakeTelegram, p: Params, files: Files) -> Any:
        chat = self._chat(p.get("chat_id"))
        if chat.type != "private":
            raise bad_request("TEXTDRAFT_PEER_INVALID")
        draft_id = int_param(p, "draft_id")
        if not draft_id:
            raise bad_request("draft_id must be non-zero")
        text, entities = self._formatted(p, "text", "entities", MAX_TEXT, required=False)
        self._drafts.append(
            {
                "chat_id": chat.id,
                "draft_id": draft_id,
                "text": text,
                "entities": entities,
                "message_thread_id": p.get("message_thread_id"),
            }
        )
        return True

    async def api_editMessageText(self: FakeTelegram, p: Params, files: Files) -> Any:
        if p.get("inline_message_id"):
            return True
        message = self._find_own(p, "message to edit not found")
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        content = self._sent_text(p)
        markup = p.get("reply_markup") if isinstance(p.get("reply_markup"), dict) else None
        if (
            content["text"] == message["text"]
            and content.get("entities", []) == message.get("entities", [])
            and markup == message.get("reply_markup")
        ):
            raise bad_request(NOT_MODIFIED)
        message["text"] = content["text"]
        message.pop("entities", None)
        if content.get("entities"):
            message["entities"] = content["entities"]
        message.pop("reply_markup", None)
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return self._public(message)

    async def api_editMessageCaption(self: FakeTelegram, p: Params, files: Files) -> Any:
        message = self._find_own(p, "message to edit not found")
        caption, entities = self._formatted(p, "caption", "caption_entities", MAX_CAPTION, False)
        if caption == message.get("caption", "") and p.get("reply_markup") == message.get(
            "reply_markup"
        ):
            raise bad_request(NOT_MODIFIED)
        message["caption"] = caption
        if entities:
            message["caption_entities"] = entities
        message["edit_date"] = int(time.time())
        return self._public(message)

    async def api_editMessageReplyMarkup(self: FakeTelegram, p: Params, files: Files) -> Any:
        if p.get("inline_message_id"):
            return True
        message = self._find_own(p, "message to edit not found")
        markup = p.get("reply_markup") if isinstance(p.get("reply_markup"), dict) else None
        if markup and not markup.get("inline_keyboard"):
            markup = None
        if markup == message.get("reply_markup"):
            raise bad_request(NOT_MODIFIED)
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return self._public(message)

    async def api_deleteMessage(self: FakeTelegram, p: Params, files: Files) -> Any:
        chat = self._chat(p.get("chat_id"))
        message = self._messages.get((chat.id, int_param(p, "message_id")))
        if message is None or message.get("_deleted"):
            raise bad_request("message to delete not found")
        message["_deleted"] = True
        return True

    async def api_deleteMessages(self: FakeTelegram, p: Params, files: Files) -> Any:
        chat = self._chat(p.get("chat_id"))
        for message_id in p.get("message_ids") or []:
            message = self._messages.get((chat.id, int(message_id)))
            if message is not None:
                message["_deleted"] = True
        return True

    async def api_sendChatAction(self: FakeTelegram, p: Params, files: Files) -> Any:
        chat = self._chat(p.get("chat_id"))
        action = p.get("action")
        if not action:
            raise bad_request("action is empty")
        self._chat_actions.append(
            {"chat_id": chat.id, "action": action, "message_thread_id": p.get("message_thread_id")}
        )
        return True

    async def api_copyMessage(self: FakeTelegram, p: Params, files: Files) -> Any:
        source = self._source_message(p, "message to copy not found")
        content = {k: snapshot(source[k]) for k in CONTENT_KEYS if k in source}
        if "caption" in p and "text" not in content:
            caption, entities = self._formatted(
                p, "caption", "caption_entities", MAX_CAPTION, False
            )
            content["caption"] = caption
            content.pop("caption_entities", None)
            if entities:
                content["caption_entities"] = entities
        message = self._bot_message(p, content)
        return {"message_id": message["message_id"]}

    async def api_forwardMessage(self: FakeTelegram, p: Params, files: Files) -> Any:
        source = self._source_message(p, "message to forward not found")
        content = {k: snapshot(source[k]) for k in CONTENT_KEYS if k in source}
        sender = source.get("from") or self.bot_user
        content["forward_origin"] = {
            "type": "user",
            "sender_user": snapshot(sender),
            "date": source["date"],
        }
        content["forward_date"] = source["date"]
        return self._public(self._bot_message(p, content))

    def _source_message(self: FakeTelegram, p: Params, missing: str) -> dict:
        source_chat = self._chat(p.get("from_chat_id"))
        source = self._messages.get((source_chat.id, int_param(p, "message_id")))
        if source is None or source.get("_deleted"):
            raise bad_request(missing)
        if not any(k in source for k in CONTENT_KEYS):
            raise bad_request("message can't be copied")
        return source

    async def _send_media(self: FakeTelegram, kind: str, p: Params, files: Files) -> Any:
        content = self._media_content(kind, p, files)
        caption, entities = self._formatted(p, "caption", "caption_entities", MAX_CAPTION, False)
        if caption:
            content["caption"] = caption
        if entities:
            content["caption_entities"] = entities
        return self._public(self._bot_message(p, content))

    async def api_sendPhoto(self: FakeTelegram, p: Params, files: Files) -> Any:
        return await self._send_media("photo", p, files)

    async def api_sendDocument(self: FakeTelegram, p: Params, files: Files) -> Any:
        return await self._send_media("document", p, files)

    async def api_sendVoice(self: FakeTelegram, p: Params, files: Files) -> Any:
        return await self._send_media("voice", p, files)

    async def api_sendAudio(self: FakeTelegram, p: Params, files: Files) -> Any:
        return await self._send_media("audio", p, files)

    async def api_sendVideo(self: FakeTelegram, p: Params, files: Files) -> Any:
        return await self._send_media("video", p, files)

    async def api_sendAnimation(self: FakeTelegram, p: Params, files: Files) -> Any:
        return await self._send_media("animation", p, files)

    async def api_sendSticker(self: FakeTelegram, p: Params, files: Files) -> Any:
        return await self._send_media("sticker", p, files)

    async def api_sendLocation(self: FakeTelegram, p: Params, files: Files) -> Any:
        location = {"latitude": float(p["latitude"]), "longitude": float(p["longitude"])}
        return self._public(self._bot_message(p, {"location": location}))
