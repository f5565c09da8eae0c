"""Live sketches (a quick small render of each phrase while the person speaks), tested on ``jobs.Pipeline`` with
stand-in stages and the fake ComfyUI: drawn small and in few steps, the newest words win, nothing is kept,
"auto" sketches only a model measured fast, the pause hands over to the draft, and others' work comes first."""
from __future__ import annotations

import base64
import io
import threading
import uuid

from PIL import Image

from speech2image.jobs import JobRequest

from .support import stages
from .support.fake_comfy import FakeComfyUI, Knobs
from .support.stages import pipeline, wait_for


def node(body: dict, class_type: str) -> dict:
    return next(n["inputs"] for n in body["prompt"].values() if n["class_type"] == class_type)


def events_of(tab, kind: str) -> list[dict]:
    return [e for e in (tab.get_nowait() for _ in range(tab.qsize())) if e["type"] == kind]


def words(session: str, text: str) -> JobRequest:
    return JobRequest(session=session, transcript=text)


def test_a_sketch_is_small_quick_newest_wins_and_nothing_is_kept(tmp_path):
    with FakeComfyUI(Knobs(step_delay_s=0.15)) as comfy, \
            pipeline(tmp_path, comfy.url, drafts="sketch", width=512, height=768, steps=20) as pipe:
        session = uuid.uuid4().hex
        tab = pipe.hub.subscribe(session)
        sketches = pipe.drafts.sketches
        assert sketches.update(words(session, "a red fox"))
        wait_for(lambda: comfy.running, what="the first sketch to run")
        for said in ("a red fox in the", "a red fox in the snow", "a red fox in the snow at night"):
            assert sketches.update(words(session, said))  # while the first is drawn: only the newest waits
        wait_for(lambda: len(comfy.posted) == 2 and comfy.running is None and not comfy.pending,
                 what="the newest words' sketch")
        drawn = [node(body, "CLIPTextEncode")["text"] for body in comfy.posted]
        # the words that waited and were overtaken were never drawn
        assert drawn[0].startswith("a red fox,") and drawn[1].startswith("a red fox in the snow at night"), drawn
        latent, sampler = node(comfy.posted[-1], "EmptyLatentImage"), node(comfy.posted[-1], "KSampler")
        assert (latent["width"], latent["height"], sampler["steps"]) == (256, 384, 4)  # half each side, <= 4 steps
        shown: list[dict] = []
        wait_for(lambda: shown.extend(events_of(tab, "sketch")) or len(shown) == 2, what="both sketches shown")
        last = shown[-1]
        assert last["words"] == "a red fox in the snow at night" and last["url"].startswith("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(last["url"].split(",", 1)[1]))) as image:
            assert image.format == "JPEG" and image.size == (256, 384)
        assert pipe.journal.history.list() == [] and not any((tmp_path / "outputs").glob("*.png"))
        assert pipe.prompt_writer.asked == []  # the offline rewriter wrote them: no LLM wait
        assert 'speech2image_drafts_total{event="sketched"}' in pipe.metrics.exposition().decode()


def test_auto_sketches_a_model_whose_render_was_measured_fast(tmp_path):
    with FakeComfyUI(Knobs(step_delay_s=0.01)) as comfy, pipeline(tmp_path, comfy.url) as pipe:
        session = uuid.uuid4().hex
        assert pipe.settings.drafts == "auto"
        assert not pipe.drafts.sketches.update(words(session, "a red fox"))  # nothing measured yet
        job = pipe.submit(JobRequest(session=session, transcript="a lighthouse"))
        wait_for(lambda: pipe.get(job.id).finished, what="the job")
        model = pipe.get(job.id).render["checkpoint"]
        assert pipe.comfy.catalog.render_seconds(model) < 1.5
        assert pipe.drafts.sketches.update(words(session, "a red fox"))
        wait_for(lambda: len(comfy.posted) == 2 and comfy.running is None, what="the sketch")
    with FakeComfyUI(Knobs(step_delay_s=0.3)) as slow, pipeline(tmp_path / "slow", slow.url) as pipe:
        job = pipe.submit(JobRequest(session=session, transcript="a lighthouse"))
        wait_for(lambda: pipe.get(job.id).finished, timeout=30, what="the job")
        assert pipe.comfy.catalog.render_seconds(pipe.get(job.id).render["checkpoint"]) >= 1.5
        assert not pipe.drafts.sketches.update(words(session, "a red fox"))  # 6 steps x 0.3 s: too slow to keep up
        assert len(slow.posted) == 1


def test_the_pause_hands_over_to_the_draft_and_others_come_first(tmp_path):
    with FakeComfyUI(Knobs(step_delay_s=0.3)) as comfy, pipeline(tmp_path, comfy.url, drafts="sketch") as pipe:
        session = uuid.uuid4().hex
        pipe.drafts.heard("words", words(session, "a red"))
        wait_for(lambda: len(comfy.posted) == 1 and comfy.running is None, what="a first sketch drawn")
        wait_for(lambda: not pipe.drafts.sketches.drawing(), what="its worker to end")
        pipe.drafts.heard("words", words(session, "a red fox"))  # the same tab again, by a new worker
        sketch = wait_for(lambda: comfy.running and comfy.running[1], what="the sketch to run")
        pipe.drafts.heard("pause", words(session, "a red fox in the snow"))  # the draft takes over at once
        wait_for(lambda: len(comfy.posted) == 3, what="the draft")
        assert any(i.get("prompt_id") == sketch for i in comfy.interrupts)  # the sketch left ComfyUI first
        assert comfy.history[sketch]["status"]["status_str"] != "success"
        pipe.drafts.heard("words", words(session, "a red fox in the snow"))  # late words: no sketch over the draft
        job = pipe.submit(JobRequest(session=session, transcript="a red fox in the snow"))
        wait_for(lambda: pipe.get(job.id).finished, what="the job")
        assert pipe.get(job.id).snapshot()["draft"]["adopted"] is True and len(comfy.posted) == 3
    hold = threading.Event()
    with FakeComfyUI() as comfy, pipeline(tmp_path / "busy", comfy.url, writer=stages.PromptWriter(hold=hold),
                                          drafts="sketch") as pipe:
        busy = pipe.submit(JobRequest(session=uuid.uuid4().hex, transcript="a lighthouse"))
        pipe.prompt_writer.entered.wait(5)
        assert pipe.drafts.sketches.update(words(uuid.uuid4().hex, "a red fox"))
        wait_for(lambda: not pipe.drafts.sketches.drawing(), what="the sketch to give up")
        assert comfy.posted == []  # another tab's job is under way: no sketch before it
        hold.set()
        wait_for(lambda: pipe.get(busy.id).finished, what="the job")


def test_stop_ends_the_sketch_under_way_and_it_is_not_shown(tmp_path):
    with FakeComfyUI(Knobs(step_delay_s=0.3)) as comfy, pipeline(tmp_path, comfy.url, drafts="sketch") as pipe:
        session = uuid.uuid4().hex
        tab = pipe.hub.subscribe(session)
        pipe.drafts.heard("words", words(session, "a red fox"))
        sketch = wait_for(lambda: comfy.running and comfy.running[1], what="the sketch to run")
        pipe.drafts.heard("stop", words(session, "a red fox"))  # Stop: the final pass needs the CPU, not a sketch
        wait_for(lambda: not pipe.drafts.sketches.drawing(), what="the sketch to end")
        assert any(i.get("prompt_id") == sketch for i in comfy.interrupts)
        assert events_of(tab, "sketch") == [] and comfy.running is None and not comfy.pending
