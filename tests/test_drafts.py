"""Drafts (a live recording's render started at the pause, before Stop), tested on ``jobs.Pipeline`` with
stand-in stages and the fake ComfyUI: the job takes its draft over when the words are the same, new words
cancel it in ComfyUI (deleted while queued, interrupted only while it runs), another tab's job waits behind
no draft, and a draft left by a crash is removed at the next start."""
from __future__ import annotations

import threading
import time
import uuid

import requests

from speech2image.jobs import JobHistory, JobRequest, Pipeline

from .support import speech, stages
from .support.audio_stream import AudioStream, pcm16k
from .support.fake_comfy import FakeComfyUI, Knobs
from .support.fake_llm import dead_url
from .support.relay import Relay, finished
from .support.stages import pipeline, wait_for

HEARD = "a red fox in the snow"


def ended(pipe: Pipeline, job_id: str) -> dict:
    job = wait_for(lambda: (j := pipe.get(job_id)) is not None and j.finished and j, what="the job's end")
    return job.snapshot()


def running_prompt(comfy: FakeComfyUI) -> str:
    return wait_for(lambda: comfy.running and comfy.running[1], what="ComfyUI to run a prompt")


def test_a_draft_with_the_same_words_is_the_job(tmp_path):
    with FakeComfyUI(Knobs(step_delay_s=0.1)) as comfy, pipeline(tmp_path, comfy.url) as pipe:
        session = uuid.uuid4().hex
        tab = pipe.hub.subscribe(session)
        draft = pipe.drafts.start(JobRequest(session=session, transcript=HEARD))
        assert draft is not None
        running_prompt(comfy)
        job = pipe.submit(JobRequest(session=session, transcript="A red fox, in the snow."))  # the words at Stop
        assert job.id == draft.id  # the page's draft is this job
        snapshot = ended(pipe, job.id)
        assert snapshot["stage"] == "done" and snapshot["image_url"]
        assert snapshot["draft"]["adopted"] is True and snapshot["draft"]["ran_s"] > 0
        assert len(comfy.posted) == 1 and pipe.prompt_writer.asked == [HEARD]  # one prompt, one render
        kept = wait_for(lambda: pipe.journal.history.get(job.id), what="the gallery entry")
        assert kept["draft"]["adopted"] is True  # the job's record says so
        assert [e["job_id"] for e in pipe.journal.history.list()] == [job.id]
        events = [tab.get_nowait() for _ in range(tab.qsize())]
        drawing = [e for e in events if e["type"] == "draft"]
        assert drawing and all(e["state"] == "drawing" and e["job_id"] == job.id for e in drawing)
        assert events.index(drawing[0]) < next(i for i, e in enumerate(events) if e["type"] == "job")
        assert pipe.prompt_writer.history.last(session).transcript == HEARD  # its turn joined the conversation
        metrics = pipe.metrics.exposition().decode()
        assert 'speech2image_drafts_total{event="started"} 1.0' in metrics
        assert 'speech2image_drafts_total{event="adopted"} 1.0' in metrics
        assert not comfy.pending and comfy.running is None


def test_new_words_cancel_the_running_draft_and_the_job_draws_the_final_words(tmp_path):
    with FakeComfyUI(Knobs(step_delay_s=0.2)) as comfy, pipeline(tmp_path, comfy.url) as pipe:
        session = uuid.uuid4().hex
        tab = pipe.hub.subscribe(session)
        pipe.drafts.start(JobRequest(session=session, transcript=HEARD))
        drafted = running_prompt(comfy)
        time.sleep(0.3)  # a step or two rendered, then thrown away
        pipe.drafts.cancel(session, "the speaker went on")
        wait_for(lambda: any(i.get("prompt_id") == drafted for i in comfy.interrupts), what="the interrupt")
        job = pipe.submit(JobRequest(session=session, transcript=HEARD + " at night"))
        assert job.id != drafted
        snapshot = ended(pipe, job.id)
        assert snapshot["stage"] == "done" and snapshot["prompt"].startswith(HEARD + " at night")
        assert snapshot["draft"]["adopted"] is False and snapshot["draft"]["wasted_s"] > 0
        assert comfy.history[drafted]["status"]["status_str"] != "success"  # interrupted, not finished
        assert wait_for(lambda: [e["job_id"] for e in pipe.journal.history.list()]) == [job.id]  # none for the draft
        assert not (tmp_path / "outputs" / f"{drafted}.png").exists()
        events = [tab.get_nowait() for _ in range(tab.qsize())]
        assert any(e["type"] == "draft" and e["state"] == "cancelled" for e in events)
        metrics = pipe.metrics.exposition().decode()
        assert 'speech2image_drafts_total{event="cancelled"} 1.0' in metrics
        assert "speech2image_draft_wasted_render_seconds_total 0.0" not in metrics
        assert not comfy.pending and comfy.running is None


def test_a_queued_draft_is_deleted_from_the_queue_not_interrupted(tmp_path):
    with FakeComfyUI(Knobs(pickup_delay_s=1.5)) as comfy, pipeline(tmp_path, comfy.url) as pipe:
        session = uuid.uuid4().hex
        draft = pipe.drafts.start(JobRequest(session=session, transcript=HEARD))
        wait_for(lambda: comfy.pending, what="the draft in the queue")
        pipe.drafts.cancel(session, "the speaker went on")
        wait_for(lambda: draft.done.is_set(), what="the draft's end")
        assert comfy.deletes == [draft.submitted["prompt_id"]] and comfy.interrupts == []
        assert not comfy.pending and comfy.running is None


def test_a_draft_whose_prompt_is_being_written_is_taken_over(tmp_path):
    hold = threading.Event()
    writer = stages.PromptWriter(hold=hold)
    with FakeComfyUI() as comfy, pipeline(tmp_path, comfy.url, writer=writer) as pipe:
        session = uuid.uuid4().hex
        draft = pipe.drafts.start(JobRequest(session=session, transcript=HEARD))
        writer.entered.wait(5)
        job = pipe.submit(JobRequest(session=session, transcript=HEARD))
        hold.set()
        snapshot = ended(pipe, job.id)
        assert job.id == draft.id and snapshot["stage"] == "done" and snapshot["draft"]["adopted"] is True
        assert writer.asked == [HEARD] and len(comfy.posted) == 1


def test_another_tabs_job_waits_behind_no_draft(tmp_path):
    with FakeComfyUI(Knobs(step_delay_s=0.2)) as comfy, pipeline(tmp_path, comfy.url) as pipe:
        tab_b, tab_a = uuid.uuid4().hex, uuid.uuid4().hex
        pipe.drafts.start(JobRequest(session=tab_b, transcript=HEARD))
        drafted = running_prompt(comfy)
        job = pipe.submit(JobRequest(session=tab_a, transcript="a lighthouse on a rocky coast"))
        snapshot = ended(pipe, job.id)
        assert snapshot["stage"] == "done"
        assert any(i.get("prompt_id") == drafted for i in comfy.interrupts)  # B's draft gave way
        assert comfy.timeline[job.submitted["prompt_id"]]["received"] > 0
        # B's draft was out of ComfyUI before A's job ran: A's render waited behind nothing of B's
        assert comfy.history[drafted]["status"]["status_str"] != "success"
        # and B's later Stop starts its job as usual
        late = pipe.submit(JobRequest(session=tab_b, transcript=HEARD))
        assert late.id != drafted and ended(pipe, late.id)["stage"] == "done"
        assert not comfy.pending and comfy.running is None


def test_no_draft_while_others_work_when_off_or_without_comfyui(tmp_path):
    hold = threading.Event()
    writer = stages.PromptWriter(hold=hold)
    with FakeComfyUI() as comfy, pipeline(tmp_path / "busy", comfy.url, writer=writer) as pipe:
        busy = pipe.submit(JobRequest(session=uuid.uuid4().hex, transcript="a lighthouse"))
        writer.entered.wait(5)
        writer.hold = None  # the draft's prompt is written at once; the job still waits for its own
        draft = pipe.drafts.start(JobRequest(session=uuid.uuid4().hex, transcript=HEARD))
        wait_for(lambda: draft.done.is_set(), what="the draft to give up")
        assert "under way" in str(draft.error) and draft.submitted is None and comfy.posted == []
        hold.set()
        assert ended(pipe, busy.id)["stage"] == "done"
    with pipeline(tmp_path / "off", comfy.url, drafts="off") as pipe:
        assert pipe.drafts.start(JobRequest(session=uuid.uuid4().hex, transcript=HEARD)) is None
    with pipeline(tmp_path / "none", dead_url()) as pipe:
        session = uuid.uuid4().hex
        draft = pipe.drafts.start(JobRequest(session=session, transcript=HEARD))
        wait_for(lambda: draft.done.is_set(), what="the draft to give up")
        job = pipe.submit(JobRequest(session=session, transcript=HEARD))
        assert job.id != draft.id and ended(pipe, job.id)["stage"] == "prompt_ready"
        assert pipe.prompt_writer.asked == [HEARD]  # the draft's prompt was reused for the same words


def test_the_same_words_again_reuse_the_prompt(tmp_path):
    with FakeComfyUI(Knobs(step_delay_s=0.1)) as comfy, pipeline(tmp_path, comfy.url) as pipe:
        session = uuid.uuid4().hex
        pipe.drafts.start(JobRequest(session=session, transcript=HEARD))
        running_prompt(comfy)
        pipe.drafts.cancel(session, "a noise, not words")
        again = pipe.drafts.start(JobRequest(session=session, transcript=HEARD))
        job = pipe.submit(JobRequest(session=session, transcript=HEARD))
        assert job.id == again.id and ended(pipe, job.id)["stage"] == "done"
        assert pipe.prompt_writer.asked == [HEARD]


def test_a_draft_left_by_a_crash_is_removed_at_the_next_start(tmp_path):
    with FakeComfyUI(Knobs(step_delay_s=0.3)) as comfy:
        with pipeline(tmp_path, comfy.url) as crashed:
            draft = crashed.drafts.start(JobRequest(session=uuid.uuid4().hex, transcript=HEARD))
            drafted = running_prompt(comfy)
            # the same data folder started again while the draft runs (the old process as good as gone)
            with pipeline(tmp_path, comfy.url) as restarted:
                assert restarted.recover() == []  # the draft is not a job: nothing to pick up
                assert restarted.remove_orphans() == {comfy.url: {drafted: "interrupted"}}
            wait_for(lambda: draft.done.is_set(), what="the draft's end")
        assert not comfy.pending and comfy.running is None
        assert JobHistory(tmp_path / "speech2image.db").list() == []


# --- over the socket, with the real model: a pause, then Stop; a pause, then more words ------------------


def test_a_pause_before_stop_starts_the_picture_and_the_job_takes_it_over(live_server, make_clip, clips_dir):
    wav = speech.pad_wav(make_clip("a red barn in a snowy field"), clips_dir / "draft-pause.wav", lead_s=0.3,
                         tail_s=2.0)
    with Relay(live_server) as relay:
        stream = AudioStream(live_server.url, relay.session, {"steps": 4})
        assert stream.until("ready")["type"] == "ready"
        stream.play(pcm16k(wav))
        drawing = relay.until(lambda e: e["type"] == "draft")[-1]  # drawn before Stop
        stream.send({"type": "stop"})
        job = stream.until("job")["snapshot"]
        assert job["job_id"] == drawing["job_id"]  # the draft is the job
        end = relay.until(lambda e: finished(e) and e["job_id"] == job["job_id"])[-1]["snapshot"]
        assert end["stage"] == "done" and end["draft"]["adopted"] is True, end
        assert "barn" in end["prompt"]
        stream.close()


def test_words_after_the_pause_cancel_its_draft_and_the_picture_is_of_all_of_them(live_server, make_clip,
                                                                                    clips_dir):
    wav = speech.join_wavs([make_clip("a red barn in a snowy field"), make_clip("with a black horse")],
                           clips_dir / "draft-more.wav", gap_s=3.0, tail_s=0.2)
    with Relay(live_server) as relay:
        stream = AudioStream(live_server.url, relay.session, {"steps": 4})
        assert stream.until("ready")["type"] == "ready"
        stream.play(pcm16k(wav))
        stream.send({"type": "stop"})
        job = stream.until("job")["snapshot"]
        events = relay.until(lambda e: finished(e) and e["job_id"] == job["job_id"])
        end = events[-1]["snapshot"]
        first = next(e["job_id"] for e in events if e["type"] == "draft")
        assert any(e["type"] == "draft" and e["state"] == "cancelled" and e["job_id"] == first for e in events)
        assert job["job_id"] != first and end["stage"] == "done"
        assert "horse" in end["transcript"] and "horse" in end["prompt"], end
        assert requests.get(f"{live_server.url}/outputs/{first}.png", timeout=10).status_code == 404
        assert live_server.app.extensions["speech2image"].history.get(first) is None  # no gallery entry
        stream.close()
