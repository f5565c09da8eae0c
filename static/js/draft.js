// A draft: at the speaker's pause, before Stop, the server starts drawing what the live recording heard
// ("draft" events on the relay, speech2image/jobs/drafts.py). The result area shows its progress, labelled
// as drawing what was heard so far; at Stop, when the job takes the draft over (the same id), the same bar
// carries on; a cancelled draft (the person spoke again) disappears quietly. Before the pause, fast
// models send live sketches ("sketch" events, speech2image/jobs/sketches.py): each shows in the picture's
// place, small and rough, until the next one, the draft or the job's own preview replaces it.

import { ui } from "./dom.js";
import { resetProgress, setProgress } from "./progress.js";
import { hideStrip, showStrip } from "./strip.js";

const DRAWING = "Drawing what was heard so far…";
const SKETCHING = "Sketching what was heard so far…";
let shown = null;  // the id of the draft in view

export function draftShown() {
  return shown;
}

// The job took the draft over (or the page moved on): it is no longer the draft's to clear.
export function forgetDraft() {
  shown = null;
}

// A draft's or a sketch's event, while recording or once Stop was pressed and the job is not yet known.
export function onEarly(event, { starting = false } = {}) {
  if (event.type === "sketch") onSketch(event);
  else onDraft(event, { starting });
}

// A live sketch: the picture's place shows it; the label says so once (it is aria-live), the draft's replaces it.
function onSketch(event) {
  if (shown) return;  // the draft (full recipe) is drawing: it is what the tab waits for
  if (ui.stage.textContent !== SKETCHING) {
    showStrip();
    ui.stage.textContent = SKETCHING;
  }
  if (event.width && event.height) ui.canvas.style.aspectRatio = `${event.width} / ${event.height}`;
  ui.preview.alt = `Sketch of: ${event.words}`;
  ui.preview.src = event.url;
  ui.preview.hidden = false;
}

// starting: Stop was pressed and the job is on its way, so the strip stays for it.
function onDraft(event, { starting = false } = {}) {
  if (event.state === "cancelled") {
    if (event.job_id === shown) dropDraft(starting);
    return;
  }
  if (shown !== event.job_id) {
    shown = event.job_id;
    resetProgress();
    showStrip();
    ui.stage.textContent = DRAWING;  // the label is aria-live: screen readers hear it once, not every step
    ui.preview.alt = "Live preview";
  }
  ui.stage.dataset.stage = event.stage;  // queued or rendering: the bar's slice, as the job's would be
  setProgress(event.percent || 0);
  if (event.preview) {
    ui.preview.src = event.preview;
    ui.preview.hidden = false;
  }
}

function dropDraft(starting) {
  shown = null;
  resetProgress();
  ui.preview.hidden = true;
  ui.stage.textContent = "";
  if (!starting) hideStrip();
}
