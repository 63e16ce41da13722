"""An OpenAI-compatible chat-completions and embeddings server double, over real HTTP.

The bot's LLM client is tested against the failure modes real providers show (rate limits
with Retry-After, streams cut mid-way, error objects inside a stream, malformed bodies,
requests that never answer) by scripting replies instead of waiting for them to happen.
Run it as a process (``python -m tests.fakes.llm_api --port 8082 --delay 0.5``) for
benchmarks; a JSON control API under ``/_control/`` then scripts replies and reads requests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import inspect
import itertools
import json
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

from tests.fakes.llm_context import ContextWindow, prompt_tokens
from tests.fakes.llm_media import MediaEndpoints
from tests.fakes.llm_quirks import ServerQuirks
from tests.fakes.llm_replies import (
    Reply,
    Responder,
    count_tokens,
    default_responder,
    embed,
    forced_tool_call,
    split_pieces,
)
from tests.fakes.waiting import serve_until_signalled, wait_until

__all__ = ["FakeLLM", "Reply", "embed"]

_ids = itertools.count(1)


class FakeLLM(ServerQuirks, MediaEndpoints):
    """One OpenAI-compatible endpoint; every request and its concurrency are recorded."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        delay: float = 0.0,
        model: str = "fake-model",
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self.api_key = api_key
        self.delay = delay
        self.model = model
        self.models = [model, "fake-embedding"]
        # Off by default, since most tests send whatever model config/bot.yaml names.
        self.check_models = False  # 404 model_not_found for models not in self.models
        # "native"; "ignored" (tools are dropped: plain text back); or a TOOL_SUPPORT key.
        self.tool_support = "native"
        self.server = "openai"  # "vllm", "llamacpp" or "ollama": where the context is shown
        self.context_window: int | None = None
        self.host = host
        self.port = port
        self.responder: Responder = default_responder
        self.context: ContextWindow | None = None  # set to refuse or cut oversized prompts
        self.requests: list[dict] = []
        self.embedding_requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._script: deque[Reply] = deque()
        self._hold: int | None = None
        self._hold_timeout = 5.0
        self._changed_event = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._init_media()

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client calls base_url: ``{base_url}/chat/completions``."""
        return f"{self.url}/v1"

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        for prefix in ("/v1", ""):
            app.router.add_post(f"{prefix}/chat/completions", self._handle_chat)
            app.router.add_post(f"{prefix}/embeddings", self._handle_embeddings)
            app.router.add_get(f"{prefix}/models", self._handle_models)
            app.router.add_post(f"{prefix}/audio/transcriptions", self._handle_transcription)
        app.router.add_get("/props", self._handle_props)
        app.router.add_post("/api/show", self._handle_ollama_show)
        app.router.add_get("/_control/{what}", self._handle_control_get)
        app.router.add_post("/_control/{what}", self._handle_control_post)
        return app

    async def start(self) -> FakeLLM:
        self._changed_event = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeLLM:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ scripting

    def script(self, *replies: Reply | str) -> None:
        """Queue replies for the next requests, ahead of the responder."""
        self._script.extend(Reply.text(r) if isinstance(r, str) else r for r in replies)

    def hold_until(self, n: int, timeout: float = 5.0) -> None:
        """Keep requests waiting until n are in flight at once, proving concurrency.

        After `timeout` a held request proceeds anyway, so a serialising client shows up
        as max_in_flight < n rather than as a hung test.
        """
        self._hold = n
        self._hold_timeout = timeout

    def reset(self) -> None:
        self.requests.clear()
        self.embedding_requests.clear()
        self.headers.clear()
        self._script.clear()
        self._hold = None
        self.max_in_flight = self.in_flight
        self.responder = default_responder
        self._reset_media()

    @property
    def last_request(self) -> dict:
        return self.requests[-1]

    def _changed(self) -> None:
        self._changed_event.set()
        self._changed_event = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Return predicate()'s first truthy value, re-checked whenever a request moves."""
        return await wait_until(predicate, timeout, lambda: self._changed_event)

    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[dict]:  # noqa: ASYNC109
        await self.wait_for(lambda: len(self.requests) >= count, timeout)
        return list(self.requests)

    async def _next_reply(self, request: dict) -> Reply:
        if self._script:
            return self._script.popleft()
        reply = self.responder(request)
        if inspect.isawaitable(reply):
            reply = await reply
        if reply is None:
            reply = default_responder(request)
        reply = Reply.text(reply) if isinstance(reply, str) else reply
        if self.tool_support == "ignored":
            return Reply.text(reply.content or "Answer") if reply.tool_calls else reply
        if reply.status == 200 and not reply.tool_calls:
            return forced_tool_call(request) or reply
        return reply

    async def _gate(self) -> None:
        if self._hold is None:
            return
        hold = self._hold
        with contextlib.suppress(TimeoutError):
            await self.wait_for(
                lambda: self._hold is None or self.in_flight >= hold, self._hold_timeout
            )
        self._hold = None
        self._changed()

    # ------------------------------------------------------------------ HTTP

    def _unauthorized(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        presented = request.headers.get("Authorization", "")
        if presented == f"Bearer {self.api_key}":
            return None
        # Servers echo the key they were sent, so clients must never print these errors raw.
        key = presented.removeprefix("Bearer ")
        message = f"Incorrect API key provided: {key}." if key else "Incorrect API key provided."
        return self._error_response(Reply.http_error(401, message, code="invalid_api_key"))

    @staticmethod
    def _error_response(reply: Reply) -> web.Response:
        body = reply.error_body if reply.error_body is not None else {"error": reply.error}
        return web.json_response(body, status=reply.status, headers=reply.headers)

    async def _read_json(self, request: web.Request) -> dict | web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._error_response(
                Reply.http_error(400, "We could not parse the JSON body of your request.")
            )
        return body

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        body = await self._read_json(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return self._error_response(
                Reply.http_error(400, "[] is too short - 'messages'", code="invalid_value")
            )
        if (refusal := self._refusal(body)) is not None:
            return self._error_response(refusal)
        if (refused := self._check_content_parts(body)) is not None:
            return refused
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self._changed()
        try:
            await self._gate()
            if self.context is not None:
                refusal = self.context.refusal(body)
                if refusal is not None:
                    return self._error_response(refusal)
                body = self.context.cut(body)
            reply = await self._next_reply(body)
            if reply.hangs:
                await self._stopping.wait()
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=503)
            if self.delay + reply.delay > 0:
                await asyncio.sleep(self.delay + reply.delay)
            if reply.status != 200:
                return self._error_response(reply)
            if body.get("stream"):
                return await self._stream(request, body, reply)
            return await self._complete(request, body, reply)
        finally:
            self.in_flight -= 1
            self._changed()

    def _usage(self, request: dict, reply: Reply) -> dict:
        if reply.usage is not None:
            return dict(reply.usage)
        prompt = prompt_tokens(request)
        completion = count_tokens(reply.content or "") + sum(
            count_tokens(self._arguments(c)) for c in reply.tool_calls
        )
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    @staticmethod
    def _arguments(call: dict) -> str:
        arguments = call.get("arguments", {})
        return arguments if isinstance(arguments, str) else json.dumps(arguments)

    @staticmethod
    def _call_ids(reply: Reply, completion_id: str) -> list[str]:
        return [
            c.get("id") or f"call_{completion_id[-8:]}_{i}" for i, c in enumerate(reply.tool_calls)
        ]

    def _envelope(self, request: dict, kind: str) -> dict:
        return {
            "id": f"chatcmpl-{next(_ids):012d}",
            "object": kind,
            "created": int(time.time()),
            "model": request.get("model") or self.model,
            "system_fingerprint": "fp_fake",
        }

    async def _complete(self, request: web.Request, body: dict, reply: Reply) -> web.StreamResponse:
        response = self._envelope(body, "chat.completion")
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        if reply.tool_calls:
            ids = self._call_ids(reply, response["id"])
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": c["name"], "arguments": self._arguments(c)},
                }
                for call_id, c in zip(ids, reply.tool_calls, strict=True)
            ]
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        response["choices"] = (
            []
            if reply.empty_choices
            else [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}]
        )
        response["usage"] = self._usage(body, reply)
        if reply.stream_error is not None:
            return web.json_response({"error": reply.stream_error}, headers=reply.headers)
        text = json.dumps(response)
        if reply.malformed:
            text = text[: len(text) // 2]
        if reply.cut_after is not None:
            stream = web.StreamResponse(headers={"Content-Type": "application/json"})
            await stream.prepare(request)
            await stream.write(text[: len(text) // 2].encode())
            if request.transport is not None:
                request.transport.abort()
            return stream
        return web.Response(text=text, content_type="application/json", headers=reply.headers)

    def _chunks(self, body: dict, reply: Reply, include_usage: bool) -> Iterator[dict]:
        envelope = self._envelope(body, "chat.completion.chunk")

        def chunk(delta: dict, finish: str | None = None) -> dict:
            data = dict(envelope)
            data["choices"] = [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            ]
            if include_usage:
                data["usage"] = None
            return data

        if reply.empty_choices:
            yield {**envelope, "choices": []}
            return
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in split_pieces(reply.content or "", reply.chunks):
            yield chunk({"content": piece})
        ids = self._call_ids(reply, envelope["id"])
        for index, (call_id, call) in enumerate(zip(ids, reply.tool_calls, strict=True)):
            head = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": call["name"], "arguments": ""},
            }
            yield chunk({"tool_calls": [head]})
            for piece in split_pieces(self._arguments(call), reply.chunks or 3):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop"))
        if include_usage:
            yield {**envelope, "choices": [], "usage": self._usage(body, reply)}

    async def _stream(self, request: web.Request, body: dict, reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                **reply.headers,
            }
        )
        await response.prepare(request)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        for sent, chunk in enumerate(self._chunks(body, reply, include_usage)):
            if reply.cut_after is not None and sent >= reply.cut_after:
                if request.transport is not None:
                    request.transport.abort()
                return response
            if reply.stall_after is not None and sent >= reply.stall_after:
                await self._stopping.wait()
                if request.transport is not None:
                    request.transport.abort()
                return response
            if reply.stream_error is not None and sent >= reply.stream_error_after:
                await response.write(
                    f"data: {json.dumps({'error': reply.stream_error})}\n\n".encode()
                )
                await response.write_eof()
                return response
            if sent and reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            if reply.keep_alive:
                await response.write(b": keep-alive\n\n")
            if reply.malformed and sent == 1:
                await response.write(b'data: {"id": "chatcmpl-broken", "choices": [{"delta": \n\n')
                continue
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _handle_embeddings(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        body = await self._read_json(request)
        if isinstance(body, web.Response):
            return body
        inputs = body.get("input")
        if isinstance(inputs, str) or (
            isinstance(inputs, list) and inputs and isinstance(inputs[0], int)
        ):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            return self._error_response(Reply.http_error(400, "'input' is a required property"))
        if (unknown := self._unknown_model(body)) is not None:
            return self._error_response(unknown)
        self.embedding_requests.append(body)
        self._changed()
        if self.delay:
            await asyncio.sleep(self.delay)
        texts = [t if isinstance(t, str) else " ".join(map(str, t)) for t in inputs]
        dim = int(body.get("dimensions") or 256)
        data = []
        for index, text in enumerate(texts):
            vector: Any = embed(text, dim)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(count_tokens(t) for t in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model") or "fake-embedding",
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _handle_models(self, request: web.Request) -> web.StreamResponse:
        if (denied := self._unauthorized(request)) is not None:
            return denied
        extra = self.context.model_fields() if self.context is not None else {}
        models: list[dict[str, Any]] = [
            {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "fake", **extra}
            for name in self.models
        ]
        if self.server == "vllm":
            for entry in models:
                entry.update(owned_by="vllm", root=entry["id"], parent=None)
                entry["max_model_len"] = self.context_window
        return web.json_response({"object": "list", "data": models})

    async def _handle_props(self, request: web.Request) -> web.StreamResponse:
        if self.context is None:  # the window doctor is shown, if any (ServerQuirks)
            return await ServerQuirks._handle_props(self, request)
        props = self.context.props(self.model)
        if props is None:  # what a server without the endpoint answers
            return web.json_response({"error": "Not Found"}, status=404)
        return web.json_response(props)

    async def _handle_ollama_show(self, request: web.Request) -> web.StreamResponse:
        if self.context is None:
            return await ServerQuirks._handle_ollama_show(self, request)
        body = await self._read_json(request)
        if isinstance(body, web.Response):
            return body
        shown = self.context.ollama_show(body.get("model"))
        if shown is None:
            return web.json_response({"error": "Not Found"}, status=404)
        return web.json_response(shown)

    # ------------------------------------------------------------------ control API

    async def _handle_control_post(self, request: web.Request) -> web.StreamResponse:
        what = request.match_info["what"]
        body = await request.json() if request.can_read_body else {}
        if what == "script":
            replies = body if isinstance(body, list) else [body]
            self.script(*(Reply(**r) for r in replies))
        elif what == "delay":
            self.delay = float(body.get("seconds", 0))
        elif what == "hold":
            self.hold_until(int(body["n"]), float(body.get("timeout", 5)))
        elif what == "reset":
            self.reset()
        elif what == "configure":
            for key in ("check_models", "tool_support", "server", "context_window", "models"):
                if key in body:
                    setattr(self, key, body[key])
        elif what == "context":  # {"tokens": 4096, "server": "ollama", ...}; {} = no window
            self.context = ContextWindow(**body) if body else None
        else:
            return web.json_response({"ok": False, "description": "unknown action"}, status=404)
        return web.json_response({"ok": True})

    async def _handle_control_get(self, request: web.Request) -> web.StreamResponse:
        what = request.match_info["what"]
        if what == "requests":
            return web.json_response({"ok": True, "result": self.requests})
        if what == "stats":
            stats = {
                "requests": len(self.requests),
                "embedding_requests": len(self.embedding_requests),
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "scripted": len(self._script),
            }
            return web.json_response({"ok": True, "result": stats})
        return web.json_response({"ok": False, "description": "unknown query"}, status=404)


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeLLM(
        api_key=args.api_key, delay=args.delay, model=args.model, host=args.host, port=args.port
    )
    await serve_until_signalled(fake, "url", "base_url")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake OpenAI-compatible API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--model", default="fake-model")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
