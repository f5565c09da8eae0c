"""The ComfyUI client against the fake ComfyUI built from the real traces."""
from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from speech2image.picture.comfy import (
    ComfyClient,
    ComfyError,
    ComfyUnavailable,
    ProgressTracker,
    PromptRun,
    RenderCancelled,
    describe_validation_error,
    parse_binary_frame,
)
from speech2image.picture.workflows import RenderParams, fill, load_workflow

from .support.fake_comfy import FakeComfyUI, Knobs
from .support.fake_llm import dead_url

ROOT = Path(__file__).resolve().parent.parent
TRACES = Path(__file__).resolve().parent / "comfyui_traces"  # recorded from a real ComfyUI 0.3.64


@pytest.fixture
def comfy():
    with FakeComfyUI() as server:
        yield server


def shipped_graph(prompt="a cat wearing a red hat", checkpoint="tiny-sd15-random.safetensors", seed=7, steps=6, **kw):
    workflow = load_workflow((ROOT / "workflows" / "txt2img.json").read_text(), "txt2img.json")
    graph, _ = fill(workflow, RenderParams(prompt_text=prompt, negative_text="blurry", seed=seed, steps=steps,
                                           width=kw.get("width", 96), height=kw.get("height", 64), checkpoint=checkpoint))
    return graph, workflow


def render(comfy_url, graph, workflow=None, cancel=None, **client_args):
    events = []
    client = ComfyClient(comfy_url, **client_args)
    heavy = {workflow.roles.sampler} if workflow else set()
    # the submit hook's call, in line with the events: where the prompt goes is told before it is posted
    result = client.render(graph, events.append, on_submit=lambda submitted: events.append({"type": "submit", **submitted}),
                           cancel=cancel, heavy_nodes=heavy)
    return result, events


def test_normal_run_reports_progress_previews_and_image(comfy):
    graph, workflow = shipped_graph()
    result, events = render(comfy.url, graph, workflow)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["submit", "started"]  # where the prompt goes is told before it is posted
    assert events[0]["prompt_id"] == result.prompt_id and events[0]["graph"] == graph
    steps = [(e["value"], e["max"]) for e in events if e["type"] == "progress" and "value" in e]
    assert steps == [(i, 6) for i in range(1, 7)]
    percents = [e["percent"] for e in events if "percent" in e]
    assert percents == sorted(percents) and percents[-1] == 100.0
    assert kinds.count("preview") == 6
    assert result.previews == 6 and result.notes == []
    image = Image.open(io.BytesIO(result.images[0].data))
    assert image.format == "PNG" and image.size == (96, 64)
    body = comfy.posted[0]
    assert body["prompt_id"] == result.prompt_id and body["client_id"] == events[0]["client_id"]
    assert body["client_id"].startswith("s2i-")  # ComfyUI's queue shows the prompt is ours
    assert body["prompt"]["6"]["inputs"]["text"] == "a cat wearing a red hat"


def test_previews_carry_metadata_after_feature_flag(comfy):
    graph, workflow = shipped_graph()
    _, events = render(comfy.url, graph, workflow)
    previews = [e for e in events if e["type"] == "preview"]
    assert all(p["mime"] == "image/jpeg" and p["image"][:2] == b"\xff\xd8" for p in previews)


def test_cached_run_has_no_progress_but_still_an_image(comfy):
    graph, workflow = shipped_graph(seed=11)
    render(comfy.url, graph, workflow)
    result, events = render(comfy.url, graph, workflow)
    assert result.cached is True
    assert not [e for e in events if e["type"] == "progress" and "value" in e]
    assert result.images and result.notes == []  # no preview hint for a cached run


def test_no_previews_gives_the_hint(comfy):
    comfy.knobs.previews = False
    graph, workflow = shipped_graph(seed=12)
    result, _ = render(comfy.url, graph, workflow)
    assert "--preview-method auto" in result.notes[0]


def test_unknown_checkpoint_lists_available(comfy):
    graph, workflow = shipped_graph(checkpoint="nope.safetensors")
    with pytest.raises(ComfyError) as info:
        render(comfy.url, graph, workflow)
    assert info.value.code == "comfyui_rejected"
    assert "checkpoint 'nope.safetensors' is not in ComfyUI; available: tiny-sd15-random.safetensors, broken.safetensors" in info.value.message


def test_execution_error_names_node_and_exception(comfy):
    graph, workflow = shipped_graph(checkpoint="broken.safetensors", seed=13)
    with pytest.raises(ComfyError) as info:
        render(comfy.url, graph, workflow)
    assert info.value.code == "comfyui_execution_error"
    assert info.value.message == ("ComfyUI failed in CheckpointLoaderSimple (node 4): "
                                  "Error while deserializing header: header too large")


def test_interrupt_while_running(comfy):
    comfy.knobs.step_delay_s = 0.2
    graph, workflow = shipped_graph(seed=14, steps=12)
    cancel = threading.Event()
    events = []

    def on_event(event):
        events.append(event)
        if event.get("value") == 3:
            cancel.set()

    with pytest.raises(RenderCancelled):
        ComfyClient(comfy.url).render(graph, on_event, cancel=cancel)
    assert comfy.interrupts[0]["prompt_id"] == comfy.posted[0]["prompt_id"]
    assert max(e.get("value", 0) for e in events) < 12


def test_cancel_while_pending_deletes_from_queue(comfy):
    comfy.knobs.step_delay_s = 0.2
    first, workflow = shipped_graph(seed=15, steps=10)
    runner = threading.Thread(target=render, args=(comfy.url, first, workflow))
    runner.start()
    while not comfy.running:
        threading.Event().wait(0.02)
    second, _ = shipped_graph(seed=16)
    cancel = threading.Event()
    events = []

    def on_event(event):
        events.append(event)
        if event["type"] == "queued":
            cancel.set()

    with pytest.raises(RenderCancelled):
        ComfyClient(comfy.url).render(second, on_event, cancel=cancel)
    assert events[0] == {"type": "queued", "position": 2}
    assert comfy.deletes == [comfy.posted[1]["prompt_id"]]
    assert not comfy.interrupts
    runner.join()


def test_queue_position_is_reported(comfy):
    comfy.knobs.step_delay_s = 0.1
    first, workflow = shipped_graph(seed=17, steps=5)
    runner = threading.Thread(target=render, args=(comfy.url, first, workflow))
    runner.start()
    while not comfy.running:
        threading.Event().wait(0.02)
    second, workflow = shipped_graph(seed=18, steps=2)
    _, events = render(comfy.url, second, workflow)
    runner.join()
    assert events[1] == {"type": "queued", "position": 2}
    assert [e["type"] for e in events].index("started") > 0


def test_websocket_drop_mid_run_still_finishes(comfy):
    comfy.knobs.drop_sockets_at_step = 2
    comfy.knobs.step_delay_s = 0.1
    graph, workflow = shipped_graph(seed=19)
    result, events = render(comfy.url, graph, workflow)
    assert comfy.dropped
    assert Image.open(io.BytesIO(result.images[0].data)).format == "PNG"


def test_unreachable_comfyui_says_how_to_start_it():
    with pytest.raises(ComfyUnavailable) as info:
        ComfyClient(dead_url("")).render({}, lambda e: None)
    assert "--preview-method auto" in info.value.message
    assert "SPEECH2IMAGE_COMFYUI_URL" in info.value.message


def test_garbage_prompt_500(comfy):
    with pytest.raises(ComfyError) as info:
        ComfyClient(comfy.url).submit("garbage", "c", "p")
    assert "HTTP 500" in info.value.message


def test_checkpoints_list(comfy):
    assert ComfyClient(comfy.url).checkpoints() == ["tiny-sd15-random.safetensors", "broken.safetensors"]


# --- facts from the real traces -------------------------------------------------


@pytest.mark.parametrize("trace,steps,previews,cached", [
    ("a_normal.json", 6, 6, False),
    ("b_cached.json", 0, 0, True),
    ("e_small.json", 6, 6, False),
    ("h_preview_metadata.json", 6, 6, False),
])
def test_real_trace_replayed(trace, steps, previews, cached):
    graph = json.loads((TRACES / "txt2img_api.json").read_text())
    with FakeComfyUI(Knobs(replay=str(TRACES / trace), replay_speed=20)) as comfy:
        result, events = render(comfy.url, graph)
    progress = [e for e in events if e["type"] == "progress" and "value" in e]
    assert [e["value"] for e in progress] == list(range(1, steps + 1))
    assert result.previews == previews and result.cached is cached
    assert Image.open(io.BytesIO(result.images[0].data)).format == "PNG"
    percents = [e["percent"] for e in events if "percent" in e]
    assert percents == sorted(percents) and percents[-1] == 100.0


def test_real_interrupt_trace_is_an_interrupt_from_outside():
    # The recorded interrupt came from another tool, not from us: it is no "Cancelled" the person chose.
    graph = json.loads((TRACES / "txt2img_api.json").read_text())
    with FakeComfyUI(Knobs(replay=str(TRACES / "d_interrupt.json"), replay_speed=5)) as comfy:
        with pytest.raises(ComfyError) as failure:
            render(comfy.url, graph)
    assert failure.value.code == "comfyui_interrupted" and not isinstance(failure.value, RenderCancelled)


def test_real_execution_error_trace():
    graph = json.loads((TRACES / "txt2img_api.json").read_text())
    with FakeComfyUI(Knobs(replay=str(TRACES / "e_exec_error.json"))) as comfy:
        with pytest.raises(ComfyError, match="CheckpointLoaderSimple .node 4.: Error while deserializing header"):
            render(comfy.url, graph)


def test_real_late_connect_trace_executing_without_prompt_id():
    """g_late_connect: the socket joined after the start; 'executing' has no prompt_id."""
    graph = json.loads((TRACES / "txt2img_api.json").read_text())
    with FakeComfyUI(Knobs(replay=str(TRACES / "g_late_connect.json"), replay_speed=10)) as comfy:
        result, events = render(comfy.url, graph)
    assert [e["value"] for e in events if "value" in e] == [4, 5, 6]
    assert result.images


@pytest.mark.parametrize("trace,expected", [
    ("c_bad_ckpt.json", "checkpoint 'nope.safetensors' is not in ComfyUI; available: tiny-sd15-random.safetensors"),
    ("c_missing_input.json", "KSampler (node 3) is missing its required input 'positive'"),
    ("c_unknown_node.json", "Cannot execute because node NoSuchNode does not exist. A custom node may be missing"),
])
def test_real_400_answers_are_described(trace, expected):
    body = json.loads((TRACES / trace).read_text())[0]["body"]
    assert expected in describe_validation_error(body)


def test_binary_frame_parsing():
    assert parse_binary_frame(b"\x00\x00\x00\x01\x00\x00\x00\x01\xff\xd8jpeg")["mime"] == "image/jpeg"
    meta = json.dumps({"prompt_id": "p", "image_type": "image/png"}).encode()
    frame = parse_binary_frame(b"\x00\x00\x00\x04" + len(meta).to_bytes(4, "big") + meta + b"\x89PNG")
    assert frame["meta"]["prompt_id"] == "p" and frame["image"] == b"\x89PNG" and frame["mime"] == "image/png"
    text = parse_binary_frame(b"\x00\x00\x00\x03\x00\x00\x00\x013hello")
    assert text == {"kind": "text", "node": "3", "text": "hello"}
    assert parse_binary_frame(b"\x00") is None


def quietly(work, *args):
    """A job in the background that the test ends by stopping the server under it."""
    try:
        work(*args)
    except ComfyError:
        pass


def test_queue_cleared_from_outside_says_comfyui_dropped_the_job():
    """Seen on a real ComfyUI: `POST /queue {"clear": true}` from another tool. The waiting job must
    not hang until a timeout: within a few seconds it says what happened."""
    with FakeComfyUI(Knobs(step_delay_s=0.1)) as comfy:
        graph, _ = shipped_graph(steps=30)
        first = threading.Thread(target=quietly, args=(render, comfy.url, graph), daemon=True)
        first.start()
        while comfy.running is None:
            time.sleep(0.02)
        errors = []

        def second_job():
            try:
                render(comfy.url, shipped_graph(seed=8)[0], watch_s=0.3)
            except ComfyError as exc:
                errors.append(exc)

        second = threading.Thread(target=second_job, daemon=True)
        second.start()
        while not comfy.pending:
            time.sleep(0.02)
        started = time.monotonic()
        requests.post(comfy.url + "/queue", json={"clear": True}, timeout=5)
        second.join(timeout=10)
        assert not second.is_alive(), "the dropped job is still waiting"
        assert time.monotonic() - started < 5
        requests.post(comfy.url + "/interrupt", json={}, timeout=5)
    assert errors and errors[0].code == "comfyui_dropped"
    assert "queue was cleared or it restarted" in errors[0].message


def test_interrupt_from_comfyui_itself_is_not_our_cancel(comfy):
    graph, workflow = shipped_graph(steps=40)
    done = []

    def interrupt_when_running(event):  # ComfyUI's own Cancel button posts /interrupt naming no prompt
        if event["type"] == "progress" and event.get("value") == 2 and not done:
            done.append(requests.post(comfy.url + "/interrupt", json={}, timeout=5).status_code)

    with pytest.raises(ComfyError) as failure:
        ComfyClient(comfy.url).render(graph, interrupt_when_running, heavy_nodes={workflow.roles.sampler})
    assert not isinstance(failure.value, RenderCancelled)
    assert failure.value.code == "comfyui_interrupted" and "not from this page" in failure.value.message


def test_stall_limit_counts_only_a_running_prompt():
    # Queued behind a long job for longer than the stall limit: still fine. Running and silent: stopped.
    with FakeComfyUI(Knobs(step_delay_s=0.05)) as comfy:
        blocker = threading.Thread(target=quietly, args=(render, comfy.url, shipped_graph(steps=30)[0]), daemon=True)
        blocker.start()
        while comfy.running is None:
            time.sleep(0.02)
        result, events = render(comfy.url, shipped_graph(seed=9, steps=3)[0], stall_s=0.8)
        assert any(e["type"] == "queued" for e in events) and result.images
        blocker.join(timeout=10)
    with FakeComfyUI(Knobs(step_delay_s=0.05, hang_at_step=2)) as comfy:
        started = time.monotonic()
        with pytest.raises(ComfyError) as failure:
            render(comfy.url, shipped_graph(steps=6)[0], stall_s=1.0)
        assert failure.value.code == "comfyui_stalled" and "SPEECH2IMAGE_RENDER_STALL_S" in failure.value.message
        assert time.monotonic() - started < 8
        assert comfy.interrupts, "the stuck prompt was stopped in ComfyUI too"


def test_next_in_line_with_nothing_ahead_is_not_announced_as_queued():
    # ComfyUI's worker picks a new prompt up a moment after POST /prompt: "Queued #1" would flash by.
    with FakeComfyUI(Knobs(pickup_delay_s=1.0)) as comfy:
        result, events = render(comfy.url, shipped_graph(steps=2)[0], watch_s=0.2)
    assert result.images and not [e for e in events if e["type"] == "queued"]
    assert [e["type"] for e in events if e["type"] != "submit"][0] == "started"


def test_recorded_history_of_an_outside_interrupt_reads_as_interrupted(comfy):
    """A real ComfyUI's /history for a prompt another tool interrupted (recorded on 0.3.64)."""
    recorded = json.loads((TRACES / "history_interrupted_during_sampling.json").read_text())
    prompt_id, entry = next(iter(recorded.items()))
    comfy.history[prompt_id] = entry
    ours = PromptRun(ComfyClient(comfy.url), prompt_id, ProgressTracker({}), lambda event: None)
    ours.settle_from_history()
    assert ours.outcome == "interrupted"  # nobody here pressed Cancel
    ours.outcome, ours.cancel_state = None, "interrupted"
    ours.settle_from_history()
    assert ours.outcome == "cancelled"  # the same record after our own cancel


def test_recorded_queue_positions(comfy):
    recorded = json.loads((TRACES / "queue_one_running_one_pending.json").read_text())
    comfy.running, comfy.pending = recorded["queue_running"][0], list(recorded["queue_pending"])
    client = ComfyClient(comfy.url)
    assert client.queue_position(recorded["queue_running"][0][1]) == 0
    assert client.queue_position(recorded["queue_pending"][0][1]) == 2  # one running ahead of it
    comfy.running, comfy.pending = None, []
