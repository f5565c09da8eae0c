"""Jobs that cannot be lost: several ComfyUI servers, servers that die, many browsers at once."""
from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import requests

from speech2image.picture.comfy import ComfyPool

from .support.data import SHIPPED
from .support.fake_comfy import FakeComfyUI, Knobs
from .support.fake_llm import dead_url
from .support.relay import Relay, finished, run, start_job


def occupy(comfy: FakeComfyUI, steps=30):
    """Queue a long prompt straight on this ComfyUI, as another user of it would."""
    graph = {k: {**v, "inputs": dict(v["inputs"])} for k, v in SHIPPED.items()}
    graph["4"]["inputs"]["ckpt_name"] = "tiny-sd15-random.safetensors"
    graph["3"]["inputs"].update(steps=steps, seed=random.randint(0, 10**9))
    requests.post(comfy.url + "/prompt", json={"prompt": graph, "client_id": "other-user"}, timeout=5)


def test_job_goes_to_the_shortest_queue(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.1)) as busy, FakeComfyUI(Knobs(step_delay_s=0.01)) as idle:
        occupy(busy)
        occupy(busy)
        snapshot, _ = run(serve(comfyui_url=f"{busy.url},{idle.url}", steps=6), prompt="a kite")
    assert snapshot["stage"] == "done" and snapshot["render"]["server"] == idle.url
    assert len(idle.posted) == 1 and len(busy.posted) == 2


def test_unreachable_server_is_skipped_and_shown(serve):
    down = dead_url("")
    with FakeComfyUI(Knobs(step_delay_s=0.01)) as up:
        server = serve(comfyui_url=f"{down},{up.url}", steps=6)
        snapshot, _ = run(server, prompt="a kite")
        health = requests.get(server.url + "/api/health", timeout=10).json()["comfyui"]
    assert snapshot["stage"] == "done" and snapshot["render"]["server"] == up.url
    assert health["state"] == "ready"
    assert [s["state"] for s in health["servers"]] == ["unreachable", "ready"]
    assert "comma-separated" in health["fix"]


def test_server_killed_mid_render_resubmits_elsewhere(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.2)) as first, FakeComfyUI(Knobs(step_delay_s=0.01)) as second:
        server = serve(comfyui_url=f"{first.url},{second.url}", steps=6, seed=77)
        with Relay(server) as relay:
            start_job(server, relay.session, prompt="a kite")
            relay.until(lambda e: e["type"] == "progress" and e.get("value") == 2)
            first.stop()  # ComfyUI killed mid-render
            snapshot = relay.until(finished, timeout=60)[-1]["snapshot"]
    assert snapshot["stage"] == "done" and snapshot["render"]["server"] == second.url
    assert snapshot["render"]["seed"] == 77
    assert any("stopped answering during the job; the job was sent to" in note for note in snapshot["notes"])
    assert second.posted[0]["prompt"]["3"]["inputs"]["seed"] == 77


def test_only_server_killed_mid_render_fails_clearly(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.2)) as only:
        server = serve(comfyui_url=only.url, steps=6)
        with Relay(server) as relay:
            start_job(server, relay.session, transcript="a kite over a beach")
            relay.until(lambda e: e["type"] == "progress" and e.get("value") == 2)
            only.stop()
            event = relay.until(finished, timeout=60)[-1]
    assert event["stage"] == "error" and event["error"]["code"] == "comfyui_unreachable"
    assert f"ComfyUI at {only.url} stopped answering during the job" in event["error"]["message"]
    assert event["snapshot"]["prompt"].startswith("a kite over a beach")  # the finished prompt is kept


def test_websocket_gone_for_good_job_finishes_by_polling_history(serve):
    knobs = Knobs(step_delay_s=0.1, drop_sockets_at_step=2, refuse_sockets_after_drop=True)
    with FakeComfyUI(knobs) as comfy:
        snapshot, _ = run(serve(comfyui_url=comfy.url, steps=6), prompt="a kite", timeout=60)
    assert comfy.dropped
    assert snapshot["stage"] == "done" and snapshot["image_url"]
    assert snapshot["percent"] == 100.0


def test_jobs_chosen_together_spread_over_idle_servers():
    """Both queues look empty while our jobs are still being submitted; our own count breaks the tie."""
    with FakeComfyUI(Knobs()) as first, FakeComfyUI(Knobs()) as second:
        pool = ComfyPool([first.url, second.url])
        a, b = pool.claim(), pool.claim()
        assert {a.base_url, b.base_url} == {first.url, second.url}
        pool.release(a)
        assert pool.claim().base_url == a.base_url
        # one job on each again: a tie goes to the first listed; a later pool of the same pipeline
        # shares the count, so the next job goes to the other server
        again = ComfyPool([first.url, second.url], load=pool.load)
        assert again.claim().base_url == first.url
        assert again.claim().base_url == second.url


def test_pool_reports_when_nothing_answers():
    pool = ComfyPool([dead_url(""), dead_url("")])
    try:
        pool.claim()
    except Exception as exc:
        assert "no ComfyUI server is reachable" in exc.message
    else:
        raise AssertionError("no server should have been chosen")


def test_stress_ten_sessions_three_jobs_each(tmp_path, serve):
    """Random delays, injected failures and cancels: every job ends, nothing leaks across sessions."""
    rng = random.Random(1122)
    with FakeComfyUI(Knobs(step_delay_s=0.01)) as a, FakeComfyUI(Knobs(step_delay_s=0.02)) as b:
        server = serve(comfyui_url=f"{a.url},{b.url}", steps=6, max_jobs_per_session=3)
        relays = [Relay(server) for _ in range(10)]
        planned: dict[str, dict] = {}
        lock = threading.Lock()

        def browser(relay: Relay, seed: int):
            local = random.Random(seed)
            for n in range(3):
                kind = local.choice(["ok", "ok", "ok", "bad_checkpoint", "cancel"])
                body = {"prompt": f"{relay.session} job {n}", "steps": local.randint(2, 8)}
                if kind == "bad_checkpoint":
                    body["checkpoint"] = "nope.safetensors"
                time.sleep(local.uniform(0, 0.2))
                job_id = start_job(server, relay.session, **body)
                with lock:
                    planned[job_id] = {"session": relay.session, "kind": kind}
                if kind == "cancel":
                    requests.post(f"{server.url}/api/jobs/{job_id}/cancel", timeout=30)

        threads = [threading.Thread(target=browser, args=(r, rng.random())) for r in relays]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        ends: dict[str, dict] = {}
        for relay in relays:
            mine = [j for j, p in planned.items() if p["session"] == relay.session]
            relay.until(lambda e: finished(e) and ends.setdefault(e["job_id"], e) is not None
                        and all(j in ends for j in mine), timeout=120)
            seen = {e["job_id"] for e in relay.events if "job_id" in e}
            assert seen <= set(mine), "a session saw another session's job"
            relay.close()
        states = {j: requests.get(f"{server.url}/api/jobs/{j}", timeout=10).json() for j in planned}
        gallery = requests.get(server.url + "/api/gallery?all=1&limit=200", timeout=10).json()["entries"]
    assert len(planned) == 30 and set(ends) == set(planned)
    outputs = Path(tmp_path / "instance" / "outputs")
    for job_id, plan in planned.items():
        state = states[job_id]
        assert state["stage"] in ("done", "error", "cancelled"), state
        if plan["kind"] == "bad_checkpoint":
            assert state["stage"] == "error" and state["error"]["code"] == "comfyui_rejected"
        if plan["kind"] == "ok":
            assert state["stage"] == "done", state
        if state["stage"] == "done":
            assert (outputs / f"{job_id}.png").is_file()
            assert state["prompt"].startswith(plan["session"])  # its own prompt, not another's
        else:
            assert state["image_url"] is None
    assert {e["job_id"] for e in gallery} == set(planned)  # every job is in the history
    assert not list(outputs.glob("*.part"))
