"""The `harness` command. Heavy modules (sqlalchemy, datasets, aiohttp) load inside commands, so --help is instant."""
from __future__ import annotations

import sys


def main() -> None:
    from harness._registry import UsageError
    from harness.cli._app import app

    try:
        app()
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
