"""Waiting on a fake's state (woken by its changes, re-checked every 10 ms for anything
else), and a fake serving as its own process until it is told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Callable
from typing import Any


async def wait_until(
    predicate: Callable[[], Any],
    timeout: float,  # noqa: ASYNC109
    changed: Callable[[], asyncio.Event],
    describe: Callable[[], str] = lambda: "",
) -> Any:
    """Return predicate()'s first truthy value; ``changed()`` gives the event set on a change.

    The 10 ms re-check covers predicates that look at state outside the double.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError(f"condition not met within {timeout}s{describe()}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed().wait(), min(remaining, 0.01))


async def serve_until_signalled(fake: Any, *shown: str) -> None:
    """Start ``fake``, print the named attributes (its address) as one JSON line for the
    process that launched it, and serve until SIGINT or SIGTERM."""
    await fake.start()
    print(json.dumps({name: getattr(fake, name) for name in shown}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await fake.stop()
