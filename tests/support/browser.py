"""The Debian chromium, headless, driven by Playwright (no browser is downloaded), with a fake
microphone device; the ``playwright`` fixture is in conftest.py."""
from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BASE_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
]


def launch(playwright, *extra_args):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=BASE_ARGS + list(extra_args))
