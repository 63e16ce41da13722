"""The model client's circuit breaker, on its own so its states are easy to follow.

When the API is down, every customer would otherwise wait through the same
retries; after enough failures in a row calls are refused at once for a while.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures and stays open for ``cooldown`` seconds."""

    threshold: int
    cooldown: float
    failures: int = 0
    opened_at: float | None = None
    clock: Callable[[], float] = field(default=time.monotonic)

    @property
    def is_open(self) -> bool:
        """Open now, without the half-open side effect of ``allow``."""
        return self.opened_at is not None and self.clock() - self.opened_at < self.cooldown

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if self.clock() - self.opened_at >= self.cooldown:
            # Half-open: let one request probe; a failure re-opens at once.
            self.opened_at = None
            self.failures = self.threshold - 1
            return True
        return False

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def record_failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = self.clock()
