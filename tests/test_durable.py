"""Durable jobs: the app killed (SIGKILL) or stopped (SIGTERM) at any stage and started again on the
same data folder finishes every job (or fails it with the reason), renders nothing twice and leaves
no prompt of ours in ComfyUI; the database of the first releases is upgraded in place."""
from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest
import requests
from PIL import Image

from speech2image.jobs.store import SCHEMA_VERSION, JobHistory
from speech2image.picture import CLIENT_PREFIX

from .support.app_process import AppProcess
from .support.fake_comfy import FakeComfyUI, Knobs
from .support.relay import Relay, finished, start_job

SESSION = "durable-test-session"
REAL_COMFYUI = os.environ.get("SPEECH2IMAGE_TEST_REAL_COMFYUI_URL", "")
STEPS = 20  # with the fake's 0.2 s a step: a 4 s render, long enough to land a kill in it

# The history table exactly as the first releases created it (no schema version, no WAL).
FIRST_RELEASE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, session TEXT, created REAL, finished REAL,"
    " stage TEXT, transcript TEXT, prompt TEXT, negative_prompt TEXT, caption TEXT, prompt_source TEXT,"
    " render TEXT, image_url TEXT, thumb_url TEXT, audio_url TEXT, timings TEXT, notes TEXT, error TEXT)"
)


@pytest.fixture
def slow_comfy():
    with FakeComfyUI(Knobs(step_delay_s=0.2)) as server:
        yield server


@pytest.fixture
def app_process(tmp_path):
    """app_process(comfy_url, **settings) -> AppProcess, not started; all share one data folder."""
    made = []

    def make(comfy_url, **settings):
        app = AppProcess(tmp_path / "instance", comfy_url, log_path=tmp_path / "app.log", **{"steps": STEPS, **settings})
        made.append(app)
        return app

    yield make
    for app in made:
        app.stop()


def occupy(comfy: FakeComfyUI, client_id="someone-else", steps=12) -> str:
    """Another client's prompt in ComfyUI, so the next one waits in its queue."""
    from .support.data import SHIPPED
    graph = json.loads(json.dumps(SHIPPED))
    graph["3"]["inputs"].update(steps=steps, seed=int(time.time() * 1000) % 100000)
    graph["4"]["inputs"]["ckpt_name"] = "tiny-sd15-random.safetensors"
    answer = requests.post(comfy.url + "/prompt", json={"prompt": graph, "client_id": client_id}, timeout=5).json()
    return answer["prompt_id"]


def rendering(state) -> bool:
    return state["stage"] == "rendering" and state["percent"] > 5


def check_picture(app: AppProcess, job_id: str, state: dict) -> Image.Image:
    """Done, with its PNG (metadata included), thumbnail and one gallery entry."""
    assert state["stage"] == "done", state
    image = Image.open(app.data_dir / "outputs" / f"{job_id}.png")
    assert image.text["speech2image:prompt"] == state["prompt"]
    assert image.text["speech2image:seed"] == str(state["render"]["seed"])
    assert json.loads(image.text["prompt"])["3"]["inputs"]["seed"] == state["render"]["seed"]
    assert (app.data_dir / "outputs" / f"{job_id}.thumb.jpg").is_file()
    gallery = requests.get(app.url + "/api/gallery", timeout=5).json()["entries"]
    assert [e["job_id"] for e in gallery].count(job_id) == 1
    assert not list((app.data_dir / "outputs").glob("*.part"))
    return image


def ours(comfy: FakeComfyUI, job_state: dict) -> list[dict]:
    """The prompts ComfyUI was sent for this job (same seed)."""
    return [b for b in comfy.posted if b["prompt"]["3"]["inputs"]["seed"] == job_state["render"]["seed"]]


def assert_no_orphans(app: AppProcess, comfy: FakeComfyUI):
    assert requests.get(app.url + "/api/health", timeout=10).json()["jobs"]["orphans"] == {}
    queue = requests.get(comfy.url + "/queue", timeout=5).json()
    assert not [i for i in queue["queue_running"] + queue["queue_pending"] if i[3]["client_id"].startswith("s2i-")]


def stop(app: AppProcess, how: str) -> None:
    if how == "kill":
        app.kill()
    else:
        took = app.terminate()
        assert took < 5.0, f"SIGTERM took {took:.1f} s"
        assert app.process.returncode == 0


# --- kills and stops at each stage ------------------------------------------------------------------


@pytest.mark.parametrize("how", ["kill", "term"])
def test_stopped_while_transcribing_the_kept_recording_is_transcribed_again(how, app_process, slow_comfy,
                                                                             make_clip):
    first = app_process(slow_comfy.url).start()
    job_id = start_job(first, SESSION, audio=make_clip("a red apple on a wooden table"))
    first.wait_for(job_id, lambda s: s["stage"] == "transcribing", poll_s=0.01)
    assert (first.data_dir / "uploads" / f"{job_id}.audio").is_file()  # kept until its transcript is stored
    stop(first, how)
    second = app_process(slow_comfy.url).start()
    state = second.wait_finished(job_id, timeout=120)
    image = check_picture(second, job_id, state)
    assert "apple" in state["transcript"].lower() and state["recovered"] is True
    assert "picked up where it stopped" in " ".join(state["notes"])
    assert image.text["speech2image:transcript"] == state["transcript"]
    assert not (second.data_dir / "uploads" / f"{job_id}.audio").exists()
    assert len(ours(slow_comfy, state)) == 1
    assert_no_orphans(second, slow_comfy)


@pytest.mark.parametrize("how", ["kill", "term"])
def test_stopped_while_queued_in_comfyui_the_same_prompt_is_followed(how, app_process, slow_comfy):
    first = app_process(slow_comfy.url).start()
    occupy(slow_comfy, steps=25)
    job_id = start_job(first, SESSION, prompt="a lighthouse in fog", seed=4242)
    first.wait_for(job_id, lambda s: s["stage"] == "queued")
    stop(first, how)
    second = app_process(slow_comfy.url).start()
    state = second.wait_finished(job_id)
    check_picture(second, job_id, state)
    assert state["render"]["seed"] == 4242
    assert len(ours(slow_comfy, state)) == 1  # followed, not sent again
    assert_no_orphans(second, slow_comfy)


@pytest.mark.parametrize("how", ["kill", "term"])
def test_stopped_while_rendering_the_tab_sees_progress_again_then_the_picture(how, app_process, slow_comfy):
    first = app_process(slow_comfy.url).start()
    job_id = start_job(first, SESSION, prompt="a red fox in snow")
    first.wait_for(job_id, rendering)
    stop(first, how)
    second = app_process(slow_comfy.url).start()
    relay = Relay(second, session=SESSION)  # the same tab, reconnected
    events = relay.until(finished, timeout=60)
    relay.close()
    assert events[0]["type"] == "resume" and events[0]["job_id"] == job_id
    assert any(e["type"] == "progress" for e in events), [e["type"] for e in events]  # followed live again
    state = events[-1]["snapshot"]
    check_picture(second, job_id, state)
    assert len(ours(slow_comfy, state)) == 1
    assert_no_orphans(second, slow_comfy)


@pytest.mark.parametrize("how", ["kill", "term"])
def test_finished_in_comfyui_while_the_app_was_down_is_collected_from_history(how, app_process, slow_comfy):
    first = app_process(slow_comfy.url).start()
    job_id = start_job(first, SESSION, prompt="a blue bicycle", seed=77)
    first.wait_for(job_id, rendering)
    stop(first, how)
    deadline = time.monotonic() + 30
    while len(slow_comfy.history) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slow_comfy.history, "ComfyUI never finished the render"
    second = app_process(slow_comfy.url).start()
    state = second.wait_finished(job_id)
    check_picture(second, job_id, state)
    assert len(ours(slow_comfy, state)) == 1 and state["render"]["seed"] == 77
    assert_no_orphans(second, slow_comfy)


def test_comfyui_restarted_while_the_app_was_down_gets_the_job_again_with_the_same_seed(app_process):
    comfy = FakeComfyUI(Knobs(step_delay_s=0.2)).__enter__()
    try:
        first = app_process(comfy.url).start()
        job_id = start_job(first, SESSION, prompt="a green teapot", seed=31337)
        first.wait_for(job_id, rendering)
        first.kill()
        port = comfy.server.server_port
        comfy.stop()
        comfy = FakeComfyUI(Knobs(step_delay_s=0.02), port=port).__enter__()  # history empty
        second = app_process(comfy.url).start()
        state = second.wait_finished(job_id)
        check_picture(second, job_id, state)
        assert [b["prompt"]["3"]["inputs"]["seed"] for b in comfy.posted] == [31337]
        assert any("sent again with the same seed" in note for note in state["notes"]), state["notes"]
        assert_no_orphans(second, comfy)
    finally:
        comfy.stop()


def test_comfyui_gone_for_good_fails_the_job_with_the_reason(app_process):
    comfy = FakeComfyUI(Knobs(step_delay_s=0.2)).__enter__()
    first = app_process(comfy.url, recover_wait_s=1).start()
    job_id = start_job(first, SESSION, prompt="a castle")
    first.wait_for(job_id, rendering)
    first.kill()
    comfy.stop()
    second = app_process(comfy.url, recover_wait_s=1).start()
    state = second.wait_finished(job_id)
    assert state["stage"] == "error"
    assert "not reachable since speech2image restarted" in state["error"]["message"]
    assert state["prompt"] == "a castle"  # the page keeps it, to press Generate again


def test_recording_missing_after_a_crash_fails_the_job_with_the_reason(app_process, slow_comfy, make_clip):
    first = app_process(slow_comfy.url).start()
    job_id = start_job(first, SESSION, audio=make_clip("a red apple on a wooden table"))
    first.wait_for(job_id, lambda s: s["stage"] == "transcribing", poll_s=0.01)
    first.kill()
    (first.data_dir / "uploads" / f"{job_id}.audio").unlink()
    second = app_process(slow_comfy.url).start()
    state = second.wait_finished(job_id)
    assert state["stage"] == "error" and state["error"]["code"] == "recording_lost"
    assert "record it again" in state["error"]["message"]


def test_a_cancel_recorded_before_a_crash_is_carried_out_in_comfyui(app_process, slow_comfy):
    first = app_process(slow_comfy.url).start()
    job_id = start_job(first, SESSION, prompt="a slow render nobody wants")
    first.wait_for(job_id, rendering)
    first.kill()
    # The state a crash leaves between recording the cancel and telling ComfyUI.
    history = JobHistory(first.data_dir / "speech2image.db")
    [row] = history.in_flight()
    history.update_job(job_id, cancel_requested=1)
    second = app_process(slow_comfy.url).start()
    state = second.wait_finished(job_id)
    assert state["stage"] == "cancelled"
    assert {"prompt_id": row["prompt_id"]} in slow_comfy.interrupts
    assert_no_orphans(second, slow_comfy)


def test_sigterm_refuses_new_jobs_and_exits_leaving_the_render_in_comfyui(app_process, slow_comfy):
    app = app_process(slow_comfy.url).start()
    job_id = start_job(app, SESSION, prompt="a ship in a bottle")
    app.wait_for(job_id, rendering)
    took = app.terminate()
    assert took < 5.0 and app.process.returncode == 0
    assert not slow_comfy.interrupts and not slow_comfy.deletes  # the picture is worth keeping
    assert "carry on at the next start" in app.log_path.read_text()


@pytest.mark.skipif(not REAL_COMFYUI, reason="no real ComfyUI configured: set SPEECH2IMAGE_TEST_REAL_COMFYUI_URL "
                    "(see docs/development.md, A real ComfyUI)")
def test_real_comfyui_render_survives_sigterm_and_restart(app_process):
    """The case from the issue, on a real ComfyUI: stopped mid-render, the render is kept and collected."""
    settings = {"steps": 12, "width": 128, "height": 128, "checkpoint": "tiny-sd15-random.safetensors"}
    first = app_process(REAL_COMFYUI, **settings).start()
    job_id = start_job(first, SESSION, prompt="a lighthouse, real comfyui durability check", seed=99)
    first.wait_for(job_id, rendering, timeout=120)
    prompt_id = JobHistory(first.data_dir / "speech2image.db").in_flight()[0]["prompt_id"]
    stop(first, "term")
    queue = requests.get(REAL_COMFYUI + "/queue", timeout=5).json()
    history = requests.get(f"{REAL_COMFYUI}/history/{prompt_id}", timeout=5).json()
    assert prompt_id in [i[1] for i in queue["queue_running"] + queue["queue_pending"]] or prompt_id in history
    second = app_process(REAL_COMFYUI, **settings).start()
    state = second.wait_finished(job_id, timeout=300)
    check_picture(second, job_id, state)
    assert state["render"]["seed"] == 99
    queue = requests.get(REAL_COMFYUI + "/queue", timeout=5).json()
    assert prompt_id not in [i[1] for i in queue["queue_running"] + queue["queue_pending"]]


# --- in one process ---------------------------------------------------------------------------------


def test_shutting_down_answers_503_with_the_reason(make_app):
    app = make_app()
    app.extensions["speech2image"].pipeline.stop_accepting()
    response = app.test_client().post("/api/jobs", json={"prompt": "a cat", "session": SESSION})
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "shutting_down"
    assert "try again in a moment" in response.get_json()["error"]["message"].lower()


def test_database_of_the_first_release_is_upgraded_and_keeps_its_history(tmp_path):
    path = tmp_path / "speech2image.db"
    db = sqlite3.connect(path)
    db.execute(FIRST_RELEASE_SCHEMA)
    db.execute("CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created DESC)")
    db.execute("INSERT INTO jobs VALUES ('0123456789abcdef0123456789abcdef', 's', 1.0, 2.0, 'done', 'a cat', "
               "'a cat, oil', '', 'A cat.', 'offline', '{\"seed\": 5}', '/outputs/x.png', '/outputs/x.thumb.jpg',"
               " NULL, '{\"total\": 1.0}', '[]', 'null')")
    db.commit()
    db.close()
    history = JobHistory(path)
    assert history.schema_version() == SCHEMA_VERSION == 5
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    [old] = history.list()
    assert old["job_id"] == "0123456789abcdef0123456789abcdef" and old["render"] == {"seed": 5}
    assert old["decision"] is None and old["edit_of"] is None  # schema 3: a picture of the first release is a new one
    history.open_job("f" * 32, session="s", stage="pending", request={"prompt": "x"}, settings={})
    assert [row["id"] for row in history.in_flight()] == ["f" * 32]
    history.record({"job_id": "f" * 32, "stage": "done", "created": 3.0}, "s", 4.0)
    assert history.in_flight() == [] and len(history.list()) == 2
    assert JobHistory(path).instance_id == history.instance_id  # opened again: nothing re-run, same id


def test_database_from_a_newer_version_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "speech2image.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(Exception, match="newer speech2image"):
        JobHistory(path)


def test_disk_full_fails_the_job_in_those_words_and_keeps_the_database_consistent(serve, comfy, tmp_path):
    """/dev/full answers every write with ENOSPC, as a full disk does: the PNG's temporary file is a link to it."""
    comfy.knobs.step_delay_s = 0.2
    server = serve(comfyui_url=comfy.url, steps=10)
    with Relay(server) as relay:
        job_id = start_job(server, relay.session, prompt="a full disk")
        outputs = tmp_path / "instance" / "outputs"
        outputs.mkdir(parents=True, exist_ok=True)
        os.symlink("/dev/full", outputs / f"{job_id}.png.part")
        state = relay.until(finished)[-1]["snapshot"]
        history = server.app.extensions["speech2image"].history
        assert state["stage"] == "error" and state["error"]["code"] == "storage_failed"
        assert state["error"]["message"].startswith("disk full")
        assert not (outputs / f"{job_id}.png").exists() and not (outputs / f"{job_id}.png.part").exists()
        assert history.get(job_id)["stage"] == "error" and history.in_flight() == []


def test_prompts_of_ours_that_no_job_follows_are_reported(serve, comfy):
    comfy.knobs.step_delay_s = 0.1
    server = serve(comfyui_url=comfy.url, steps=20)
    runtime = server.app.extensions["speech2image"]
    with Relay(server) as relay:
        start_job(server, relay.session, prompt="a job of ours")
        relay.until(lambda e: e["type"] == "stage" and e["stage"] == "rendering")
        assert requests.get(server.url + "/api/health", timeout=10).json()["jobs"]["orphans"] == {}
        orphan = occupy(comfy, client_id=f"{runtime.pipeline.client_prefix}left-behind")
        occupy(comfy, client_id="s2i-another-instance-x")  # another app's: not ours to report
        jobs = requests.get(server.url + "/api/health", timeout=10).json()["jobs"]
        assert jobs["orphans"] == {comfy.url: [orphan]} and "fix" in jobs
        relay.until(finished)


def test_at_start_prompts_of_ours_that_no_job_follows_are_removed_from_comfyui(serve, comfy, tmp_path):
    """Only ours (this data folder's client id), by their ids: another app's prompt stays queued."""
    comfy.knobs.step_delay_s = 0.2
    prefix = f"{CLIENT_PREFIX}{JobHistory(tmp_path / 'instance' / 'speech2image.db').instance_id}-"
    # long enough (100 steps of 0.2 s) that the first still runs and the others still wait when the app starts
    running = occupy(comfy, client_id=f"{prefix}left-behind-1", steps=100)
    queued = occupy(comfy, client_id=f"{prefix}left-behind-2", steps=100)
    others = occupy(comfy, client_id="s2i-another-instance-x", steps=100)
    server = serve(comfyui_url=comfy.url)  # its start removes ours
    deadline = time.monotonic() + 60
    while queued not in comfy.deletes or not comfy.interrupts:
        assert time.monotonic() < deadline, (comfy.deletes, comfy.interrupts)
        time.sleep(0.1)
    assert comfy.interrupts[0]["prompt_id"] == running and others not in comfy.deletes
    queue = requests.get(comfy.url + "/queue", timeout=5).json()
    assert others in [item[1] for item in queue["queue_running"] + queue["queue_pending"]]
    # the interrupted one leaves ComfyUI's queue at its sampler's next step: then none is left
    while requests.get(server.url + "/api/health", timeout=10).json()["jobs"]["orphans"] != {}:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_tab_that_reconnects_gets_its_job_as_it_stands_also_finished_meanwhile(serve, comfy):
    import websocket
    server = serve(comfyui_url=comfy.url)
    with Relay(server) as relay:  # the tab loses its connection; the job finishes meanwhile
        job_id = start_job(server, relay.session, prompt="a kite")
    deadline = time.monotonic() + 30
    while requests.get(f"{server.url}/api/jobs/{job_id}", timeout=5).json()["stage"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    url = f"{server.url.replace('http', 'ws', 1)}/ws?session={relay.session}&job={job_id}"
    ws = websocket.create_connection(url, timeout=10)
    assert json.loads(ws.recv())["type"] == "hello"
    resume = json.loads(ws.recv())
    ws.close()
    assert resume["type"] == "resume" and resume["job_id"] == job_id
    assert resume["snapshot"]["stage"] == "done" and resume["snapshot"]["image_url"] == f"/outputs/{job_id}.png"
    server.stop()
    # After a restart the finished job is answered from the history
    server = serve(comfyui_url=comfy.url)
    state = requests.get(f"{server.url}/api/jobs/{job_id}", timeout=5).json()
    ws = websocket.create_connection(f"{server.url.replace('http', 'ws', 1)}/ws?session=x{relay.session}"
                                     f"&job={job_id}", timeout=10)
    ws.recv()
    resume = json.loads(ws.recv())
    ws.close()
    assert state["stage"] == "done" and state["image_url"] == f"/outputs/{job_id}.png"
    assert resume["snapshot"]["stage"] == "done"
