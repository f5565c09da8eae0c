"""ComfyUI's progress in the page's terms: what it is doing, throttled previews as data URLs, the time left."""
from __future__ import annotations

import base64
import time
from typing import Callable

from ..workflows import Workflow

PREVIEW_INTERVAL_S = 0.15
ETA_AFTER_STEPS = 3  # sampler steps seen before the time left is estimated

# What a running node is doing, in a person's words, by the start of its class name (first match wins);
# a node's own title ("Negative Prompt", "Load Checkpoint") speaks the workflow's language, not theirs.
PHASES = (
    (("LoadImage", "VAEEncode"), "reading the picture to change"),
    (("CheckpointLoader", "UNETLoader", "DualCLIPLoader", "TripleCLIPLoader", "CLIPLoader", "VAELoader",
      "LoraLoader", "ModelSampling"), "loading the model"),
    (("CLIPTextEncode", "FluxGuidance", "ConditioningSet", "ConditioningCombine", "ConditioningZeroOut"),
     "encoding the prompt"),
    (("Empty", "LatentUpscale"), "preparing the canvas"),
    (("KSampler", "SamplerCustom", "BasicGuider", "CFGGuider", "RandomNoise", "KSamplerSelect", "BasicScheduler"),
     "drawing"),
    (("VAEDecode",), "decoding the picture"),
    (("SaveImage", "PreviewImage"), "saving the picture"),
)


def phase(class_type: str | None) -> str:
    """What a node of this class is doing, in a person's words."""
    return next((words for starts, words in PHASES if (class_type or "").startswith(starts)), "working")


# A sampler step on a CPU, until a render on that server has been timed: SD 1.5 at 512x512 on a typical
# desktop CPU (2 cores here: about 8 s). A step's cost grows a little faster than its pixels (attention
# over more latent tokens): measured on ComfyUI 0.3.64 here, 128² 0.34 s, 256² 1.33 s, 384² 4.2 s per step,
# so an estimate scales the timed step by (pixels / its pixels) ** CPU_PIXEL_POWER. The warning comes for a
# job estimated above CPU_WARN_S.
CPU_STEP_S = (512 * 512 / 1e6, 6.0)  # (megapixels, seconds per step)
CPU_PIXEL_POWER = 1.2
CPU_WARN_S = 60.0


def cpu_estimate(steps: int, megapixels: float, timed: tuple[float, float] = CPU_STEP_S) -> float:
    """Seconds for ``steps`` at ``megapixels`` on a CPU whose step took ``timed`` = (megapixels, seconds)."""
    at, seconds = timed
    return steps * seconds * (megapixels / at) ** CPU_PIXEL_POWER



class StepClock:
    """Seconds per sampler step, from the last few steps of the node sampling now, and from that the
    time its remaining steps will take. The first step (which may include loading the model) is not timed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, window: int = 5):
        self.clock = clock
        self.window = window
        self.node: str | None = None
        self.last: tuple[float, float] | None = None  # (time, step) of the previous progress message
        self.intervals: list[float] = []
        self.seconds_per_step: float | None = None  # the latest measure, kept after the node ends

    def step(self, node: str, value: float, maximum: float) -> float | None:
        """The seconds left for this node's remaining steps; None until enough steps were timed."""
        now = self.clock()
        if node != self.node or self.last is None or value <= self.last[1]:
            self.node, self.intervals = node, []  # a new sampler (or it started over)
        else:
            self.intervals = (self.intervals + [(now - self.last[0]) / (value - self.last[1])])[-self.window:]
        self.last = (now, value)
        if len(self.intervals) < ETA_AFTER_STEPS - 1:
            return None
        self.seconds_per_step = sum(self.intervals) / len(self.intervals)
        return max(0.0, (maximum - value) * self.seconds_per_step)


class RenderEvents:
    """ComfyUI's progress in the page's terms: what a node is doing instead of its id, previews as data URLs
    at most every PREVIEW_INTERVAL_S (a fast sampler sends more than a browser wants to draw), and
    the time left (``eta_s``) once a few sampler steps have been timed."""

    def __init__(self, workflow: Workflow, emit: Callable[[dict], None]):
        self.workflow = workflow
        self.emit = emit
        self.last_preview = 0.0
        self.steps = StepClock()
        self.started: float | None = None  # when ComfyUI began to run the prompt (monotonic)

    def __call__(self, event: dict) -> None:
        kind = event["type"]
        if kind == "started":
            self.started = time.monotonic()
        elif kind == "preview":
            now = time.monotonic()
            if now - self.last_preview < PREVIEW_INTERVAL_S:
                return
            self.last_preview = now
            encoded = base64.b64encode(event["image"]).decode("ascii")
            event = {"type": "preview", "url": f"data:{event['mime']};base64,{encoded}"}
        elif kind == "node":
            node = self.workflow.graph.get(event["node"], {})
            event = {**event, "class_type": node.get("class_type"), "phase": phase(node.get("class_type"))}
        elif kind == "progress" and event.get("max"):
            eta = self.steps.step(event["node"], event["value"], event["max"])
            if eta is not None:  # and how long one step takes: a cancel waits for the step under way
                event = {**event, "eta_s": round(eta, 1), "step_s": round(self.steps.seconds_per_step or 0.0, 2)}
        self.emit(event)
