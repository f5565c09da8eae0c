// The job strip, in view on any screen while a job runs: the stage (progress.js writes it), the
// sampler's step, how long is left, Cancel, and after a failure the error with Run again.

import { sentence, ui, withCode } from "./dom.js";

// The sampler's pace since its first step, for an estimate until the server sends its own (eta_s).
const pace = { since: null, fromValue: 0, max: null, lastValue: 0, stepS: 0, stopping: false };
let runAgain = null;

export function showStrip() {
  ui.jobStrip.hidden = false;
}

export function hideStrip() {
  ui.jobStrip.hidden = true;
}

export function clearStep() {
  ui.step.textContent = "";
  ui.eta.textContent = "";
  Object.assign(pace, { since: null, fromValue: 0, max: null, lastValue: 0, stepS: 0, stopping: false });
}

export function showStep(text) {
  ui.step.textContent = text;
}

function aboutLeft(seconds) {
  if (seconds < 1.5) return "almost done";
  if (seconds < 90) return `about ${Math.round(seconds)} s left`;
  return `about ${Math.round(seconds / 60)} min left`;
}

// Seconds left: the server's figure when it sends one, else the steps to go at the pace so far
// (known once two steps have passed; a new sampler, or one starting over, starts a new pace).
function secondsLeft({ value, max, eta_s: serverEta }) {
  if (typeof serverEta === "number" && serverEta >= 0) return serverEta;
  const now = performance.now();
  if (pace.since === null || pace.max !== max || value < pace.lastValue) {
    Object.assign(pace, { since: now, fromValue: value, max });
  }
  pace.lastValue = value;
  const stepsDone = value - pace.fromValue;
  if (stepsDone < 2) return null;
  return ((now - pace.since) / stepsDone / 1000) * (max - value);
}

// A cancel asked for while the sampler runs: ComfyUI stops at the end of the step under way, which on a
// slow machine takes a while; say so instead of leaving "step n/N" standing still.
export function showCancelling() {
  const wait = pace.stepS > 1.5 ? ` (about ${Math.round(pace.stepS)} s)` : "";
  ui.step.textContent = `stopping after the current step${wait}…`;
  ui.eta.textContent = "";
  pace.stopping = true;
}

// A "progress" event: the sampler's step n/N and, once known, about how long is left.
export function showProgressStep(event) {
  if (event.value === undefined) return;
  if (event.step_s) pace.stepS = event.step_s;
  if (pace.stopping) return;
  ui.step.textContent = `step ${event.value}/${event.max}`;
  const left = secondsLeft(event);
  ui.eta.textContent = left === null ? "" : aboutLeft(left);
}

// The error, as a sentence with its code shown as code, and Run again when there is something to run.
export function showFailure(message, onRunAgain = null) {
  ui.failureMessage.replaceChildren(...withCode(sentence(message)));
  runAgain = onRunAgain;
  ui.runAgain.hidden = !onRunAgain;
  ui.failure.hidden = false;
}

// No ComfyUI to render a finished prompt: said once, here, with one click to render it when ComfyUI is back.
export function showWaiting(message, onRenderWhenBack = null) {
  showFailure(message, onRenderWhenBack);
  ui.failure.classList.add("waiting");
  ui.runAgain.textContent = "Render when ComfyUI is back";
}

// After that click: the button says what will happen until it happens.
export function waitingToRender() {
  ui.runAgain.disabled = true;
  ui.runAgain.textContent = "Will render when ComfyUI is back…";
}

export function hideFailure() {
  ui.failure.hidden = true;
  ui.failure.classList.remove("waiting");
  ui.runAgain.textContent = "Run again";
  ui.runAgain.disabled = false;
  ui.failureMessage.replaceChildren();
  runAgain = null;
}

export function initStrip() {
  ui.runAgain.addEventListener("click", () => {
    if (runAgain) runAgain();
  });
}
