"""Render time a person can plan around: the time left from timed sampler steps, and a warning
before a job that a CPU-only ComfyUI would take minutes over."""
from __future__ import annotations

import pytest
import requests

from speech2image.picture.comfy.events import CPU_STEP_S, CPU_WARN_S, StepClock, cpu_estimate

from .support.fake_comfy import FakeComfyUI, Knobs
from .support.relay import run


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_time_left_comes_after_a_few_timed_steps():
    clock = Clock()
    steps = StepClock(clock)
    answers = []
    for value in range(1, 7):
        clock.now += 2.0 if value > 1 else 30.0  # the first step waited for the model to load
        answers.append(steps.step("3", value, 20))
    assert answers[:2] == [None, None]
    assert answers[2:] == [34.0, 32.0, 30.0, 28.0]  # (20 - step) x 2 s
    clock.now += 1.0
    assert steps.step("3", 7, 20) == pytest.approx(13 * 1.8)  # the mean of the last five steps
    clock.now += 1.0
    assert steps.step("9", 1, 10) is None  # another sampler starts over
    assert steps.seconds_per_step == pytest.approx(1.8)  # the last measure stays known


def test_the_progress_line_gets_the_time_left(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.05)) as comfy:
        _, events = run(serve(comfyui_url=comfy.url, steps=12), prompt="a kite")
    progress = [e for e in events if e["type"] == "progress" and "value" in e]
    assert [e["value"] for e in progress] == list(range(1, 13))
    assert all("eta_s" not in e for e in progress[:2])
    assert all(e["eta_s"] >= 0 for e in progress[2:]) and progress[-1]["eta_s"] == 0
    assert progress[2]["eta_s"] > progress[-2]["eta_s"]


def notes_of(server, **body) -> list[str]:
    snapshot, _ = run(server, timeout=60, **{"prompt": "a kite", **body})
    assert snapshot["stage"] == "done"
    return [n for n in snapshot["notes"] if "runs on the CPU" in n]


def test_the_cpu_estimate_scales_with_pixels_times_steps():
    # a timed 128² step (0.34 s on ComfyUI here) makes 512² at 20 steps minutes (a 512² step took ~8 s)
    assert cpu_estimate(4, 128 * 128 / 1e6, (128 * 128 / 1e6, 0.34)) == pytest.approx(4 * 0.34)
    assert 6.0 < cpu_estimate(1, 512 * 512 / 1e6, (128 * 128 / 1e6, 0.34)) < 10.0
    assert cpu_estimate(20, 512 * 512 / 1e6, (128 * 128 / 1e6, 0.34)) > CPU_WARN_S
    assert cpu_estimate(40, 0.25) == pytest.approx(2 * cpu_estimate(20, 0.25))  # twice the steps: twice the time
    assert cpu_estimate(20, *CPU_STEP_S[:1]) > CPU_WARN_S  # the usual 512² job on an untimed CPU: warned


def test_the_estimate_follows_the_models_family():
    from speech2image.picture.families import FAMILIES
    sd15, sdxl, flux = (FAMILIES[name].step_cost for name in ("sd15", "sdxl", "flux"))
    assert sd15 == 1.0 and sd15 < sdxl < flux  # a bigger denoiser: a dearer step at the same size


def test_a_long_job_on_a_cpu_is_warned_about_until_the_cpu_is_timed(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.002)) as comfy:
        server = serve(comfyui_url=comfy.url)
        # Before any job was timed there: 512x512 at 20 steps is minutes on a typical CPU.
        (warning,) = notes_of(server, width=512, height=512, steps=20)
        assert warning == ("ComfyUI runs on the CPU here: 512×512 at 20 steps will take about 2 min. "
                           "Fewer steps or a smaller size is much faster.")
        assert notes_of(server, width=1024, height=1024, steps=20) == []  # this CPU was timed since: it is fast
    with FakeComfyUI(Knobs(step_delay_s=0.05)) as comfy:
        server = serve(comfyui_url=comfy.url)
        notes_of(server, width=128, height=128, steps=4)  # timed small: 0.05 s a step
        (warning,) = notes_of(server, width=1024, height=1024, steps=30)  # 64x the pixels, 30 steps
        assert warning.startswith("ComfyUI runs on the CPU here: 1024×1024 at 30 steps will take about ")


def test_no_warning_on_a_gpu(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.002, device_type="cuda")) as comfy:
        server = serve(comfyui_url=comfy.url, width=1024, height=1024, steps=20)
        assert notes_of(server) == []
        health = requests.get(server.url + "/api/health", timeout=10).json()["comfyui"]
    assert health["device"] == "gpu"
