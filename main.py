"""Entry point: ``python main.py [run|chat|check|doctor|faq search|tickets|stats|eval]``."""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main())
