"""The page's whole loop in Chromium with both speech stages on real Wyoming servers:
record (fake microphone) -> transcript from wyoming-faster-whisper -> image (fake ComfyUI) ->
caption spoken by wyoming-piper; the lights name the servers."""
from __future__ import annotations

import pytest

from .support import speech
from .support.browser import launch
from .support.speech_servers import WyomingServer

pytestmark = pytest.mark.browser


def test_record_to_image_and_caption_with_both_stages_remote(playwright, serve, comfy, wyoming_whisper,
                                                            wyoming_piper, clips_dir, artifacts_dir):
    said = "a red kite flying over a green hill"
    wav = speech.piper_wav(said, clips_dir / "remote-said.wav")
    padded = speech.pad_wav(wav, clips_dir / "remote-mic.wav", lead_s=0.3, tail_s=6.0)
    server = serve(comfyui_url=comfy.url, asr_url=wyoming_whisper.url, tts_url=wyoming_piper.url,
                   tts_engine="piper", steps=6, width=128, height=96)
    browser = launch(playwright, "--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={padded}")
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 800}, bypass_csp=True)
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url)
        page.wait_for_selector("#health-whisper.ok", timeout=30_000)
        page.wait_for_selector("#health-tts.ok", timeout=30_000)
        assert wyoming_whisper.url in page.get_attribute("#health-whisper", "title")
        assert wyoming_piper.url in page.get_attribute("#health-tts", "title")
        page.click("#record")
        page.wait_for_selector("#record.recording")
        page.wait_for_timeout(int((speech.wav_seconds(wav) + 0.7) * 1000))
        page.click("#record")
        page.wait_for_function("document.querySelector('#transcript').value.length > 0", timeout=60_000)
        squashed = page.input_value("#transcript").lower().replace(" ", "")
        for word in ("red", "kite", "green", "hill"):
            assert word in squashed, squashed
        page.wait_for_selector("#image:not([hidden])", timeout=60_000)
        page.wait_for_function("document.querySelector('#image').naturalWidth === 128")
        page.wait_for_function("document.querySelector('#voice').src.endsWith('.wav') && "
                               "document.querySelector('#voice').readyState >= 1", timeout=60_000)
        assert page.evaluate("document.querySelector('#voice').duration") > 1.0
        assert page.inner_text("#spoken-caption").startswith("Here is")
        page.screenshot(path=str(artifacts_dir / "browser-speech-servers.png"), full_page=True)
        # the settings panel offers the servers' voices and shows their lists
        page.click("#settings-panel summary")
        assert page.input_value("input[name=asr_url]") == wyoming_whisper.url
        page.wait_for_function("document.querySelectorAll('[data-choices=tts_server_voice] option').length > 1")
        assert errors == []
    finally:
        browser.close()


def test_the_transcript_box_comes_back_when_the_recognition_server_goes_away(playwright, serve, comfy, clips_dir,
                                                                            tmp_path, artifacts_dir):
    """The live words stand in the transcript box's place while the person speaks; when the recognition
    server is gone by Stop, the page says so and the box is back, holding the words heard so far."""
    said = "a small wooden boat on a calm lake at dawn"
    wav = speech.piper_wav(said, clips_dir / "gone-said.wav")
    padded = speech.pad_wav(wav, clips_dir / "gone-mic.wav", lead_s=0.3, tail_s=20.0)
    with WyomingServer("whisper", tmp_path / "wyoming-whisper") as whisper:
        server = serve(comfyui_url=comfy.url, asr_url=whisper.url, steps=6, width=128, height=96)
        browser = launch(playwright, "--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={padded}")
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800}, bypass_csp=True)
            page.goto(server.url)
            page.wait_for_selector("#health-whisper.ok", timeout=30_000)
            page.click("#record")
            page.wait_for_selector("#record.recording")
            page.wait_for_function("(document.querySelector('#live-transcript')?.textContent || '').includes('boat')",
                                   timeout=30_000)
            assert page.is_hidden("#transcript")
            whisper.stop()
            page.click("#record")
            page.wait_for_function("document.querySelector('#message').textContent.includes('recognition server')",
                                   timeout=60_000)
            assert page.is_visible("#transcript") and page.is_hidden("#live-transcript")
            assert "boat" in page.input_value("#transcript").lower()  # the words heard so far, kept to send
            page.screenshot(path=str(artifacts_dir / "browser-recognition-gone.png"), full_page=True)
        finally:
            browser.close()
