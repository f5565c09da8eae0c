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


def speaking_page(playwright, clips_dir, said: str | list[str], name: str, tail_s: float, gap_s: float = 0.0,
                  **page_options):
    """A browser whose fake microphone says ``said`` then stays quiet ``tail_s`` (the device loops
    its file): (browser, page, the spoken WAV). Several phrases are said with ``gap_s`` of quiet between them."""
    if isinstance(said, str):
        wav = speech.piper_wav(said, clips_dir / f"{name}.wav")
    else:
        phrases = [speech.piper_wav(text, clips_dir / f"{name}-{i}.wav") for i, text in enumerate(said)]
        wav = speech.join_wavs(phrases, clips_dir / f"{name}.wav", gap_s)
    padded = speech.pad_wav(wav, clips_dir / f"{name}-mic.wav", lead_s=0.3, tail_s=tail_s)
    browser = launch(playwright, "--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={padded}")
    page = browser.new_page(bypass_csp=True, **page_options)
    return browser, page, wav


# The microphone's audio the page sent the server (``window.__audioSent``, bytes of 16 kHz s16le), and when
# Stop was clicked and the picture shown after it (``window.__stamps``: ``stop``, ``image`` in performance.now() ms;
# ``stopAt``, ``imageAt`` in ms since the epoch, to set beside another program's clock on this computer).
MIC_WATCH = """
window.__audioSent = 0;
window.__stamps = {};
(() => {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data !== 'string' && this.url.includes('/ws/audio')) window.__audioSent += data.byteLength ?? data.size ?? 0;
    return send.call(this, data);
  };
})();
document.addEventListener('click', (event) => {
  if (event.target.closest('#record') && document.querySelector('#record').classList.contains('recording')) {
    window.__stamps.stop = performance.now(); window.__stamps.stopAt = Date.now();
  }
}, true);
document.addEventListener('DOMContentLoaded', () => {
  const image = document.querySelector('#image');
  new MutationObserver(() => {
    if (image.getAttribute('src') && window.__stamps.stop && !window.__stamps.image) {
      window.__stamps.image = performance.now(); window.__stamps.imageAt = Date.now();
    }
  }).observe(image, {attributes: true, attributeFilter: ['src']});
});
"""
LEAD_S = 0.3  # speaking_page's quiet before the words


def stop_after(page, audio_s: float, timeout_ms: int = 60_000) -> None:
    """Click Stop once the page has sent ``audio_s`` of its microphone (the file's time: LEAD_S, the words,
    then quiet); the page needs MIC_WATCH."""
    page.wait_for_function(f"window.__audioSent >= {int(audio_s * 16000) * 2}", polling=20, timeout=timeout_ms)
    page.click("#record")


def stop_to_image_s(page) -> float | None:
    """Seconds from the click on Stop to the picture in the page (MIC_WATCH's stamps)."""
    stamps = page.evaluate("window.__stamps")
    return (stamps["image"] - stamps["stop"]) / 1000 if "image" in stamps and "stop" in stamps else None
