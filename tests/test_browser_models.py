"""The models on the page, in headless Chromium: the Model picker names each file's family, a LoRA picked
with its strength reaches ComfyUI's graph with its trigger words, and Settings → Models corrects a
file's family, against the fake ComfyUI whose folders hold a model of each kind."""
from __future__ import annotations

import pytest

from .support.browser import launch
from .support.fake_comfy import FakeComfyUI, Knobs
from .support.live import LiveServer
from .support.model_files import family_folders


@pytest.fixture
def server(make_app):
    with FakeComfyUI(Knobs(step_delay_s=0.01, **family_folders())) as comfy:
        with LiveServer(make_app(comfyui_url=comfy.url, steps=2, width=64, height=64)) as live:
            live.comfy = comfy
            yield live


def open_page(playwright, server):
    browser = launch(playwright)
    page = browser.new_page(viewport={"width": 1200, "height": 1000}, bypass_csp=True)  # the tests' waits
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url)
    return browser, page, errors


def test_a_lora_picked_on_the_page_reaches_the_graph(playwright, server, artifacts_dir):
    browser, page, errors = open_page(playwright, server)
    try:
        page.click("#overrides summary")
        page.wait_for_function("document.querySelectorAll('#checkpoint option').length > 3")
        labels = page.eval_on_selector_all("#checkpoint option", "options => options.map(o => o.textContent)")
        assert "juggernautXL_v9.safetensors (SDXL)" in labels
        assert "flux1-dev-fp8_e4m3fn.safetensors (Flux.1)" in labels
        page.select_option("#checkpoint", "juggernautXL_v9.safetensors")
        page.wait_for_function("document.querySelector('#cfg').placeholder === '6 (SDXL recipe)'")
        picker = "[data-lora-picker]:has(#loras)"
        page.select_option(f"{picker} .lora-add", "detail-tweaker-xl.safetensors")
        page.fill(f"{picker} .lora-row input[type=number]", "0.65")
        page.dispatch_event(f"{picker} .lora-row input[type=number]", "change")
        assert page.input_value("#loras") == '[{"name":"detail-tweaker-xl.safetensors","strength":0.65}]'
        page.screenshot(path=str(artifacts_dir / "browser-models-lora.png"))
        page.fill("#typed", "a castle on a hill")
        page.press("#typed", "Enter")
        page.wait_for_selector("#image:not([hidden])", timeout=30_000)
        graph = server.comfy.posted[-1]["prompt"]
        lora = next(node["inputs"] for node in graph.values() if node["class_type"] == "LoraLoader")
        assert (lora["lora_name"], lora["strength_model"]) == ("detail-tweaker-xl.safetensors", 0.65)
        assert graph["6"]["inputs"]["text"].startswith("xldetail, intricate lines, a castle")
        assert "juggernautXL_v9.safetensors (SDXL)" in page.inner_text("#render-info")
        assert errors == []
    finally:
        browser.close()


def test_settings_models_panel_corrects_a_family(playwright, server, artifacts_dir):
    browser, page, errors = open_page(playwright, server)
    try:
        page.click("#models-panel summary")
        row = "#models-rows tr:has(td:text-is('v1-5-pruned-emaonly.safetensors'))"
        page.wait_for_selector(row)
        assert page.input_value(f"{row} select >> nth=0") == "sd15"
        assert "name: v1-5" in page.inner_text(row)
        page.select_option(f"{row} select >> nth=0", "sdxl")
        page.wait_for_function("document.querySelector('#models-status').textContent.includes('drawn as SDXL')")
        page.wait_for_selector(f"{row} button:text('Detect again')")
        assert "your choice" in page.inner_text(row)
        page.screenshot(path=str(artifacts_dir / "browser-models-panel.png"), full_page=True)
        page.click(f"{row} button:text('Detect again')")
        page.wait_for_function("document.querySelector('#models-status').textContent.includes('detected again')")
        assert page.input_value(f"{row} select >> nth=0") == "sd15"
        assert errors == []
    finally:
        browser.close()
