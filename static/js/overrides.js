// "Override for this job": the render box changes one job only. An empty field shows, in grey,
// what the job gets instead: the saved setting ("4 (settings)"), else the model's recipe with one of our
// workflows ("25 (SDXL recipe)"), else the workflow's own value ("20 (workflow)"), or "random" for the
// seed. It follows saves, and the workflow and model chosen here.

import { api } from "./api.js";
import { ui } from "./dom.js";

// knobs: the settings table (by job field); settings: the saved values; comfy: /api/comfyui's answer.
const known = { knobs: {}, settings: {}, comfy: { workflow_defaults: {}, checkpoints: [], models: [] } };

function isKept(knob, value) {
  return value === undefined || value === null || value === "" || (Array.isArray(value) && !value.length)
    || (knob.keep !== null && value === knob.keep);
}

// The model a new picture would be drawn with: the job's, the saved one, the workflow's own if ComfyUI
// has it, else the first that draws new pictures (as the server chooses).
function modelFor(own) {
  const models = known.comfy.models || [];
  const name = ui.checkpoint.value || known.settings.checkpoint;
  return models.find((m) => m.name === (name || own.checkpoint)) || (name ? null : models.find((m) => m.text_to_image));
}

// What a job gets for a setting it does not override, and where that comes from.
function effective(knob) {
  const saved = known.settings[knob.name];
  if (knob.name === "seed" && isKept(knob, saved)) return "random";
  if (!isKept(knob, saved)) return `${Array.isArray(saved) ? saved.map((l) => l.name).join(", ") : saved} (settings)`;
  const workflow = ui.workflow.value || known.settings.workflow;
  const own = (known.comfy.workflow_defaults || {})[workflow] || {};
  const model = (known.comfy.shipped_workflows || []).includes(workflow) ? modelFor(own) : null;
  const recipe = model ? model.recipe[knob.name] : null;
  if (recipe !== null && recipe !== undefined) return `${recipe} (${model.label} recipe)`;
  const checkpoints = known.comfy.checkpoints || [];
  if (knob.name === "checkpoint" && checkpoints.length && !checkpoints.includes(own.checkpoint)) {
    return `${checkpoints[0]} (ComfyUI's first)`;  // the workflow's own is not in ComfyUI
  }
  if (own[knob.name] !== undefined) return `${own[knob.name]} (workflow)`;
  return knob.placeholder || "automatic";
}

function showEffective() {
  let overridden = 0;
  for (const control of ui.overrides.querySelectorAll("[data-job]")) {
    const knob = known.knobs[control.dataset.job];
    if (control.value !== "") overridden += 1;
    if (!knob) continue;
    const text = effective(knob);
    if (control.tagName === "SELECT") {
      if (control.dataset.emptyLabel !== undefined) control.dataset.emptyLabel = text;
      if (control.options[0] && control.options[0].value === "") control.options[0].textContent = text;
    } else {
      control.placeholder = text;
    }
  }
  ui.overridesCount.hidden = overridden === 0;
  ui.overridesCount.textContent = `${overridden} set`;
}

// After a load or a save: the saved settings and, when given, what /api/comfyui answered.
export async function loadEffective(comfy) {
  try {
    const view = await api("/api/settings");
    known.settings = view.settings;
    known.knobs = Object.fromEntries(view.knobs.filter((k) => k.job).map((k) => [k.job, k]));
  } catch (_) { /* the settings panel says why */ }
  if (comfy) known.comfy = comfy;
  showEffective();
}

export function initOverrides() {
  ui.overrides.addEventListener("input", showEffective);
  ui.overrides.addEventListener("change", showEffective);
}
