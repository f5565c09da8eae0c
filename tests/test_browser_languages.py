"""The page in another language: a browser set to German is offered German in one click, the person speaks
German (natural synthetic speech, fake microphone), the transcript stays German with the language heard
beside it, the prompt comes from Whisper's translation (said so), and the caption is read by a German voice."""
from __future__ import annotations

import pytest

from .support import speech
from .support.browser import launch
from .support.live import LiveServer

pytestmark = pytest.mark.browser

SAID = "Ein altes Schloss am See bei Sonnenuntergang."


def test_a_german_browser_switches_in_one_click_and_hears_german(playwright, make_app, comfy, make_clip, clips_dir,
                                                                 models_dir, artifacts_dir):
    wav = make_clip(SAID, "kokoro", language="de")
    mic = speech.pad_wav(wav, clips_dir / "browser-de-mic.wav", lead_s=0.3, tail_s=6.0)
    app = make_app(comfyui_url=comfy.url, models_dir=str(models_dir), tts_engine="espeak", steps=4, width=128,
                   height=96)
    browser = launch(playwright, "--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={mic}")
    try:
        with LiveServer(app) as server:
            page = browser.new_page(viewport={"width": 1100, "height": 900}, bypass_csp=True, locale="de-DE")
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url)
            assert page.input_value("#language") == ""  # the default stays English (the saved setting)
            page.wait_for_selector("#language-offer:not([hidden])")
            assert "Deutsch" in page.inner_text("#language-offer")
            page.click("#language-offer-button")  # one click
            assert page.input_value("#language") == "de" and page.is_hidden("#language-offer")
            page.click("#record")
            page.wait_for_selector("#record.recording")
            page.wait_for_timeout(int((speech.wav_seconds(wav) + 1.0) * 1000))
            page.click("#record")
            page.wait_for_selector("#image:not([hidden])", timeout=90_000)
            # what was said, in German words (synthetic speech: a word may come out a little off, e.g.
            # "Zonenuntergang"; the exact words are checked on the upload path in test_languages.py)
            heard = page.input_value("#transcript")
            assert "schloss" in heard.lower() and speech.word_error_rate(SAID, heard) <= 0.3, heard
            assert page.inner_text("#language-heard").startswith("Heard: German")
            assert "machine translation" in page.inner_text("#prompt-source")
            prompt = page.input_value("#prompt").lower()
            assert "lake" in prompt and "schloss" not in prompt, prompt  # English words for the model
            page.wait_for_function("document.querySelector('#voice-by').textContent.includes('(German)')",
                                   timeout=60_000)
            assert "espeak-ng" in page.inner_text("#voice-by")
            page.screenshot(path=str(artifacts_dir / "browser-languages.png"), full_page=True)
            page.reload()  # the tab remembers its language
            assert page.input_value("#language") == "de" and page.is_hidden("#language-offer")
            assert errors == []
    finally:
        browser.close()
