"""The python-telegram-bot adapter: thin handlers that translate updates into core calls."""
