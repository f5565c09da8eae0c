"""Changing a picture by voice, in headless Chromium with a fake microphone: record a request, get the
picture, record "now make it at night", and an edit of that picture appears with its parent shown;
then the switch beside the prompt, and the gallery's Change this picture."""
from __future__ import annotations

import re

import pytest
import requests
from PIL import Image

from .support import speech
from .support.browser import launch, speaking_page

pytestmark = pytest.mark.browser

SESSION = "browser-edit-tab"  # one tab's id: its second recording changes its first picture
SAME_TAB = f"sessionStorage.setItem('s2i-session', '{SESSION}');"


def record(page, wav):
    page.wait_for_selector("#health-whisper.ok", timeout=60_000)
    page.click("#record")
    page.wait_for_selector("#record.recording")
    page.wait_for_timeout(int((speech.wav_seconds(wav) + 0.8) * 1000))
    page.click("#record")


def wait_done(page):
    page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=60_000)


def test_record_then_make_it_at_night_changes_that_picture(playwright, live_server, clips_dir, artifacts_dir):
    # The fake microphone plays one file per browser, so the tab's two recordings come from two browsers
    # that share the tab's session id, as one tab reloaded would.
    first_browser, page, wav = speaking_page(playwright, clips_dir, "a red barn in a green field", "edit-barn",
                                             tail_s=8.0, viewport={"width": 1100, "height": 900})
    try:
        page.add_init_script(SAME_TAB)
        page.goto(live_server.url)
        record(page, wav)
        wait_done(page)
        parent_url = page.get_attribute("#image", "src")
        assert page.is_hidden("#decision")  # nothing to change yet: a new picture, nothing to say
    finally:
        first_browser.close()
    parent_id = parent_url.rsplit("/", 1)[1].removesuffix(".png")

    browser, page, wav = speaking_page(playwright, clips_dir, "now make it at night", "edit-night", tail_s=8.0,
                                       viewport={"width": 1100, "height": 900})
    try:
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.add_init_script(SAME_TAB)
        page.goto(live_server.url)
        record(page, wav)
        page.wait_for_selector("#decision:not([hidden])", timeout=60_000)
        assert page.inner_text("#decision-text").startswith("Changing the last picture · strength 0.55")
        assert page.get_attribute("#decision-thumb", "src") == f"/outputs/{parent_id}.thumb.jpg"
        wait_done(page)
        prompt = page.input_value("#prompt").lower()
        assert "barn" in prompt and "night" in prompt
        assert page.get_attribute("#image", "src") != parent_url
        # the chain under the picture: changed from the first picture
        page.wait_for_selector("#chain:not([hidden])")
        assert page.get_attribute("#chain-list img", "src") == f"/outputs/{parent_id}.thumb.jpg"
        page.wait_for_function("document.querySelector('#chain-list img').naturalWidth > 0")
        # in the gallery the edit carries its parent's small thumbnail
        page.wait_for_selector(f"#gallery .parent-thumb[src='/outputs/{parent_id}.thumb.jpg']")
        assert page.is_visible("#download")
        page.screenshot(path=str(artifacts_dir / "browser-edit-at-night.png"), full_page=True)

        # one click: the same request as a new picture instead
        page.click("#decision-switch")
        page.wait_for_function("document.querySelector('#decision-text').textContent.startsWith('New picture')",
                               timeout=30_000)
        wait_done(page)
        assert page.inner_text("#decision-switch") == "Change the last picture instead"
        assert page.is_hidden("#chain")
        assert errors == []
    finally:
        browser.close()


def test_gallery_change_this_picture_then_type_what_to_change(playwright, live_server, artifacts_dir):
    browser = launch(playwright)
    try:
        page = browser.new_page(viewport={"width": 390, "height": 844}, bypass_csp=True)  # a phone: little room
        page.goto(live_server.url)
        page.fill("#typed", "a yellow kite over the sea")
        page.press("#typed", "Enter")
        wait_done(page)
        assert page.input_value("#typed") == ""  # sent: the box is empty for the next request...
        page.press("#typed", "ArrowUp")
        assert page.input_value("#typed") == "a yellow kite over the sea"  # ...which stays in its history
        page.press("#typed", "ArrowDown")
        assert page.input_value("#typed") == ""
        parent_url = page.get_attribute("#image", "src")
        page.click(f"#gallery button[data-job-id='{parent_url.rsplit('/', 1)[1].removesuffix('.png')}']")
        page.click("#change-picture")
        assert page.is_visible("#edit-target")
        # the field to type the change in shows below the sticky job strip, not under it
        page.wait_for_function("(() => { const strip = document.querySelector('#job-strip'); const top = "
                               "document.querySelector('#typed').getBoundingClientRect().top; return top >= "
                               "(strip.hidden ? 0 : strip.getBoundingClientRect().bottom); })()", timeout=5_000)
        page.fill("#typed", "with a thunderstorm")  # no follow-up words: the chosen picture is changed anyway
        page.press("#typed", "Enter")
        page.wait_for_selector("#decision:not([hidden])", timeout=30_000)
        assert page.inner_text("#decision-text").startswith("Changing the chosen picture")
        assert page.is_hidden("#edit-target")  # the choice was for that one request
        wait_done(page)
        assert "kite" in page.input_value("#prompt") and "thunderstorm" in page.input_value("#prompt")
        page.wait_for_selector("#chain:not([hidden])")
        # Run again on the edit: the same parent, the same strength
        edit_id = page.get_attribute("#image", "src").rsplit("/", 1)[1].removesuffix(".png")
        page.click(f"#gallery button[data-job-id='{edit_id}']")
        page.wait_for_selector("#chain:not([hidden])")
        page.click("#again-same")
        assert "From the gallery" not in page.inner_text("#message")  # the old message does not linger
        wait_done(page)
        assert page.inner_text("#decision-text").startswith("Changing the chosen picture · strength 0.55")
        page.screenshot(path=str(artifacts_dir / "browser-edit-from-gallery.png"), full_page=True)

        # Download on an edit: saved under the page's name (not the id the server's header would give), and
        # the PNG names its parent, the strength and its own size
        with page.expect_download() as download:
            page.click("#download")
        assert re.fullmatch(r"a-yellow-kite-over-the-sea-[0-9a-f]{6}\.png", download.value.suggested_filename)
        saved = Image.open(download.value.path())
        assert saved.text["speech2image:edit_of"] == parent_url.rsplit("/", 1)[1].removesuffix(".png")
        assert saved.text["speech2image:strength"] == "0.55"
        assert (saved.text["speech2image:width"], saved.text["speech2image:height"]) == ("128", "96")

        # The parent deleted: its edit shows no broken thumbnails, and the chain says it is gone
        parent_id = parent_url.rsplit("/", 1)[1].removesuffix(".png")
        assert requests.delete(f"{live_server.url}/api/gallery/{parent_id}", timeout=5).status_code == 200
        page.reload()
        page.click(f"#gallery button[data-job-id='{edit_id}']")
        page.wait_for_selector("#chain:not([hidden])")
        assert page.inner_text("#chain-list") == "(deleted)"
        page.wait_for_function("[...document.images].every((img) => img.complete)")
        broken = page.evaluate("[...document.images].filter((img) => img.offsetParent && img.naturalWidth === 0)"
                               ".map((img) => img.id || img.getAttribute('src'))")
        assert broken == []
    finally:
        browser.close()
