"""The page in headless Chromium with a fake microphone fed from generated speech."""
from __future__ import annotations

import shutil

import pytest

from . import speech

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BASE_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
]


@pytest.fixture(scope="module")
def playwright():
    if CHROMIUM is None:
        pytest.fail("chromium is not installed (scripts/test.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def launch(playwright, *extra_args):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=BASE_ARGS + list(extra_args))


def test_record_click_fills_transcript(playwright, live_server, clips_dir, artifacts_dir):
    said = "a lighthouse on a rocky coast during a storm"
    wav = speech.piper_wav(said, clips_dir / "browser-said.wav")
    padded = speech.pad_wav(wav, clips_dir / "browser-mic.wav", lead_s=0.3, tail_s=6.0)
    browser = launch(playwright, "--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={padded}")
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        page.goto(live_server.url)
        page.wait_for_selector("#health-whisper.ok", timeout=60_000)
        page.click("#record")
        page.wait_for_selector("#record.recording")
        # the level meter follows the voice while recording
        page.wait_for_function("Number(document.querySelector('#meter').getAttribute('aria-valuenow')) > 5")
        page.wait_for_timeout(int((speech.wav_seconds(wav) + 0.7) * 1000))
        assert page.inner_text("#timer") != "0:00"
        page.click("#record")
        page.wait_for_function("document.querySelector('#transcript').value.length > 0", timeout=60_000)
        text = page.input_value("#transcript").lower()
        page.screenshot(path=str(artifacts_dir / "browser-transcript.png"), full_page=True)
        for word in ("lighthouse", "rocky", "coast", "storm"):
            assert word in text, text
        assert "transcribed" in page.inner_text("#transcript-meta")
        assert page.get_attribute("#record", "aria-pressed") == "false"
    finally:
        browser.close()


def test_space_bar_toggles_recording(playwright, live_server, clips_dir):
    wav = speech.piper_wav("a green apple on a table", clips_dir / "space.wav")
    padded = speech.pad_wav(wav, clips_dir / "space-mic.wav", lead_s=0.3, tail_s=6.0)
    browser = launch(playwright, "--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={padded}")
    try:
        page = browser.new_page()
        page.goto(live_server.url)
        page.wait_for_selector("#health-whisper.ok", timeout=60_000)
        page.keyboard.press("Space")
        page.wait_for_selector("#record.recording")
        page.wait_for_timeout(int((speech.wav_seconds(wav) + 1.0) * 1000))
        page.keyboard.press("Space")
        page.wait_for_function("document.querySelector('#transcript').value.length > 0", timeout=60_000)
        assert "apple" in page.input_value("#transcript").lower()
    finally:
        browser.close()


def test_denied_microphone_says_so(playwright, live_server, artifacts_dir):
    browser = launch(playwright, "--deny-permission-prompts")
    try:
        page = browser.new_page()
        page.goto(live_server.url)
        page.click("#record")
        page.wait_for_selector("#message.error", timeout=10_000)
        message = page.inner_text("#message")
        page.screenshot(path=str(artifacts_dir / "browser-mic-denied.png"))
        assert "Microphone access was denied" in message, message
        assert page.get_attribute("#record", "aria-pressed") == "false"
    finally:
        browser.close()
