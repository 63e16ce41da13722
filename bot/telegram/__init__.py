"""The python-telegram-bot adapter: thin handlers that translate updates into core calls."""

import os

# Durations such as RetryAfter.retry_after as timedelta (the library's future default);
# the adapter relies on it, and it silences the library's deprecation warning.
os.environ.setdefault("PTB_TIMEDELTA", "1")
