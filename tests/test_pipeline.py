"""The pipeline's ordering rules, tested on ``speech2image.jobs.Pipeline`` itself: stand-in stages
(tests/support/stages.py) for the transcriber, the prompt writer and the voice, the fake ComfyUI for
the picture, a real JobHistory and OutputStore in the test's folder, events read as a tab reads them."""
from __future__ import annotations

import queue
import threading
import uuid
from contextlib import contextmanager

import pytest

from speech2image.config import Settings
from speech2image.errors import UserFacingError
from speech2image.jobs import ACTIVE_STAGES, EVENTS, STAGES, JobHistory, JobRequest, OutputStore, Pipeline
from speech2image.picture import WorkflowLibrary
from speech2image.speech import TtsError

from .support import stages
from .support.data import ROOT
from .support.fake_comfy import FakeComfyUI, Knobs
from .support.fake_llm import dead_url
from .support.relay import finished

AUDIO = b"a recording the stand-in transcriber hears without decoding"
SAID = "a lighthouse on a rocky coast"  # what the stand-in transcriber hears in it
ALL_THE_WAY = ["transcribing", "writing_prompt", "submitting", "rendering", "saving", "done"]


@contextmanager
def pipeline(tmp_path, comfyui_url, transcriber=None, writer=None, voices=None, **settings):
    """A Pipeline built as the app builds it, on stand-in stages; shut down at the end of the block."""
    history = JobHistory(tmp_path / "speech2image.db")
    running = Pipeline(transcriber or stages.Transcriber(SAID), writer or stages.PromptWriter(),
                       WorkflowLibrary(ROOT / "workflows", tmp_path / "workflows"), OutputStore(tmp_path / "outputs"),
                       Settings(**{"comfyui_url": comfyui_url, "steps": 4, "width": 64, "height": 64, **settings}),
                       hub=stages.WatchedHub(history), voices=voices or stages.Voices(), history=history)
    try:
        yield running
    finally:
        running.shutdown()


def submit(pipe: Pipeline, **request):
    """A job in a tab of its own: the job, and the tab's events as they come."""
    session = uuid.uuid4().hex
    tab = pipe.hub.subscribe(session)
    return pipe.submit(JobRequest(session=session, **request)), tab


def follow(tab: queue.Queue, until=finished, timeout: float = 30.0) -> list[dict]:
    """The tab's events up to the first that matches ``until`` (the job's end by default)."""
    events = []
    while not events or not until(events[-1]):
        events.append(tab.get(timeout=timeout))
    return events


def run(pipe: Pipeline, **request):
    job, tab = submit(pipe, **request)
    return job, follow(tab)


def timeline(events) -> list[str]:
    """Each event by name: a stage's name for a stage, else its type."""
    return [e["stage"] if e["type"] == "stage" else e["type"] for e in events]


def stages_of(events) -> list[str]:
    return [e["stage"] for e in events if e["type"] == "stage"]


def test_the_stages_run_in_order_from_the_recording_to_the_picture(tmp_path, comfy):
    transcriber, writer, voices = stages.Transcriber(SAID), stages.PromptWriter(), stages.Voices()
    with pipeline(tmp_path, comfy.url, transcriber, writer, voices) as pipe:
        job, events = run(pipe, audio=AUDIO)
    assert stages_of(events) == ALL_THE_WAY
    order = timeline(events)
    assert order[0] == "job"
    assert (order.index("transcribing") < order.index("transcript") < order.index("writing_prompt")
            < order.index("token") < order.index("prompt") < order.index("submitting") < order.index("decision")
            < order.index("render") < order.index("rendering") < order.index("saving") < order.index("image")
            < order.index("done"))
    assert transcriber.heard == [AUDIO] and writer.asked == [SAID]
    assert comfy.posted[0]["prompt"]["6"]["inputs"]["text"] == f"{SAID}, highly detailed"
    assert voices.spoken == [f"Here is {SAID}."]
    snapshot = events[-1]["snapshot"]
    assert snapshot["transcript"] == SAID and snapshot["image_url"] == f"/outputs/{job.id}.png"
    assert (tmp_path / "outputs" / f"{job.id}.png").is_file() and (tmp_path / "outputs" / f"{job.id}.wav").is_file()
    assert set(snapshot["timings"]) >= {"asr", "prompt", "render", "speech", "save", "total"}


def test_the_caption_is_spoken_while_the_picture_renders(tmp_path, comfy):
    """Neither before the render nor after it: the voice waits until the render is under way, and the
    render waits at its first step until the voice is heard. A pipeline that spoke first would leave the
    voice waiting; one that spoke after the picture would leave the render waiting."""
    rendering, spoken = threading.Event(), threading.Event()
    stuck: list[str] = []

    def voice_waits_for_the_render(caption):
        if not rendering.wait(stages.HOLD_LIMIT_S):
            stuck.append("the voice was asked to speak before the render started, and the render never did")

    def gate(event):
        if event["type"] == "stage" and event["stage"] == "rendering":
            rendering.set()
        elif event["type"] == "audio":
            spoken.set()
        elif event["type"] == "progress" and not stuck and not spoken.wait(stages.HOLD_LIMIT_S):
            stuck.append("the render went on without the voice being heard meanwhile")

    with pipeline(tmp_path, comfy.url, voices=stages.Voices(before=voice_waits_for_the_render)) as pipe:
        pipe.hub.hooks.append(gate)
        job, tab = submit(pipe, transcript="a red kite")
        events = follow(tab, timeout=3 * stages.HOLD_LIMIT_S)  # past the gates: a stuck one says which
    assert stuck == []
    order = timeline(events)
    assert order.index("rendering") < order.index("audio") < order.index("saving") < order.index("image")
    assert events[-1]["stage"] == "done" and events[-1]["snapshot"]["audio_url"] == f"/outputs/{job.id}.wav"


@pytest.mark.parametrize("failure, note", [
    (TtsError("the voice server is not answering"), "The voice failed: the voice server is not answering"),
    (RuntimeError("a bug in the voice"), "The voice failed: the voice could not speak this caption"),
], ids=["user_facing", "unexpected"])
def test_a_failing_voice_keeps_the_picture(tmp_path, comfy, failure, note):
    with pipeline(tmp_path, comfy.url, voices=stages.Voices(fail=failure)) as pipe:
        job, events = run(pipe, transcript="a red kite")
    snapshot = events[-1]["snapshot"]
    assert stages_of(events) == ALL_THE_WAY[1:]
    assert snapshot["image_url"] == f"/outputs/{job.id}.png" and (tmp_path / "outputs" / f"{job.id}.png").is_file()
    assert snapshot["audio_url"] is None and not (tmp_path / "outputs" / f"{job.id}.wav").exists()
    assert note in snapshot["notes"] and snapshot["error"] is None
    assert [e["message"] for e in events if e["type"] == "audio_error"] == [note]
    assert "audio" not in timeline(events)


@pytest.mark.parametrize("failure, code, message", [
    (UserFacingError("the LLM answered nothing usable", code="llm_failed"), "llm_failed",
     "the LLM answered nothing usable"),
    (RuntimeError("a bug in the prompt writer"), "internal_error",
     "the job failed unexpectedly; the server log has the details"),
], ids=["user_facing", "unexpected"])
def test_a_failing_prompt_stage_ends_in_error_at_that_stage(tmp_path, comfy, failure, code, message):
    voices = stages.Voices()
    with pipeline(tmp_path, comfy.url, writer=stages.PromptWriter(fail=failure), voices=voices) as pipe:
        job, events = run(pipe, transcript="a red kite")
        kept = pipe.journal.history.get(job.id)
    assert stages_of(events) == ["writing_prompt", "error"]
    error = {"code": code, "message": message, "stage": "writing_prompt"}
    assert events[-1]["error"] == error and events[-1]["snapshot"]["error"] == error
    assert kept["stage"] == "error" and kept["error"] == error  # the gallery says the same
    assert comfy.posted == [] and voices.spoken == []  # nothing went on after it


def test_a_cancel_while_the_prompt_is_written_ends_cancelled_before_comfyui_hears_of_it(tmp_path, comfy):
    hold = threading.Event()
    writer = stages.PromptWriter(hold=hold)
    with pipeline(tmp_path, comfy.url, writer=writer) as pipe:
        job, tab = submit(pipe, transcript="a slow request")
        assert writer.entered.wait(stages.HOLD_LIMIT_S)
        pipe.cancel(job.id)
        hold.set()
        events = follow(tab)
        cancelling = next(row for event, row, _ in pipe.hub.seen if event["type"] == "cancelling")
    assert stages_of(events) == ["writing_prompt", "cancelled"]
    assert "cancelling" in timeline(events) and cancelling["cancel_requested"] == 1  # recorded before it is said
    assert events[-1]["snapshot"]["image_url"] is None and comfy.posted == []


def test_a_cancel_mid_render_ends_cancelled_and_interrupts_comfyui(tmp_path):
    with FakeComfyUI(Knobs(step_delay_s=0.2)) as slow, pipeline(tmp_path, slow.url, steps=20) as pipe:
        job, tab = submit(pipe, transcript="a slow painting")
        events = follow(tab, until=lambda e: e["type"] == "progress")
        pipe.cancel(job.id)
        events += follow(tab)
    assert stages_of(events) == ["writing_prompt", "submitting", "rendering", "cancelled"]
    assert slow.interrupts and slow.interrupts[0]["prompt_id"] == slow.posted[0]["prompt_id"]
    assert events[-1]["snapshot"]["image_url"] is None and not (tmp_path / "outputs" / f"{job.id}.png").exists()


def test_with_no_comfyui_reachable_the_job_ends_with_its_prompt_ready(tmp_path):
    voices = stages.Voices()
    with pipeline(tmp_path, dead_url(""), voices=voices) as pipe:
        job, events = run(pipe, transcript="a red fox")
    snapshot = events[-1]["snapshot"]
    assert events[-1]["stage"] == "prompt_ready" and snapshot["error"] is None
    assert snapshot["notes"][-1].startswith("Prompt ready; there is no ComfyUI to render it.")
    assert snapshot["prompt"] == "a red fox, highly detailed" and snapshot["image_url"] is None
    assert "rendering" not in stages_of(events) and "image" not in timeline(events)
    assert voices.spoken == ["Here is a red fox."] and snapshot["audio_url"] == f"/outputs/{job.id}.wav"


def test_every_event_and_stage_the_pipeline_sends_is_in_the_table(tmp_path, comfy):
    """Jobs that end each way, every event the hub was given checked against jobs.EVENTS and jobs.STAGES
    (what the page is given to read them by)."""
    voices, writer, hold = stages.Voices(), stages.PromptWriter(), threading.Event()
    with pipeline(tmp_path / "comfyui", comfy.url, writer=writer, voices=voices) as pipe:
        run(pipe, audio=AUDIO)  # done
        voices.fail = TtsError("the voice server is not answering")
        run(pipe, transcript="a red kite")  # done, without its voice
        voices.fail, writer.fail = None, UserFacingError("the LLM answered nothing usable", code="llm_failed")
        run(pipe, transcript="a blue kite")  # error
        writer.fail, writer.hold = None, hold
        writer.entered.clear()
        job, tab = submit(pipe, transcript="a green kite")
        assert writer.entered.wait(stages.HOLD_LIMIT_S)
        pipe.cancel(job.id)
        hold.set()
        follow(tab)  # cancelled
        published = [event for event, _, _ in pipe.hub.seen]
    with pipeline(tmp_path / "none", dead_url("")) as pipe:
        run(pipe, transcript="a red fox")  # prompt_ready
        published += [event for event, _, _ in pipe.hub.seen]
    kinds = {e["type"] for e in published}
    entered = {e["stage"] for e in published if "stage" in e}
    assert kinds - set(EVENTS) == set(), "events the table does not name"
    assert entered - {s.name for s in STAGES} == set(), "stages the table does not name"
    # and the check saw what it is for: every kind of end, and the events of a whole job
    assert entered >= (set(ACTIVE_STAGES) - {"queued"}) | {"done", "error", "cancelled", "prompt_ready"}
    assert kinds >= {"job", "stage", "transcript", "token", "prompt", "decision", "render", "node", "progress",
                     "image", "audio", "audio_error", "cancelling"}


def test_the_write_ahead_row_is_written_before_each_stage_is_announced(tmp_path, comfy):
    with pipeline(tmp_path, comfy.url) as pipe:
        job, _ = run(pipe, audio=AUDIO)
        seen = [(event, row, kept) for event, row, kept in pipe.hub.seen if event.get("job_id") == job.id]
    announced = []
    for event, row, kept in seen:
        if event["type"] == "job":  # accepted: its row is on disk before anyone hears of it
            assert row is not None and row["stage"] == "pending"
        elif event["type"] == "stage" and event["stage"] in ACTIVE_STAGES:
            assert row is not None and row["stage"] == event["stage"], (event["stage"], row and row["stage"])
            announced.append(event["stage"])
        elif event["type"] == "stage":  # the end: in the history, out of the rows in flight, before it is said
            assert row is None and kept is not None and kept["stage"] == event["stage"]
            assert kept["image_url"] == event["snapshot"]["image_url"]
            announced.append(event["stage"])
        elif event["type"] == "transcript":
            assert row["transcript"] == event["text"]
        elif event["type"] == "prompt":
            assert row["plan"]["prompt"] == event["plan"]["prompt"]
    assert announced == ALL_THE_WAY
    rendering = next(row for event, row, _ in seen if event["type"] == "stage" and event["stage"] == "rendering")
    assert rendering["prompt_id"] == comfy.posted[0]["prompt_id"]  # where ComfyUI has it, kept before it ran
