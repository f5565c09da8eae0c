"""The page in headless Chromium with a fake microphone fed from generated speech."""
from __future__ import annotations

import shutil

import pytest

from .support import speech
from .support.app_process import AppProcess
from .support.fake_comfy import FakeComfyUI, Knobs
from .support.fake_llm import FakeLlmServer
from .support.live import LiveServer

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


# Records every stage label the page shows, so a test can check none was skipped.
WATCH_STAGES = """
window.__stages = [];
document.addEventListener('DOMContentLoaded', () => {
  const stage = document.querySelector('#stage');
  // Every change is a record, even those made within one task, so instant stages count too.
  new MutationObserver((records) => {
    for (const record of records) {
      for (const node of record.addedNodes) {
        const text = node.textContent;
        if (text === 'Starting…') continue;  // the instant between the click and the server's answer
        if (window.__stages[window.__stages.length - 1] !== text) window.__stages.push(text);
      }
    }
  }).observe(stage, {childList: true});
});
"""


def test_record_click_fills_transcript(playwright, live_server, clips_dir, artifacts_dir):
    said = "a lighthouse on a rocky coast during a storm"
    wav = speech.piper_wav(said, clips_dir / "browser-said.wav")
    padded = speech.pad_wav(wav, clips_dir / "browser-mic.wav", lead_s=0.3, tail_s=6.0)
    browser = launch(playwright, "--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={padded}")
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 700}, bypass_csp=True)
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.add_init_script(WATCH_STAGES)
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
        squashed = text.replace(" ", "")  # Piper's voice varies: "light house" counts too
        for word in ("lighthouse", "rocky", "coast", "storm"):
            assert word in squashed, text
        assert "transcribed" in page.inner_text("#transcript-meta")
        # once the words are in, the stage label on the right says what happens next, not a stale note
        page.wait_for_function("document.querySelector('#stage').dataset.stage !== 'transcribing'")
        assert "Transcribing" not in page.inner_text("#message")
        assert page.get_attribute("#record", "aria-pressed") == "false"
        # the prompt and the render follow by themselves; this server has the LLM off
        page.wait_for_selector("#prompt-source:not([hidden])", timeout=30_000)
        assert page.inner_text("#prompt-source") == "written offline"
        assert "lighthouse" in page.input_value("#prompt").lower().replace(" ", "")
        assert page.input_value("#caption").startswith("Here is")
        page.wait_for_selector("#image:not([hidden])", timeout=30_000)
        page.wait_for_function("document.querySelector('#image').naturalWidth === 128")
        page.wait_for_function("document.querySelector('#stage').textContent === 'Done'")
        assert page.get_attribute("#progress", "aria-valuenow") == "100"
        # the caption is spoken when the picture appears: the audio loads and its text shows
        page.wait_for_function("document.querySelector('#voice').src.endsWith('.wav') && "
                               "document.querySelector('#voice').readyState >= 1")
        assert page.is_visible("#voice")
        assert page.inner_text("#spoken-caption").startswith("Here is")
        assert page.evaluate("document.querySelector('#voice').duration") > 1.0
        assert errors == []
        assert page.evaluate("window.scrollY") == 0  # two columns: the picture is already in view
        page.screenshot(path=str(artifacts_dir / "browser-record-to-image.png"), full_page=True)
    finally:
        browser.close()


def test_space_bar_toggles_recording(playwright, live_server, clips_dir):
    wav = speech.piper_wav("a green apple on a table", clips_dir / "space.wav")
    padded = speech.pad_wav(wav, clips_dir / "space-mic.wav", lead_s=0.3, tail_s=6.0)
    browser = launch(playwright, "--use-fake-ui-for-media-stream", f"--use-file-for-fake-audio-capture={padded}")
    try:
        page = browser.new_page(bypass_csp=True)
        page.goto(live_server.url)
        page.wait_for_selector("#health-whisper.ok", timeout=60_000)
        page.keyboard.press("Space")
        page.wait_for_selector("#record.recording")
        page.wait_for_timeout(int((speech.wav_seconds(wav) + 1.0) * 1000))
        page.keyboard.press("Space")
        page.wait_for_function("document.querySelector('#transcript').value.length > 0", timeout=60_000)
        assert "apple" in page.input_value("#transcript").lower()
        # let its render finish, so the next test finds the shared fake ComfyUI idle
        page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=30_000)
    finally:
        browser.close()


def test_denied_microphone_says_so(playwright, live_server, artifacts_dir):
    browser = launch(playwright, "--deny-permission-prompts")
    try:
        page = browser.new_page(bypass_csp=True)
        page.goto(live_server.url)
        page.click("#record")
        page.wait_for_selector("#message.error", timeout=10_000)
        message = page.inner_text("#message")
        page.screenshot(path=str(artifacts_dir / "browser-mic-denied.png"))
        assert "Microphone access was denied" in message, message
        assert page.get_attribute("#record", "aria-pressed") == "false"
    finally:
        browser.close()


def test_rewrite_streams_the_llm_prompt_live(playwright, make_app, artifacts_dir):
    with FakeLlmServer() as llm:
        llm.behaviour.token_delay_s = 0.05
        app = make_app(llm_url=llm.url)
        with LiveServer(app) as server:
            browser = launch(playwright)
            try:
                page = browser.new_page(viewport={"width": 390, "height": 844}, bypass_csp=True)  # a phone
                page.goto(server.url)
                page.wait_for_selector("#health-llm.ok", timeout=10_000)
                page.wait_for_function("document.querySelectorAll('#model option').length === 3")
                page.select_option("#model", "fake-model-1b")
                page.select_option("#preset", "creative")
                page.fill("#transcript", "um a cat wearing a red hat")
                page.click("#rewrite")
                # part of the prompt shows while the badge (set by the final result) is still hidden
                page.wait_for_function(
                    "document.querySelector('#prompt').value.length > 0 && document.querySelector('#prompt-source').hidden"
                )
                page.wait_for_selector("#prompt-source:not([hidden])", timeout=10_000)
                page.screenshot(path=str(artifacts_dir / "browser-prompt-llm.png"), full_page=True)
                assert page.inner_text("#prompt-source") == "written by fake-model-1b"
                assert page.input_value("#prompt") == "a cat wearing a red hat, soft lighting, highly detailed"
                assert page.input_value("#negative") == "blurry"
                assert page.input_value("#caption") == "Here is a cat in a red hat."
                request = llm.requests[-1]
                assert request["model"] == "fake-model-1b" and request["temperature"] == 0.9
                assert request["stream"] is True
            finally:
                browser.close()


def open_page(browser, server, viewport=None, page=None):
    # The tests' own waits evaluate strings, which the app's CSP forbids; test_page_under_csp checks the app with it.
    page = page or browser.new_page(viewport=viewport or {"width": 1200, "height": 900}, bypass_csp=True)
    page.add_init_script(WATCH_STAGES)
    page.goto(server.url)
    return page


@pytest.fixture
def serve(make_app):
    """serve(comfy, **config) -> LiveServer: 6 steps a job, the caption spoken by espeak-ng."""

    def serve(comfy, **config):
        return LiveServer(make_app(**{"comfyui_url": comfy.url, "tts_engine": "espeak", "steps": 6, **config}))

    return serve


def type_request(page, text):
    page.fill("#typed", text)
    page.press("#typed", "Enter")


def test_typed_request_to_image(playwright, live_server, artifacts_dir):
    browser = launch(playwright)
    try:
        failed = []
        page = open_page(browser, live_server, {"width": 390, "height": 844})  # a phone
        # Chromium reports every failed load here, the tab's icon included (Playwright's request events skip it)
        page.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
        page.reload()
        page.wait_for_selector("#health-whisper.ok", timeout=60_000)
        type_request(page, "a paper boat on a puddle")
        page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=30_000)
        stages = [label for label in page.evaluate("window.__stages") if not label.startswith("Queued")]
        assert stages == ["Writing the prompt…", "Sending to ComfyUI…", "Rendering…", "Saving…", "Done"]
        page.wait_for_function("document.querySelector('#image').naturalWidth > 0")
        assert page.input_value("#transcript") == "a paper boat on a puddle"
        assert page.input_value("#prompt").startswith("a paper boat on a puddle")
        assert page.get_attribute("#progress", "aria-valuenow") == "100"
        page.wait_for_selector("#gallery button")
        assert failed == []
        # on a phone the page scrolls down to the picture by itself once the render starts
        page.wait_for_function("(() => { const r = document.querySelector('#canvas').getBoundingClientRect();"
                               " return r.top >= 0 && r.top < window.innerHeight; })()", timeout=5_000)
        page.screenshot(path=str(artifacts_dir / "browser-typed-phone.png"), full_page=True)
    finally:
        browser.close()


def test_job_options_are_the_data_job_controls(playwright, serve):
    """The page runs as ES modules, and a job gets every [data-job] control, a new one included."""
    with FakeComfyUI(Knobs(step_delay_s=0.02)) as comfy, serve(comfy) as server:
        browser = launch(playwright)
        try:
            problems, bodies = [], []
            page = browser.new_page(viewport={"width": 1200, "height": 900}, bypass_csp=True)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("request", lambda r: bodies.append(r.post_data_json)
                    if r.method == "POST" and r.url.endswith("/api/jobs") else None)
            page = open_page(browser, server, page=page)
            assert page.get_attribute("script[src$='js/main.js']", "type") == "module"
            page.wait_for_selector("#health-comfyui.ok", timeout=10_000)  # the modules ran
            page.wait_for_function("document.querySelector('#workflow').value === 'txt2img.json'")
            page.fill("#steps", "4")
            # a knob the template does not have yet needs only its data-job name
            page.evaluate("""() => {
              const cfg = Object.assign(document.createElement('input'), {type: 'number', value: '5.5'});
              cfg.dataset.job = 'cfg';
              document.querySelector('.render-settings').append(cfg);
            }""")
            type_request(page, "a kite over a beach")
            page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=30_000)
            body = bodies[-1]
            assert body["transcript"] == "a kite over a beach"
            assert (body["steps"], body["cfg"]) == ("4", "5.5")
            assert (body["preset"], body["workflow"]) == ("balanced", "txt2img.json")
            assert "seed" not in body and "model" not in body  # empty controls leave the server's defaults
            inputs = comfy.posted[-1]["prompt"]["3"]["inputs"]
            assert (inputs["steps"], inputs["cfg"]) == (4, 5.5)
            assert problems == []
        finally:
            browser.close()


def test_cancel_mid_render(playwright, serve, artifacts_dir):
    with FakeComfyUI(Knobs(step_delay_s=0.4)) as comfy, serve(comfy, steps=30) as server:
        browser = launch(playwright)
        try:
            page = open_page(browser, server)
            type_request(page, "a very slow painting")
            page.wait_for_function("document.querySelector('#step').textContent === 'step 2/30'", timeout=20_000)
            assert page.is_visible("#cancel")
            page.click("#cancel")
            page.wait_for_function("document.querySelector('#stage').textContent === 'Cancelled'", timeout=20_000)
            page.screenshot(path=str(artifacts_dir / "browser-cancelled.png"), full_page=True)
            assert comfy.interrupts, "ComfyUI was not asked to interrupt"
            assert page.is_hidden("#cancel") and page.is_hidden("#image")
            assert page.is_enabled("#generate")
        finally:
            browser.close()


def test_gallery_after_restart_and_run_again(playwright, serve, artifacts_dir):
    with FakeComfyUI(Knobs(step_delay_s=0.02)) as comfy:
        with serve(comfy) as server:
            browser = launch(playwright)
            try:
                page = open_page(browser, server)
                type_request(page, "a lantern in the fog")
                page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=30_000)
            finally:
                browser.close()
        first_seed = comfy.posted[-1]["prompt"]["3"]["inputs"]["seed"]
        with serve(comfy) as server:  # a new server on the same data folder
            browser = launch(playwright)
            try:
                page = open_page(browser, server)
                page.wait_for_selector("#gallery button")
                assert page.locator("#gallery button").count() == 1
                page.click("#gallery button")
                assert page.input_value("#prompt").startswith("a lantern in the fog")
                page.wait_for_function("document.querySelector('#image').naturalWidth > 0")
                page.screenshot(path=str(artifacts_dir / "browser-gallery-entry.png"), full_page=True)
                page.click("#again-same")
                page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=30_000)
                assert comfy.posted[-1]["prompt"]["3"]["inputs"]["seed"] == first_seed
                page.wait_for_function("document.querySelectorAll('#gallery button').length === 2")
            finally:
                browser.close()


def test_settings_change_applies_to_next_job(playwright, serve, artifacts_dir):
    with FakeComfyUI(Knobs(step_delay_s=0.02)) as comfy, serve(comfy) as server:
        browser = launch(playwright)
        try:
            asked = []
            page = browser.new_page(viewport={"width": 1200, "height": 900}, bypass_csp=True)
            page.on("request", lambda r: asked.append(r.url.split("?")[0].removeprefix(server.url)))
            page = open_page(browser, server, page=page)
            page.click("#settings-panel summary")
            page.wait_for_function("document.querySelector('#settings-form [name=steps]').value === '6'")
            # the panel offers what ComfyUI and our workflows have, each asked for once per load
            page.wait_for_function("document.querySelectorAll('#checkpoints option').length === 2")
            assert page.input_value("#settings-workflow") == "txt2img.json"
            assert asked.count("/api/comfyui") == 1 and asked.count("/api/llm") == 1
            page.fill("#settings-form [name=steps]", "3")
            page.fill("#settings-form [name=seed]", "4242")
            page.click("#settings-form button[type=submit]")
            page.wait_for_function("document.querySelector('#settings-status').textContent.startsWith('Saved')")
            page.screenshot(path=str(artifacts_dir / "browser-settings.png"), full_page=True)
            type_request(page, "a quiet harbour")
            page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=30_000)
            inputs = comfy.posted[-1]["prompt"]["3"]["inputs"]
            assert (inputs["steps"], inputs["seed"]) == (3, 4242)
            assert "3 steps" in page.inner_text("#render-info")
            page.fill("#settings-form [name=comfyui_url]", "ftp://nowhere")
            page.click("#settings-form button[type=submit]")
            page.wait_for_function("document.querySelector('#settings-status').textContent.includes('must look like')")
        finally:
            browser.close()


def test_health_light_turns_red_when_comfyui_stops(playwright, serve, artifacts_dir):
    comfy = FakeComfyUI()
    comfy.__enter__()
    with serve(comfy) as server:
        browser = launch(playwright)
        try:
            page = open_page(browser, server)
            page.wait_for_selector("#health-comfyui.ok", timeout=10_000)
            comfy.stop()
            page.wait_for_selector("#health-comfyui.bad", timeout=15_000)
            assert "unreachable" in page.get_attribute("#health-comfyui", "title")
            page.screenshot(path=str(artifacts_dir / "browser-comfyui-down.png"))
        finally:
            browser.close()


def test_page_under_csp_renders_hostile_text_as_text(playwright, live_server, artifacts_dir):
    """With the real Content-Security-Policy on, a request full of markup shows as plain text."""
    payload = '<img src=x onerror="document.title=1"><script>document.title=2</script> a red fox'
    browser = launch(playwright)
    try:
        page = browser.new_page()
        violations = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(live_server.url)
        page.fill("#typed", payload)
        page.press("#typed", "Enter")
        page.wait_for_selector("#stage[data-stage=done]", timeout=30_000)
        page.wait_for_selector("#gallery button")
        assert page.input_value("#transcript") == payload
        assert page.input_value("#prompt").startswith(payload)
        assert page.title() == "speech2image"  # nothing in the payload ran
        assert page.locator("img[src=x]").count() == 0
        assert violations == []  # the app itself needs nothing the policy forbids
        page.screenshot(path=str(artifacts_dir / "browser-hostile-text.png"))
    finally:
        browser.close()


def test_app_restarted_under_the_page_shows_progress_again_then_the_picture(playwright, tmp_path, artifacts_dir):
    """Killed mid-render and started again on the same port and data folder: the tab reconnects by itself."""
    with FakeComfyUI(Knobs(step_delay_s=0.3)) as comfy:
        first = AppProcess(tmp_path / "instance", comfy.url, steps=24).start()
        browser = launch(playwright)
        try:
            page = open_page(browser, first)
            type_request(page, "a windmill at dusk")
            page.wait_for_function("document.querySelector('#stage').textContent === 'Rendering…'", timeout=30_000)
            page.wait_for_function("Number(document.querySelector('#progress').getAttribute('aria-valuenow')) > 10",
                                   timeout=30_000)
            first.kill()
            before = int(page.get_attribute("#progress", "aria-valuenow"))
            second = AppProcess(tmp_path / "instance", comfy.url, port=first.port, steps=24).start()
            try:
                # progress moves on again (no reload), then the picture
                page.wait_for_function(f"Number(document.querySelector('#progress').getAttribute('aria-valuenow'))"
                                       f" > {before}", timeout=30_000)
                page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=60_000)
                page.wait_for_function("document.querySelector('#image').naturalWidth > 0")
                page.wait_for_selector("#gallery button")
                page.screenshot(path=str(artifacts_dir / "browser-restarted-under-page.png"), full_page=True)
                assert len(comfy.posted) == 1  # followed, not rendered twice
            finally:
                second.stop()
        finally:
            browser.close()
            first.stop()
