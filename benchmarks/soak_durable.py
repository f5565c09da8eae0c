"""Soak test for durable jobs: kill the app (SIGKILL) at random moments, again and again, and count
what was lost.

Each round starts `app.py` on the same data folder, sends a job or two while fewer than three are
in flight (typed requests the offline rewriter turns into prompts, each with its own seed; every
tenth round a spoken one, so kills land in transcription too; now and then another client's
prompt holds ComfyUI's queue so jobs wait in it), waits a random moment and kills the process hard. Every
round's restart also picks up the jobs the last kill left. At the end one last start runs every
job to its end. Reports:

- jobs lost (not in the history as done or failed) and jobs failed, which should both be 0;
- duplicated images: jobs ComfyUI was sent more than once, or with more than one gallery entry;
- orphan ComfyUI prompts: prompts of ours left in ComfyUI's queue, and /api/health's orphan list;
- restart -> recovered image: from starting the process to the image of a job that was rendering
  when it was killed (the render's remaining steps included);
- the write-ahead records' cost per job, measured on the same kind of disk: the transactions a
  typed job makes (accept, each stage, the submit with its graph, the move into the history).

    .venv/bin/python benchmarks/soak_durable.py                 # 50 kills, about 5 minutes
    .venv/bin/python benchmarks/soak_durable.py --kills 100 --max-minutes 15 --json soak.json
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import requests
from benchlib import summary  # also puts the repository on sys.path

from speech2image.jobs.store import JobHistory  # noqa: E402
from tests.support import speech  # noqa: E402
from tests.support.app_process import FINISHED, AppProcess  # noqa: E402
from tests.support.data import SHIPPED  # noqa: E402
from tests.support.fake_comfy import FakeComfyUI, Knobs  # noqa: E402

SUBJECTS = ["a red fox", "a lighthouse", "a paper boat", "a teapot", "a windmill", "an old bicycle", "a cat"]
PLACES = ["in the snow", "at dusk", "on a rocky coast", "in a kitchen", "under the stars", "in the rain"]


def occupy(comfy: FakeComfyUI, steps: int) -> None:
    """Another client's prompt holds ComfyUI for a while, so ours wait in its queue."""
    graph = json.loads(json.dumps(SHIPPED))
    graph["3"]["inputs"].update(steps=steps, seed=random.randrange(10**9, 2 * 10**9))
    graph["4"]["inputs"]["ckpt_name"] = "tiny-sd15-random.safetensors"
    requests.post(comfy.url + "/prompt", json={"prompt": graph, "client_id": "someone-else"}, timeout=5)


def write_ahead_cost(folder: Path, jobs: int = 200) -> float:
    """ms per job for the rows a typed job writes, in the order the pipeline writes them."""
    history = JobHistory(folder / "cost.db")
    graph = json.loads(json.dumps(SHIPPED))
    t0 = time.perf_counter()
    for n in range(jobs):
        job_id = f"{n:032x}"
        history.open_job(job_id, session="s", stage="pending", request={"transcript": "a cat", "overrides": {}},
                         settings={"steps": 8})
        history.update_job(job_id, synced=False, stage="writing_prompt")
        history.update_job(job_id, plan={"prompt": "a cat, oil painting", "negative_prompt": "", "caption": "A cat."},
                           timings={"prompt": 0.01})
        history.update_job(job_id, synced=False, stage="submitting")
        history.update_job(job_id, server="http://127.0.0.1:8188", client_id="s2i-x", prompt_id=str(n), graph=graph,
                           render={"seed": n}, notes=[])
        history.update_job(job_id, synced=False, stage="rendering")
        history.update_job(job_id, synced=False, stage="saving")
        history.record({"job_id": job_id, "stage": "done", "created": time.time()}, "s", time.time())
    return (time.perf_counter() - t0) * 1000 / jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--max-minutes", type=float, default=9.0, help="stop killing after this long")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    random.seed(args.seed)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake ComfyUI's request lines
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="soak-durable-"))
    clip = speech.piper_wav("a red fox in the snow at dusk", work / "clip.wav").read_bytes()
    jobs: dict[str, dict] = {}  # job_id -> {seed, stage at kill...}
    stages_at_kill: Counter = Counter()
    recovered_image_s: list[float] = []
    start_s: list[float] = []
    kills = 0
    seed = 1000
    with FakeComfyUI(Knobs(step_delay_s=0.06, node_delay_s=0.002)) as comfy:
        def app():
            return AppProcess(work / "instance", comfy.url, log_path=work / "app.log", steps=10, width=64, height=64,
                              max_jobs_per_session=50)

        rendering_at_kill: list[str] = []
        while kills < args.kills and time.monotonic() - started < args.max_minutes * 60:
            t0 = time.monotonic()
            process = app().start()
            start_s.append(time.monotonic() - t0)
            # the jobs the last kill left while ComfyUI rendered them: time to their image
            for job_id in rendering_at_kill:
                state = process.wait_for(job_id, lambda s: s.get("stage") in FINISHED, timeout=60, poll_s=0.02)
                if state["stage"] == "done":
                    recovered_image_s.append(time.monotonic() - t0)
            if random.random() < 0.2:
                occupy(comfy, steps=random.randint(5, 15))
            in_flight = sum(1 for info in jobs.values() if not info.get("ended"))
            for n in range(random.randint(1, 2) if in_flight < 3 else 0):
                seed += 1
                body = {"seed": seed, "session": "soak-session"}
                if kills % 10 == 0 and n == 0:
                    answer = requests.post(process.url + "/api/jobs", data=body, timeout=10,
                                           files={"audio": ("clip.wav", clip, "audio/wav")})
                else:
                    body["transcript"] = f"{random.choice(SUBJECTS)} {random.choice(PLACES)} number {seed}"
                    answer = requests.post(process.url + "/api/jobs", json=body, timeout=10)
                if answer.status_code == 202:
                    jobs[answer.json()["job_id"]] = {"seed": seed}
            time.sleep(random.uniform(0.0, 2.0))
            states = {}
            for job_id in [j for j, info in jobs.items() if not info.get("ended")]:
                state = process.job(job_id)
                states[job_id] = state.get("stage", "unknown")
                if state.get("stage") in FINISHED:
                    jobs[job_id]["ended"] = True
            process.kill()
            kills += 1
            stages_at_kill.update(s for s in states.values() if s not in FINISHED)
            rendering_at_kill = [j for j, s in states.items() if s in ("rendering", "saving")]
        killing_s = time.monotonic() - started
        final = app().start()
        ends = {job_id: final.wait_finished(job_id, timeout=120) for job_id in jobs}
        health = requests.get(final.url + "/api/health", timeout=10).json()["jobs"]
        gallery = requests.get(final.url + "/api/gallery?all=1&limit=200", timeout=10).json()["entries"]
        queue = requests.get(comfy.url + "/queue", timeout=5).json()
        final.stop()
        posted = Counter(b["prompt"]["3"]["inputs"]["seed"] for b in comfy.posted
                         if str(b.get("client_id", "")).startswith("s2i-"))
    history = JobHistory(work / "instance" / "speech2image.db")
    in_gallery = Counter(e["job_id"] for e in gallery)
    lost = [j for j in jobs if history.get(j) is None or ends[j]["stage"] not in ("done", "error")]
    failed = [j for j in jobs if ends[j]["stage"] == "error"]
    duplicated = [j for j, info in jobs.items() if posted[info["seed"]] > 1 or in_gallery[j] > 1]
    left_in_comfy = [i[1] for i in queue["queue_running"] + queue["queue_pending"]
                     if str(i[3].get("client_id", "")).startswith("s2i-")]
    figures = {
        "kills": kills, "jobs": len(jobs), "killing_s": round(killing_s, 1),
        "job_stages_at_the_kills": dict(stages_at_kill),
        "jobs_lost": len(lost), "jobs_failed": len(failed),
        "failed_messages": sorted({ends[j]["error"]["message"] for j in failed}),
        "duplicated_images": len(duplicated),
        "orphan_prompts_in_comfyui": len(left_in_comfy) + sum(len(v) for v in health["orphans"].values()),
        "app_start_s": summary(start_s, digits=2),
        "restart_to_recovered_image_s": summary(recovered_image_s, digits=2),
        "write_ahead_ms_per_job": round(write_ahead_cost(work), 2),
        "in_flight_rows_left": len(history.in_flight()),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(f"(data folder and app log: {work})", file=sys.stderr)
    ok = not lost and not duplicated and not figures["orphan_prompts_in_comfyui"] and kills >= min(args.kills, 50)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
