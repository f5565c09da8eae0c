"""The page in headless Chromium with a fake microphone fed from generated speech."""
from __future__ import annotations

import copy
import json
import re

import pytest
import requests

from .support import speech
from .support.app_process import AppProcess
from .support.browser import launch, speaking_page
from .support.data import SHIPPED
from .support.fake_comfy import FakeComfyUI, Knobs
from .support.fake_llm import FakeLlmServer

pytestmark = pytest.mark.browser

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


def test_live_transcript_while_speaking(playwright, live_server, clips_dir, artifacts_dir):
    # long quiet after the words, so the fake microphone does not loop them back before Stop
    browser, page, _ = speaking_page(playwright, clips_dir, "a lighthouse on a rocky coast during a "
                                     "storm with huge waves and a small red boat", "live", tail_s=20.0)
    try:
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # any console error fails the spoken loop (a socket closed with a broken frame was one)
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.goto(live_server.url)
        page.wait_for_selector("#health-whisper.ok", timeout=60_000)
        page.click("#record")
        page.wait_for_selector("#record.recording")
        assert page.inner_text("#stage") == "Listening…"
        # words show while the person speaks, before Stop
        page.wait_for_function("(document.querySelector('#live-transcript')?.textContent || '').length > 3",
                               timeout=30_000)
        assert page.get_attribute("#record", "aria-pressed") == "true"
        assert page.is_visible("#live-transcript") and page.is_hidden("#transcript")  # in the box's place, once
        page.wait_for_function("document.querySelector('#live-transcript').textContent.toLowerCase()"
                               ".includes('boat')", timeout=30_000)
        page.screenshot(path=str(artifacts_dir / "browser-live-transcript.png"), full_page=True)
        page.wait_for_timeout(2000)  # the quiet after the words, as before an auto-stop
        page.click("#record")
        page.wait_for_function("document.querySelector('#transcript').value.length > 0", timeout=60_000)
        text = page.input_value("#transcript").lower()
        for word in ("rocky", "coast", "storm", "boat"):
            assert word in text, text
        meta = page.inner_text("#transcript-meta")
        assert "transcribed live" in meta, meta
        # after the quiet, the end-of-speech pass had read it all: Stop waited for no pass (how soon the
        # text is there is measured by benchmarks/bench_stream.py, not here: a timed assertion fails on a busy machine)
        assert "final text ready at Stop" in meta, meta
        assert page.is_hidden("#live-transcript") and page.is_visible("#transcript")
        page.wait_for_selector("#prompt-source:not([hidden])", timeout=30_000)
        assert "lighthouse" in page.input_value("#prompt").lower().replace(" ", "")
        page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=30_000)
        page.wait_for_timeout(1500)  # the live socket's close, which comes after the job started
        assert errors == []
    finally:
        browser.close()


def test_recording_is_uploaded_when_the_audio_socket_is_refused(playwright, live_server, clips_dir):
    browser, page, wav = speaking_page(playwright, clips_dir, "a green apple on a wooden table",
                                       "fallback", tail_s=6.0)
    try:
        refused = []
        page.route_web_socket("**/ws/audio*", lambda ws: (refused.append(ws.url), ws.close()))
        page.goto(live_server.url)
        page.wait_for_selector("#health-whisper.ok", timeout=60_000)
        page.click("#record")
        page.wait_for_selector("#record.recording")
        page.wait_for_timeout(int((speech.wav_seconds(wav) + 1.0) * 1000))
        page.click("#record")
        page.wait_for_function("document.querySelector('#transcript').value.length > 0", timeout=60_000)
        assert refused
        assert "apple" in page.input_value("#transcript").lower()
        meta = page.inner_text("#transcript-meta")
        assert "transcribed in" in meta and "live" not in meta, meta  # the upload path's words
        page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=30_000)
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
        assert page.inner_text("#timer") != "0:00"
        page.keyboard.press("Space")
        page.wait_for_function("document.querySelector('#transcript').value.length > 0", timeout=60_000)
        assert "apple" in page.input_value("#transcript").lower()
        assert page.inner_text("#timer") == "0:00"  # ready for the next recording
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


def test_rewrite_streams_the_llm_prompt_live(playwright, serve, artifacts_dir):
    with FakeLlmServer() as llm:
        llm.behaviour.token_delay_s = 0.05
        server = serve(llm_url=llm.url)
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
    with FakeComfyUI(Knobs(step_delay_s=0.02)) as comfy:
        server = serve(comfyui_url=comfy.url, tts_engine="espeak", steps=6)
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
            # the render box overrides one job; it opens on demand, and an empty field keeps the saved default
            page.wait_for_function("document.querySelector('#workflow option').textContent === 'txt2img.json (settings)'")
            assert page.input_value("#workflow") == ""
            page.click("#overrides summary")
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
            assert body["preset"] == "balanced"
            assert not {"seed", "model", "workflow"} & set(body)  # empty controls leave the server's defaults
            inputs = comfy.posted[-1]["prompt"]["3"]["inputs"]
            assert (inputs["steps"], inputs["cfg"]) == (4, 5.5)
            assert problems == []
        finally:
            browser.close()


def test_cancel_mid_render(playwright, serve, artifacts_dir):
    with FakeComfyUI(Knobs(step_delay_s=0.4)) as comfy:
        server = serve(comfyui_url=comfy.url, tts_engine="espeak", steps=30)
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
            assert page.inner_text("#step") == ""  # no "step 2/30" left behind
            assert page.is_enabled("#generate")
        finally:
            browser.close()


def test_a_cancel_that_waits_for_a_slow_step_says_so(playwright, serve):
    with FakeComfyUI(Knobs(step_delay_s=1.6)) as comfy:  # a CPU: each step takes a while
        server = serve(comfyui_url=comfy.url, steps=30)
        browser = launch(playwright)
        try:
            page = open_page(browser, server)
            type_request(page, "a very slow painting")
            page.wait_for_function("document.querySelector('#step').textContent === 'step 3/30'", timeout=30_000)
            page.click("#cancel")
            page.wait_for_function("document.querySelector('#step').textContent.startsWith('stopping')",
                                   timeout=5_000)
            assert page.inner_text("#step") == "stopping after the current step (about 2 s)…"
            page.wait_for_function("document.querySelector('#stage').textContent === 'Cancelled'", timeout=20_000)
        finally:
            browser.close()


def test_gallery_after_restart_and_run_again(playwright, serve, artifacts_dir):
    with FakeComfyUI(Knobs(step_delay_s=0.02)) as comfy:
        server = serve(comfyui_url=comfy.url, tts_engine="espeak", steps=6)
        browser = launch(playwright)
        try:
            page = open_page(browser, server)
            type_request(page, "a lantern in the fog")
            page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=30_000)
        finally:
            browser.close()
        server.stop()
        first_seed = comfy.posted[-1]["prompt"]["3"]["inputs"]["seed"]
        server = serve(comfyui_url=comfy.url, tts_engine="espeak", steps=6)  # a new server on the same data folder
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
    with FakeComfyUI(Knobs(step_delay_s=0.02)) as comfy:
        server = serve(comfyui_url=comfy.url, tts_engine="espeak", steps=6)
        browser = launch(playwright)
        try:
            asked = []
            page = browser.new_page(viewport={"width": 1200, "height": 900}, bypass_csp=True)
            page.on("request", lambda r: asked.append(r.url.split("?")[0].removeprefix(server.url)))
            page = open_page(browser, server, page=page)
            assert page.inner_text("#canvas") == "The picture appears here."  # the empty box says what it is for
            page.click("#settings-panel summary")
            page.wait_for_function("document.querySelector('#settings-form [name=steps]').value === '6'")
            # the panel offers what ComfyUI and our workflows have, each asked for once per load
            page.wait_for_function("document.querySelectorAll('#checkpoints option').length === 2")
            assert page.input_value("#settings-workflow") == "txt2img.json"
            assert asked.count("/api/comfyui") == 1 and asked.count("/api/llm") == 1
            # a value that means "the model's recipe" or "random" is the empty field saying so, not a bare 0 or -1
            for name, means in (("cfg", "model's recipe"), ("shift", "model's recipe"), ("seed", "random")):
                assert page.input_value(f"#settings-form [name={name}]") == ""
                assert page.get_attribute(f"#settings-form [name={name}]", "placeholder") == means
            page.fill("#settings-form [name=steps]", "3")
            page.fill("#settings-form [name=seed]", "4242")
            page.click("#settings-form button[type=submit]")
            page.wait_for_function("document.querySelector('#settings-status').textContent.startsWith('Saved')")
            saved = requests.get(server.url + "/api/settings", timeout=10).json()["settings"]
            assert (saved["steps"], saved["seed"], saved["cfg"], saved["shift"], saved["width"]) == (3, 4242, 0.0, 0.0, 64)  # empty kept its meaning
            page.screenshot(path=str(artifacts_dir / "browser-settings.png"), full_page=True)
            type_request(page, "a quiet harbour")
            page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=30_000)
            inputs = comfy.posted[-1]["prompt"]["3"]["inputs"]
            assert (inputs["steps"], inputs["seed"]) == (3, 4242)
            assert page.is_hidden("#canvas .canvas-empty")  # the picture in its place
            assert "3 steps" in page.inner_text("#render-info")
            page.fill("#settings-form [name=comfyui_url]", "ftp://nowhere")
            page.click("#settings-form button[type=submit]")
            page.wait_for_function("document.querySelector('#settings-status').textContent.includes('must look like')")
        finally:
            browser.close()


def test_settings_say_where_values_come_from_and_reset(playwright, serve, monkeypatch, artifacts_dir):
    monkeypatch.setenv("SPEECH2IMAGE_SAMPLER", "dpmpp_2m")
    with FakeComfyUI(Knobs(step_delay_s=0.02)) as comfy:
        server = serve(comfyui_url=comfy.url, tts_engine="espeak", steps=6)
        browser = launch(playwright)
        try:
            page = open_page(browser, server)
            page.click("#settings-panel summary")
            note = "#settings-form [data-source-for=sampler]"
            page.wait_for_selector(note + ":not([hidden])")
            assert page.inner_text(note) == "set by SPEECH2IMAGE_SAMPLER for this run"
            assert page.is_disabled("#settings-form [name=sampler]")
            assert page.is_hidden("#settings-form [data-reset=steps]") and page.is_hidden("#reset-all")
            page.fill("#settings-form [name=steps]", "3")
            page.click("#settings-form button[type=submit]")  # the locked field is not sent, so this saves
            page.wait_for_selector("#settings-form [data-reset=steps]:not([hidden])")
            assert page.is_visible("#reset-all")
            page.screenshot(path=str(artifacts_dir / "browser-settings-sources.png"), full_page=True)
            page.click("#settings-form [data-reset=steps]")
            page.wait_for_function("document.querySelector('#settings-form [name=steps]').value === '6'")
            assert page.is_hidden("#settings-form [data-reset=steps]")
            assert page.inner_text("#settings-status") == "Reset to the default."
        finally:
            browser.close()


def test_health_light_turns_red_when_comfyui_stops(playwright, serve, artifacts_dir):
    comfy = FakeComfyUI()
    comfy.__enter__()
    server = serve(comfyui_url=comfy.url, tts_engine="espeak", steps=6)
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


# --- the job in view, messages a person can read, health at a glance, small things ---------

IN_VIEW = """(selector) => {
  const box = document.querySelector(selector).getBoundingClientRect();
  return box.width > 0 && box.height > 0 && box.top >= 0 && box.bottom <= window.innerHeight;
}"""


def in_view(page, selector):
    return page.evaluate(IN_VIEW, selector)


def wait_for_stage(page, label, timeout=30_000):
    page.wait_for_function(f"document.querySelector('#stage').textContent === {json.dumps(label)}", timeout=timeout)


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_job_strip_keeps_stage_step_eta_and_cancel_in_view(playwright, serve, artifacts_dir, viewport):
    name = "desktop" if viewport["width"] > 500 else "phone"
    with FakeComfyUI(Knobs(step_delay_s=0.3)) as comfy:
        server = serve(comfyui_url=comfy.url, tts_engine="espeak", steps=30)
        browser = launch(playwright)
        try:
            page = open_page(browser, server, viewport)
            assert page.is_hidden("#job-strip")  # nothing to follow yet
            type_request(page, "a slow lighthouse at night")
            # once a few steps have passed, the strip says about how long is left
            page.wait_for_function("/^about \\d+ (s|min) left$/.test(document.querySelector('#eta').textContent)",
                                   timeout=30_000)
            assert re.fullmatch(r"step \d+/30", page.inner_text("#step"))
            for where in ("0", "document.body.scrollHeight", "0"):  # wherever the person scrolls
                page.evaluate(f"window.scrollTo(0, {where})")
                page.wait_for_timeout(150)
                assert in_view(page, "#job-strip") and in_view(page, "#stage") and in_view(page, "#cancel"), where
            page.evaluate("document.querySelector('#generate').scrollIntoView()")
            page.wait_for_timeout(150)
            assert in_view(page, "#cancel")
            page.screenshot(path=str(artifacts_dir / f"browser-strip-{name}.png"))
            # what the render was given is a line under the picture, not printed over it
            assert "30 steps" in page.inner_text("#render-info")
            assert page.evaluate("document.querySelector('#render-info').getBoundingClientRect().top >= "
                                 "document.querySelector('#canvas').getBoundingClientRect().bottom")
            page.click("#cancel")
            wait_for_stage(page, "Cancelled")
            assert in_view(page, "#stage")
            assert page.inner_text("#step") == "" and page.inner_text("#eta") == ""
            page.screenshot(path=str(artifacts_dir / f"browser-strip-cancelled-{name}.png"))
        finally:
            browser.close()


def test_overrides_are_for_one_job_and_show_what_empty_means(playwright, serve, artifacts_dir):
    long = copy.deepcopy(SHIPPED)
    long["3"]["inputs"]["steps"] = 30
    with FakeComfyUI(Knobs(step_delay_s=0.02)) as comfy:
        server = serve(comfyui_url=comfy.url, tts_engine="espeak", steps=6)  # saved: 6 steps, 64x64
        browser = launch(playwright)
        try:
            page = open_page(browser, server, {"width": 1280, "height": 900})

            def first_option(selector):
                return page.eval_on_selector(selector, "select => select.options[0].textContent")

            page.wait_for_function("document.querySelector('#steps').placeholder === '6 (settings)'")
            page.wait_for_function("document.querySelectorAll('#checkpoint option').length === 3")
            assert in_view(page, "#generate")  # the render box no longer pushes it below the fold
            assert page.is_hidden("#steps") and "Override for this job" in page.inner_text("#overrides summary")
            placeholders = [page.get_attribute(f"#{name}", "placeholder") for name in ("cfg", "width", "seed")]
            # with a shipped workflow, what the settings leave open is the model's recipe (an SD 1.5 model here)
            assert placeholders == ["7 (SD 1.5 recipe)", "64 (settings)", "random"]
            assert first_option("#workflow") == "txt2img.json (settings)" and page.input_value("#workflow") == ""
            assert first_option("#sampler") == "euler (SD 1.5 recipe)"
            assert first_option("#tts-engine") == "espeak (settings)"
            # the workflow's own checkpoint is not in this ComfyUI, so its first one is used
            assert first_option("#checkpoint") == "tiny-sd15-random.safetensors (ComfyUI's first)"
            # a saved change shows at once, and so does going back to the recipe's value
            page.click("#settings-panel summary")
            for saved, shown in (("2", "2 (settings)"), ("0", "20 (SD 1.5 recipe)")):
                page.fill("#settings-form [name=steps]", saved)
                page.click("#settings-form button[type=submit]")
                page.wait_for_function(f"document.querySelector('#steps').placeholder === {json.dumps(shown)}")
            # a person's own workflow for this job brings its own values
            page.click("#overrides summary")
            page.set_input_files("#workflow-file", files=[{"name": "long.json", "mimeType": "application/json",
                                                           "buffer": json.dumps(long).encode()}])
            page.wait_for_function("document.querySelector('#steps').placeholder === '30 (workflow)'")
            assert page.input_value("#workflow") == "long.json"
            assert page.inner_text("#overrides-count") == "1 set"
            page.locator("#overrides").scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts_dir / "browser-overrides.png"))
        finally:
            browser.close()


def test_failed_job_shows_what_ran_and_keeps_error_and_run_again_in_view(playwright, serve, artifacts_dir):
    # ComfyUI refuses the job before it runs: the checkpoint is not there
    with FakeComfyUI(Knobs(step_delay_s=0.02)) as comfy:
        server = serve(comfyui_url=comfy.url, tts_engine="espeak", steps=6, checkpoint="nope.safetensors")
        browser = launch(playwright)
        try:
            page = open_page(browser, server, {"width": 390, "height": 844})  # a phone
            type_request(page, "a castle made of sand")
            wait_for_stage(page, "Failed")
            page.wait_for_timeout(300)
            assert in_view(page, "#stage") and in_view(page, "#failure-message") and in_view(page, "#run-again")
            message = page.inner_text("#failure-message")
            assert message.startswith("ComfyUI refused the workflow: checkpoint 'nope.safetensors' is not in ComfyUI")
            assert message.endswith(".")
            assert page.is_hidden("#canvas")  # no empty box where no picture will come
            timings = page.inner_text("#stages")
            assert timings.startswith("Waited") and "prompt" in timings
            assert "render" not in timings and "voice" not in timings  # ComfyUI never ran it; no voice offered
            assert page.inner_text("#step") == ""
            page.screenshot(path=str(artifacts_dir / "browser-failed-phone.png"))
            prompt = page.input_value("#prompt")
            with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/jobs")) as again:
                page.click("#run-again")
            assert again.value.post_data_json["prompt"] == prompt
            page.wait_for_function("window.__stages.filter((s) => s === 'Failed').length === 2", timeout=30_000)
        finally:
            browser.close()


def test_notes_are_sentences_shown_once_per_session(playwright, serve, artifacts_dir):
    # no previews, and the workflow's checkpoint is missing: two notes on every job
    with FakeComfyUI(Knobs(step_delay_s=0.02, previews=False)) as comfy:
        server = serve(comfyui_url=comfy.url, tts_engine="espeak", steps=6)
        browser = launch(playwright)
        try:
            page = open_page(browser, server)
            type_request(page, "a blue bicycle")
            wait_for_stage(page, "Done")
            notes = page.locator("#notes li").all_inner_texts()
            assert len(notes) == 2, notes
            checkpoint, preview = notes
            assert checkpoint.startswith("The workflow's checkpoint 'v1-5-pruned-emaonly.safetensors' is not in "
                                         "ComfyUI; used 'tiny-sd15-random.safetensors' (SD 1.5) automatically (the "
                                         "model used last, else the first ComfyUI lists; choose one in Settings to "
                                         "fix it). Choose a checkpoint")
            assert preview.startswith("No live preview") and preview.endswith(".")
            page.screenshot(path=str(artifacts_dir / "browser-notes.png"))
            page.click("#notes button")  # the fix is a setting
            assert page.evaluate("document.querySelector('#settings-panel').open")
            assert page.evaluate("document.activeElement.name") == "checkpoint"
            type_request(page, "a green bicycle")
            page.wait_for_function("window.__stages.filter((s) => s === 'Done').length === 2", timeout=30_000)
            assert page.locator("#notes li").count() == 0  # the same notes are not repeated
        finally:
            browser.close()


def test_server_away_is_said_plainly_and_checked_again(playwright, serve, artifacts_dir):
    server = serve()
    port = server.server.server_port
    browser = launch(playwright)
    try:
        page = open_page(browser, server)
        page.wait_for_selector("#health-comfyui.bad")  # the first check answered
        server.stop()
        page.wait_for_selector("#server-banner:not([hidden])", timeout=15_000)
        away = "The speech2image server is not answering — is it still running?"
        assert page.inner_text("#server-banner").startswith(away)
        type_request(page, "a lamp in the window")
        page.wait_for_selector("#message.error")
        assert page.inner_text("#message") == away
        page.screenshot(path=str(artifacts_dir / "browser-server-away.png"))
        serve(port=port)  # started again where it was
        page.wait_for_selector("#server-banner", state="hidden", timeout=15_000)
    finally:
        browser.close()


def test_health_lights_explain_themselves_on_a_tap(playwright, serve, artifacts_dir):
    server = serve()  # the LLM switched off, no ComfyUI
    browser = launch(playwright)
    try:
        context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True,
                                      bypass_csp=True)
        page = context.new_page()
        page.goto(server.url)
        page.wait_for_selector("#health-llm.offline")  # writing offline is a normal state, not an error
        page.tap("#health-llm")
        assert page.get_attribute("#health-llm", "aria-expanded") == "true"
        detail = page.inner_text("#health-detail")
        assert "offline rewriter" in detail and "SPEECH2IMAGE_LLM_URL" in detail
        assert in_view(page, "#health-detail")
        page.screenshot(path=str(artifacts_dir / "browser-health-tap.png"))
        page.tap("#health-comfyui")
        assert page.get_attribute("#health-llm", "aria-expanded") == "false"
        detail = page.inner_text("#health-detail")
        assert "ComfyUI at http://127.0.0.1:9 is not answering" in detail and "To fix:" in detail
        page.keyboard.press("Escape")
        assert page.is_hidden("#health-detail")
        assert page.get_attribute("#health-comfyui", "aria-expanded") == "false"
        assert page.evaluate("document.activeElement.id") == "health-comfyui"
    finally:
        browser.close()


def test_missing_comfyui_is_said_at_load_with_how_to_start_it(playwright, serve, artifacts_dir):
    with FakeComfyUI() as comfy:
        server = serve()  # set up with ComfyUI at :9, where none listens
        browser = launch(playwright)
        try:
            page = open_page(browser, server, {"width": 1280, "height": 900})
            page.wait_for_selector("#comfy-banner:not([hidden])", timeout=15_000)
            banner = page.inner_text("#comfy-banner")
            assert "ComfyUI is not answering at http://127.0.0.1:9" in banner
            # an address the person set: the fix is to check that address, not the usual start command
            assert "check that ComfyUI runs at that address" in banner and "listens on that port" in banner
            assert page.locator("#comfy-banner code").all_inner_texts() == ["SPEECH2IMAGE_COMFYUI_URL"]
            page.screenshot(path=str(artifacts_dir / "browser-comfyui-banner.png"))
            # a job still writes the prompt: it waits for ComfyUI, said once, in the strip, with how to start it
            type_request(page, "a snowy owl")
            wait_for_stage(page, "Waiting for ComfyUI")
            assert "python main.py" in page.inner_text("#failure-message code")
            assert "Prompt ready" not in page.inner_text("#notes") and page.inner_text("#message") == ""
            assert page.is_hidden("#comfy-banner") and "waiting" in page.get_attribute("#progress", "class")
            page.screenshot(path=str(artifacts_dir / "browser-waiting-for-comfyui.png"))
            # one click: it renders by itself once ComfyUI answers
            assert page.inner_text("#run-again") == "Render when ComfyUI is back"
            page.click("#run-again")
            assert page.is_disabled("#run-again")
            set_comfy = {"comfyui_url": comfy.url}
            assert requests.post(server.url + "/api/settings", json=set_comfy, timeout=10).status_code == 200
            wait_for_stage(page, "Done", timeout=30_000)
            assert "a snowy owl" in comfy.posted[-1]["prompt"]["6"]["inputs"]["text"]
            page.wait_for_selector("#comfy-banner", state="hidden", timeout=15_000)
            # once ComfyUI answers the banner goes; dismissed, it stays away
            set_comfy = {"comfyui_url": "http://127.0.0.1:9"}
            assert requests.post(server.url + "/api/settings", json=set_comfy, timeout=10).status_code == 200
            page.wait_for_selector("#comfy-banner:not([hidden])", timeout=15_000)
            page.click("#comfy-banner-close")
            page.wait_for_event("response", lambda r: r.url.endswith("/api/health"), timeout=15_000)
            page.wait_for_timeout(300)
            assert page.is_hidden("#comfy-banner")  # the next check does not bring it back
        finally:
            browser.close()


def test_gallery_shows_failures_when_asked_deletes_cleanly_and_names_downloads(playwright, serve, artifacts_dir):
    with FakeComfyUI(Knobs(step_delay_s=0.02)) as comfy:
        server = serve(comfyui_url=comfy.url, tts_engine="espeak", steps=6)
        browser = launch(playwright)
        try:
            page = open_page(browser, server)
            type_request(page, "A red fox in the snow!")
            wait_for_stage(page, "Done")
            assert re.fullmatch(r"a-red-fox-in-the-snow-[0-9a-f]{6}\.png", page.get_attribute("#download", "download"))
            # a job whose checkpoint breaks in ComfyUI
            page.click("#overrides summary")
            page.wait_for_function("document.querySelectorAll('#checkpoint option').length === 3")
            page.select_option("#checkpoint", "broken.safetensors")
            type_request(page, "a broken vase")
            wait_for_stage(page, "Failed")
            page.wait_for_selector("#gallery button")
            assert page.locator("#gallery button").count() == 1  # pictures only, by default
            page.check("#gallery-all")
            page.wait_for_function("document.querySelectorAll('#gallery button').length === 2")
            failed = page.locator("#gallery button[data-stage=error]")
            assert "Failed" in failed.inner_text() and "Error while deserializing" in failed.inner_text()
            page.locator("#gallery").scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts_dir / "browser-gallery-failed.png"))
            failed.click()
            assert page.input_value("#prompt").startswith("a broken vase")
            assert "Error while deserializing" in page.inner_text("#failure-message")
            # deleting an entry takes its texts out of the fields too
            page.on("dialog", lambda dialog: dialog.accept())
            page.click("#delete-entry")
            page.wait_for_function("document.querySelectorAll('#gallery button').length === 1")
            assert [page.input_value(f) for f in ("#transcript", "#prompt", "#negative", "#caption")] == [""] * 4
        finally:
            browser.close()


def test_time_left_and_the_cpu_note_on_the_page(playwright, serve, artifacts_dir):
    """The step line says how long the sampler has left; a CPU-only ComfyUI is said once, with a
    warning on a job that would take minutes there."""
    with FakeComfyUI(Knobs(step_delay_s=0.15)) as comfy:
        server = serve(comfyui_url=comfy.url, tts_engine="espeak", steps=20, width=1024, height=1024)
        browser = launch(playwright)
        try:
            page = open_page(browser, server)
            page.wait_for_selector("#device-note:not([hidden])", timeout=15_000)
            assert "ComfyUI runs on the CPU here" in page.text_content("#device-note")
            type_request(page, "a kite over a beach")
            page.wait_for_function("/^step \\d+\\/20$/.test(document.querySelector('#step').textContent) && "
                                   "/^about \\d+ (s|min) left$/.test(document.querySelector('#eta').textContent)",
                                   timeout=30_000)
            assert "1024×1024 at 20 steps will take about 11 min" in page.text_content("#notes")
            page.screenshot(path=str(artifacts_dir / "browser-time-left.png"))
            page.wait_for_function("document.querySelector('#stage').textContent === 'Done'", timeout=60_000)
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
