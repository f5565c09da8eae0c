// The job's progress: the stage label, one bar for the whole job, and the time spent per stage.

import { ui } from "./dom.js";
import { clearStep } from "./strip.js";
import { FINISHED, STAGES } from "./table.js";

export { FINISHED };

const stageLabel = (stage) => (STAGES.get(stage) || { label: stage }).label;
// One bar for the whole job: each stage owns a slice, the render's own percentage fills its slice.
const stageSpan = (stage) => (STAGES.get(stage) || {}).span;
// The stages whose time the page shows while the job runs.
const timedName = (stage) => (STAGES.get(stage) || {}).timed;

// What the person waited for first (from Stop, or from sending the request, to the result), then the
// stages inside it; the voice is made beside the render, so it is inside the render's time.
const TIMING_NAMES = { total: "Waited", asr: "speech recognition", prompt: "prompt", render: "render",
  speech: "voice (beside the render)", save: "saving" };

const seconds = (value) => (value < 0.01 ? "<0.01 s" : `${value.toFixed(2)} s`);

// When each stage began (as the page saw it), the clock redrawing their times, and the bar's parts.
const progress = { stageStarts: [], timer: null, renderPercent: 0, overall: 0 };

function stopTimer() {
  clearInterval(progress.timer);
  progress.timer = null;
}

export function resetProgress() {
  ui.progress.className = "progress";
  progress.stageStarts = [];
  stopTimer();
  progress.renderPercent = 0;
  progress.overall = 0;
  ui.stage.dataset.stage = "pending";
  ui.stages.replaceChildren();
  showBar(0);
  clearStep();
}

export function setProgress(renderValue) {
  progress.renderPercent = renderValue;
  const stage = ui.stage.dataset.stage || "pending";
  const [low, high] = stageSpan(stage) || [progress.overall, progress.overall];
  const within = stage === "rendering" || stage === "queued" ? progress.renderPercent / 100 : 0;
  progress.overall = Math.max(progress.overall, low + (high - low) * within);
  showBar(progress.overall);
}

export function showBar(percent) {
  const value = Math.max(0, Math.min(100, percent));
  ui.progressFill.style.width = value + "%";
  ui.progress.setAttribute("aria-valuenow", String(Math.round(value)));
}

export function fillBar() {
  progress.overall = 100;
  showBar(100);
}

export function setStage(stage, extra = {}) {
  ui.stage.textContent = stage === "queued" && extra.position ? `Queued #${extra.position}` : stageLabel(stage);
  const previous = ui.stage.dataset.stage;
  ui.stage.dataset.stage = stage;
  if (stage !== previous && timedName(stage)) {
    progress.stageStarts.push({ stage, at: performance.now() });
  }
  if (stage === "rendering" && previous !== "rendering") bringResultIntoView();
  if (stage !== "rendering") ui.eta.textContent = "";
  if (FINISHED.has(stage)) {
    stopTimer();
  } else if (!progress.timer && timedName(stage)) {
    progress.timer = setInterval(drawStages, 200);
  }
  drawStages();
  setProgress(progress.renderPercent);
}

// On a phone the result sits below the text boxes: when the render starts, show it, unless the
// person is typing or already looking at it.
const SINGLE_COLUMN = window.matchMedia("(max-width: 860px)");

function bringResultIntoView() {
  if (!SINGLE_COLUMN.matches) return;
  const active = document.activeElement;
  const editing = active && active.id !== "typed" && ["TEXTAREA", "INPUT", "SELECT"].includes(active.tagName);
  if (editing) return;
  const box = ui.canvas.getBoundingClientRect();
  if (box.top >= ui.jobStrip.getBoundingClientRect().bottom && box.bottom <= window.innerHeight) return;
  ui.canvas.scrollIntoView({ behavior: "smooth", block: "start" });  // below the strip: scroll-margin-top
}

// The timings of the stages that ran: without a picture, the render counts only if ComfyUI started it
// (not while it was being sent or queued), and the voice not at all (it is played with the picture).
export function timingsThatRan(snapshot) {
  const timings = { ...(snapshot.timings || {}) };
  if (snapshot.stage === "done") return timings;
  const failedAt = snapshot.error && snapshot.error.stage;
  const rendered = ["rendering", "saving"].includes(failedAt)
    || progress.stageStarts.some((entry) => entry.stage === "rendering");
  if (!rendered) delete timings.render;
  delete timings.speech;
  return timings;
}

// Live, the page's own clock per stage; with `final` (the job's timings), the server's figures instead.
export function drawStages(final = null) {
  if (final) {
    ui.stages.replaceChildren(...Object.entries(TIMING_NAMES)
      .filter(([key]) => final[key] !== undefined)
      .map(([key, label]) => item(`${label} ${seconds(final[key])}${key === "total" ? ":" : ""}`)));
    return;
  }
  const now = performance.now();
  const starts = progress.stageStarts;
  ui.stages.replaceChildren(...starts.map((entry, i) => {
    const end = i + 1 < starts.length ? starts[i + 1].at : now;
    const li = item(`${timedName(entry.stage)} ${((end - entry.at) / 1000).toFixed(1)} s`);
    if (i === starts.length - 1) li.className = "current";
    return li;
  }));
}

function item(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}
