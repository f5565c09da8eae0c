"""Headless Chromium for the page's tests: Debian's chromium driven by Playwright (no browser is
downloaded), with a fake microphone that plays generated speech; the ``playwright`` fixture is in
conftest.py."""
from __future__ import annotations

import shutil

from . import speech

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


def speaking_page(playwright, clips_dir, said: str, name: str, tail_s: float, **page_options):
    """A browser whose fake microphone says ``said`` then stays quiet ``tail_s`` (the device loops
    its file): (browser, page, the spoken WAV)."""
    wav = speech.piper_wav(said, clips_dir / f"{name}.wav")
    padded = speech.pad_wav(wav, clips_dir / f"{name}-mic.wav", lead_s=0.3, tail_s=tail_s)
    browser = launch(playwright, "--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={padded}")
    page = browser.new_page(bypass_csp=True, **page_options)
    return browser, page, wav
