"""The page draws a draft at the speaker's pause (headless Chromium, fake microphone): labelled as drawing
what was heard so far, then, at Stop, the same bar carries on as the job, which took the draft over."""
from __future__ import annotations

import pytest
import requests

from .support.browser import speaking_page

pytestmark = pytest.mark.browser

# Every stage label the page shows, and how many progress bars the page holds at each change.
WATCH = """
window.__labels = [];
window.__bars = new Set();
document.addEventListener('DOMContentLoaded', () => {
  const stage = document.querySelector('#stage');
  new MutationObserver(() => {
    const text = stage.textContent;
    if (window.__labels[window.__labels.length - 1] !== text) window.__labels.push(text);
    window.__bars.add(document.querySelectorAll('[role=progressbar]').length);
  }).observe(stage, {childList: true, characterData: true, subtree: true});
});
"""
DRAWING = "Drawing what was heard so far…"


def open_watched(page, url: str) -> list[str]:
    """The page with its stage labels watched (``WATCH``), once Whisper is ready; answers its page errors."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script(WATCH)
    page.goto(url)
    page.wait_for_selector("#health-whisper.ok", timeout=60_000)
    return errors


def test_the_pause_draws_and_stop_carries_on_as_the_job(playwright, live_server, fake_comfy, clips_dir,
                                                         artifacts_dir):
    server, comfy = live_server, fake_comfy
    was, comfy.knobs.step_delay_s = comfy.knobs.step_delay_s, 0.5  # a render still under way at Stop
    posted, kept = len(comfy.posted), len(requests.get(server.url + "/api/gallery?all=1", timeout=10).json()["entries"])
    # the draft alone: no sketches while speaking ("auto" would sketch here, the fake ComfyUI is fast)
    assert requests.post(server.url + "/api/settings", json={"drafts": "pause"}, timeout=10).status_code == 200
    browser, page, _ = speaking_page(playwright, clips_dir, "a red kite over the sea", "drafts", tail_s=20.0)
    try:
        errors = open_watched(page, server.url)
        page.click("#record")
        page.wait_for_selector("#record.recording")
        # the pause after the words: the result area draws what was heard, before Stop
        page.wait_for_function(f"document.querySelector('#stage').textContent === '{DRAWING}'", timeout=30_000)
        page.wait_for_function("Number(document.querySelector('#progress').getAttribute('aria-valuenow')) > 30",
                               timeout=30_000)
        page.screenshot(path=str(artifacts_dir / "browser-draft-drawing.png"), full_page=True)
        page.click("#record")
        page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=60_000)
        labels = page.evaluate("window.__labels")
        assert labels.count(DRAWING) == 1, labels  # said once, not on every step
        after = labels[labels.index(DRAWING) + 1:]
        assert "Starting…" not in after and "Sending to ComfyUI…" not in after, labels  # no fresh start
        assert page.evaluate("[...window.__bars]") == [1]  # one bar all along
        assert len(comfy.posted) == posted + 1  # the draft's render was the job's
        entries = requests.get(server.url + "/api/gallery?all=1", timeout=10).json()["entries"]
        assert len(entries) == kept + 1 and entries[0]["draft"]["adopted"] is True, entries
        assert not comfy.pending and comfy.running is None
        assert errors == []
    finally:
        comfy.knobs.step_delay_s = was
        requests.post(server.url + "/api/settings", json={"drafts": "auto"}, timeout=10)
        browser.close()


SKETCHING = "Sketching what was heard so far…"


def test_while_speaking_a_fast_model_sketches_each_phrase_then_the_pause_draws(playwright, live_server, fake_comfy,
                                                                              clips_dir, artifacts_dir):
    server, comfy = live_server, fake_comfy
    kept = len(requests.get(server.url + "/api/gallery?all=1", timeout=10).json()["entries"])
    assert requests.post(server.url + "/api/settings", json={"drafts": "sketch"}, timeout=10).status_code == 200
    # long enough that passes agree on words while it is spoken
    said = ("a red kite flying high over the stormy sea at sunset with three white seagulls "
            "and a small wooden fishing boat with a yellow sail far below")
    browser, page, _ = speaking_page(playwright, clips_dir, said, "sketches", tail_s=20.0)
    try:
        errors = open_watched(page, server.url)
        posted = len(comfy.posted)
        page.click("#record")
        page.wait_for_selector("#record.recording")
        # while the person speaks: the picture's place shows a sketch of the words heard so far
        page.wait_for_function("document.querySelector('#preview').src.startsWith('data:image/jpeg')", timeout=30_000)
        assert page.is_visible("#preview") and page.inner_text("#stage") in (SKETCHING, DRAWING)
        alt = page.get_attribute("#preview", "alt")
        assert alt.startswith("Sketch of: ") and "red" in alt.lower(), alt  # what it is a sketch of, for screen readers
        page.screenshot(path=str(artifacts_dir / "browser-sketch.png"), full_page=True)
        # the pause: the draft, with the full recipe, takes over; Stop carries it on as the job
        page.wait_for_function(f"document.querySelector('#stage').textContent === '{DRAWING}'", timeout=30_000)
        page.click("#record")
        page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=60_000)
        labels = page.evaluate("window.__labels")
        assert labels.count(SKETCHING) == 1 and labels.index(SKETCHING) < labels.index(DRAWING), labels
        sketches = [body for body in comfy.posted[posted:]
                    if any(n["class_type"] == "KSampler" and n["inputs"]["steps"] <= 4 for n in body["prompt"].values())]
        assert sketches and len(comfy.posted) > posted + 1  # sketched, then the draft that became the job
        entries = requests.get(server.url + "/api/gallery?all=1", timeout=10).json()["entries"]
        assert len(entries) == kept + 1 and entries[0]["draft"]["adopted"] is True, entries  # sketches are not kept
        assert not comfy.pending and comfy.running is None
        assert errors == []
    finally:
        requests.post(server.url + "/api/settings", json={"drafts": "auto"}, timeout=10)
        browser.close()
