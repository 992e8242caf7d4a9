"""How the console's browser is started: Debian's Chromium, driven by Playwright (never
``playwright install``, which cannot download here). Used by the browser tests
(``tests/web/conftest.py``) and by ``scripts/screenshots.py``."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
