// Changing a picture: the server's decision beside the prompt (new picture, or a change of the last one
// and how strong) with a one-click switch to the other; the picture chosen with "Change this picture",
// which the next spoken or typed request changes; and the chain of pictures an edit was changed from.

import { api } from "./api.js";
import { ui } from "./dom.js";

const thumbOf = (jobId) => `/outputs/${jobId}.thumb.jpg`;
const BY = { llm: " · the LLM decided", offline: " · from your words", page: " · your choice" };

// target: the gallery entry the next request changes; shown: the decision of the job in view.
const state = { target: null, shown: null, restart: () => {}, open: () => {} };

// What a request adds to change a picture: the chosen one; for Generate also the job in view's own change.
export function editOptions(generate = false) {
  if (state.target) return { edit_of: state.target.job_id };
  const shown = state.shown;
  if (generate && shown && shown.mode === "edit") return { edit_of: shown.parent, denoise: shown.strength };
  return {};
}

export function chooseTarget(entry) {
  state.target = entry;
  ui.editTargetThumb.src = entry.thumb_url || thumbOf(entry.job_id);
  ui.editTarget.hidden = false;
  ui.typed.placeholder = "…or type what to change, e.g. make it at night";
  ui.typed.focus({ preventScroll: true });
  belowTheStrip(ui.typedForm);
}

// Scroll so that the field just focused shows below the sticky job strip, not under it.
function belowTheStrip(element) {
  const strip = ui.jobStrip.hidden ? 0 : ui.jobStrip.getBoundingClientRect().bottom;
  const box = element.getBoundingClientRect();
  if (box.top >= strip + 8 && box.bottom <= window.innerHeight) return;
  window.scrollBy({ top: box.top - strip - 16, behavior: "smooth" });
}

export function clearTarget() {
  state.target = null;
  ui.editTarget.hidden = true;
  ui.typed.placeholder = "…or type what you want to see";
}

// A job was accepted: the chosen picture was for that one request.
export function jobAccepted() {
  if (state.target) clearTarget();
}

export function resetDecision() {
  state.shown = null;
  ui.decision.hidden = true;
  ui.chain.hidden = true;
  ui.chainList.replaceChildren();
}

// decision: {mode, by, parent, strength} from the job's "decision" event or its snapshot.
export function showDecision(decision) {
  state.shown = decision;
  if (!decision || (decision.mode === "new" && !decision.parent)) {
    ui.decision.hidden = true;
    return;
  }
  const editing = decision.mode === "edit";
  const which = decision.by === "request" ? "the chosen" : "the last";
  ui.decisionText.textContent = editing
    ? `Changing ${which} picture · strength ${Number(decision.strength).toFixed(2)}${BY[decision.by] || ""}`
    : `New picture${BY[decision.by] || ""}`;
  ui.decisionThumb.hidden = !editing;
  if (editing) ui.decisionThumb.src = thumbOf(decision.parent);  // hidden again if that picture was deleted
  ui.decisionSwitch.textContent = editing ? "Make a new picture instead" : "Change the last picture instead";
  ui.decision.hidden = false;
}

function switchMode() {
  const shown = state.shown;
  if (!shown) return;
  state.restart(shown.mode === "edit" ? { mode: "new" } : { edit_of: shown.parent, mode: "edit" });
}

function chainLink(link) {
  const li = document.createElement("li");
  if (link.missing) {
    li.textContent = "(deleted)";
    return li;
  }
  const button = document.createElement("button");
  button.type = "button";
  button.title = [link.prompt, link.strength ? `changed at strength ${link.strength}` : ""].filter(Boolean).join("\n");
  const img = document.createElement("img");
  img.src = link.thumb_url;
  img.alt = `Changed from: ${link.prompt || "an earlier picture"}`;
  button.append(img);
  button.addEventListener("click", () => state.open(link.job_id));
  li.append(button);
  return li;
}

// The pictures this one was changed from, its parent first (GET /api/gallery/<id> has the chain).
export async function loadChain(jobId) {
  try {
    const entry = await api(`/api/gallery/${jobId}`);
    ui.chainList.replaceChildren(...(entry.chain || []).map(chainLink));
    ui.chain.hidden = !(entry.chain || []).length;
  } catch (_) {
    ui.chain.hidden = true;
  }
}

// restart(fields): the request in view again with these fields; open(jobId): show a gallery entry.
export function initEdits({ restart, open }) {
  Object.assign(state, { restart, open });
  ui.decisionSwitch.addEventListener("click", switchMode);
  ui.decisionThumb.addEventListener("error", () => { ui.decisionThumb.hidden = true; });
  ui.editTargetClear.addEventListener("click", clearTarget);
}
