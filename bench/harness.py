"""Processes under test and the load driver: fakes, bots, /proc readings, timings.

Every process runs on its own so that each one's CPU time and memory can be
read from /proc without the others mixed in; the driver lives in the bench
process and only talks HTTP to the fakes' control APIs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


# -------------------------------------------------------------------------- /proc


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (the bench process itself when pid is None)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / TICKS


def memory_kb(pid: int, key: str = "VmHWM") -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -------------------------------------------------------------------------- processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    info: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _python() -> str:
    return sys.executable


def start_fake(kind: str, workdir: Path, *args: str) -> Proc:
    """Start a fake and read the JSON line with its URLs."""
    log = workdir / f"fake-{kind}.log"
    popen = subprocess.Popen(
        [_python(), str(ROOT / "bench" / "fakes.py"), kind, "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        cwd=ROOT,
        text=True,
    )
    line = popen.stdout.readline() if popen.stdout else ""
    if not line:
        popen.kill()
        raise RuntimeError(f"fake {kind} did not start: {log.read_text()}")
    return Proc(f"fake-{kind}", popen, json.loads(line), log)


VECTOR_CACHE = Path(tempfile.gettempdir()) / "northwind-bench-vectors.sqlite3"


def start_bot(
    kind: str, telegram: Proc, llm: Proc, workdir: Path, wrapper: list[str] | None = None
) -> Proc:
    """Our bot (``python main.py run``) or the reference bot, on the given fakes.

    ``wrapper`` goes between the interpreter and the script, e.g. a profiler's ``-m`` call.
    """
    env = dict(os.environ)
    env.update(
        TELEGRAM_BOT_TOKEN=telegram.info["token"],
        TELEGRAM_API_BASE_URL=telegram.info["base_url"],
        LLM_BASE_URL=llm.info["base_url"],
        LLM_API_KEY="bench",
        DATABASE_PATH=str(workdir / f"{kind}.sqlite3"),
        # The FAQ is embedded once for every run, as a restarted bot finds it.
        VECTOR_CACHE_PATH=str(VECTOR_CACHE),
        CONFIG_DIR=str(ROOT / "config"),
        FAQ_DIR=str(ROOT / "faq"),
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(free_port()),  # health and metrics; never collide with anything else
        PTB_TIMEDELTA="1",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    if kind == "ours":
        command = [str(ROOT / "main.py"), "run"]
    else:
        command = [str(ROOT / "bench" / "reference_bot.py")]
    command = [_python(), *(wrapper or []), *command]
    log = workdir / f"bot-{kind}.log"
    popen = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    return Proc(f"bot-{kind}", popen, {}, log)


class Rig:
    """One scenario's processes: Telegram fake, LLM fake, one bot, and an HTTP client."""

    def __init__(
        self,
        bot: str,
        llm_delay: float = 0.0,
        enforce_limits: bool = False,
        wrapper: list[str] | None = None,
    ):
        self.kind = bot
        self.wrapper = wrapper
        self.llm_delay = llm_delay
        self.enforce_limits = enforce_limits
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-")
        self.workdir = Path(self._tmp.name)
        self.telegram: Proc | None = None
        self.llm: Proc | None = None
        self.bot: Proc | None = None
        self.http: httpx.AsyncClient | None = None
        self.injected: dict[int, list[float]] = {}

    async def __aenter__(self) -> Rig:
        extra = ["--enforce-limits"] if self.enforce_limits else []
        self.telegram = start_fake("telegram", self.workdir, *extra)
        self.llm = start_fake("llm", self.workdir, "--delay", str(self.llm_delay))
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(120.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=256),
        )
        self.bot = start_bot(self.kind, self.telegram, self.llm, self.workdir, self.wrapper)
        await self._wait_ready()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for proc in (self.bot, self.telegram, self.llm):
            if proc is not None:
                proc.stop()
        if self.http is not None:
            await self.http.aclose()
        self._tmp.cleanup()

    # -- control API --------------------------------------------------------------

    async def tg(self, what: str, body: dict | None = None, **query: Any) -> Any:
        assert self.http is not None and self.telegram is not None
        url = f"{self.telegram.info['url']}/_control/{what}"
        if body is None:
            response = await self.http.get(url, params=query)
        else:
            response = await self.http.post(url, json=body)
        data = response.json()
        if not data.get("ok"):
            raise RuntimeError(f"{what}: {data.get('description')}")
        return data.get("result")

    async def llm_control(self, what: str, body: dict | None = None) -> Any:
        assert self.http is not None and self.llm is not None
        url = f"{self.llm.info['url']}/_control/{what}"
        if body is None:
            response = await self.http.get(url)
        else:
            response = await self.http.post(url, json=body)
        return response.json().get("result")

    async def _wait_ready(self, timeout: float = 180.0) -> None:  # noqa: ASYNC109
        """The bot is ready once it starts polling, which always begins with deleteWebhook.

        (getUpdates itself is recorded only when the long poll returns.)
        """
        assert self.bot is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.bot.popen.poll() is not None:
                raise RuntimeError(f"{self.bot.name} exited:\n{self.bot.log_tail()}")
            if await self.tg("calls", method="deleteWebhook"):
                await asyncio.sleep(0.2)
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.bot.name} did not start polling:\n{self.bot.log_tail()}")

    async def send(self, chat_id: int, text: str) -> None:
        self.injected.setdefault(chat_id, []).append(time.time())
        await self.tg("user_text", {"chat_id": chat_id, "text": text})

    async def wait_chat(self, chat_id: int, count: int, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        await self.tg("wait_messages", {"chat_id": chat_id, "count": count, "timeout": timeout})

    async def wait_total(self, count: int, timeout: float = 300.0, every: float = 0.02) -> None:  # noqa: ASYNC109
        """Until the bot has sent ``count`` messages in all; polls the cheap stats query."""
        deadline = time.monotonic() + timeout
        while True:
            stats = await self.tg("stats")
            if stats["sent"] >= count:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.kind}: {stats['sent']} of {count} messages sent")
            assert self.bot is not None
            if self.bot.popen.poll() is not None:
                raise RuntimeError(f"{self.bot.name} exited:\n{self.bot.log_tail()}")
            await asyncio.sleep(every)

    async def sent_calls(self, method: str = "sendMessage") -> list[dict]:
        return [c for c in await self.tg("calls", method=method) if c["status"] == 200]

    async def reply_times(self) -> dict[int, list[float]]:
        """Arrival time of each successful sendMessage, per chat, in order."""
        times: dict[int, list[float]] = {}
        for call in await self.sent_calls():
            times.setdefault(int(call["params"]["chat_id"]), []).append(call["at"])
        return times

    async def latencies(self) -> list[float]:
        """Seconds from each injected message to the reply sent for it (k-th to k-th)."""
        replies = await self.reply_times()
        out = []
        for chat_id, sent_at in self.injected.items():
            for asked, answered in zip(sent_at, replies.get(chat_id, []), strict=False):
                out.append(answered - asked)
        return out

    def forget_injected(self) -> None:
        self.injected.clear()
