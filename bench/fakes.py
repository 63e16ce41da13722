"""The test doubles, run as their own processes, with two additions benchmarks need.

* The Bot API double answers ``wait_messages`` from a per-chat counter and event
  instead of re-scanning every sent message every 10 ms: with hundreds of
  customers waiting at once the scan would make the double, not the bot, the
  bottleneck being measured.
* The LLM double records, per request, when it arrived, when its first text
  token was written and when the answer was complete (``GET /_control/timings``),
  so bot overhead is latency minus the model's own time, and streaming is timed
  from the first token rather than from a guess.

Run ``python bench/fakes.py telegram --port 0 [--enforce-limits]`` or
``python bench/fakes.py llm --port 0 --delay S``; each prints one JSON line with its URLs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PTB_TIMEDELTA", "1")

from aiohttp import web  # noqa: E402

from tests.fakes.llm_api import FakeLLM  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402
from tests.fakes.waiting import serve_until_signalled  # noqa: E402


class BenchTelegram(FakeTelegram):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._sent_count: dict[int, int] = {}
        self._sent_events: dict[int, asyncio.Event] = {}

    def _store(self, message: dict, outgoing: bool) -> None:
        super()._store(message, outgoing)
        if outgoing:
            chat_id = message["chat"]["id"]
            self._sent_count[chat_id] = self._sent_count.get(chat_id, 0) + 1
            event = self._sent_events.pop(chat_id, None)
            if event is not None:
                event.set()

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[str]:
        """Wakes only when this chat gets a message; returns the count, not the texts."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._sent_count.get(chat_id, 0) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"chat {chat_id}: {self._sent_count.get(chat_id, 0)} sent")
            event = self._sent_events.setdefault(chat_id, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue
        return [str(self._sent_count[chat_id])]


_RECORD: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "bench_llm_record", default=None
)


class TimedLLM(FakeLLM):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.timings: list[dict[str, Any]] = []

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        record: dict[str, Any] = {"start": time.time(), "first_token": None, "end": None}
        _RECORD.set(record)  # each request is its own task, so its own context
        try:
            return await super()._handle_chat(request)
        finally:
            record["end"] = time.time()
            self.timings.append(record)

    def _chunks(self, body: dict, reply: Any, include_usage: bool):
        """Stamps the first text chunk once written: the stream asks for the next one
        only after the write (and after any chunk delay before it), so the stamp
        is taken when the generator resumes."""
        record = _RECORD.get()
        for chunk in super()._chunks(body, reply, include_usage):
            delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
            first = record is not None and record["first_token"] is None and delta.get("content")
            yield chunk
            if first:
                record["first_token"] = time.time()

    async def _handle_control_get(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["what"] == "timings":
            return web.json_response({"ok": True, "result": self.timings})
        return await super()._handle_control_get(request)

    async def _handle_control_post(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["what"] == "clear_timings":
            self.timings.clear()
            self.requests.clear()
            return web.json_response({"ok": True})
        return await super()._handle_control_post(request)


async def _serve(args: argparse.Namespace) -> None:
    if args.kind == "telegram":
        telegram = BenchTelegram(
            enforce_limits=args.enforce_limits, host="127.0.0.1", port=args.port
        )
        await serve_until_signalled(telegram, "url", "base_url", "token")
    else:
        llm = TimedLLM(delay=args.delay, host="127.0.0.1", port=args.port)
        await serve_until_signalled(llm, "url", "base_url")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["telegram", "llm"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--enforce-limits", action="store_true")
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
