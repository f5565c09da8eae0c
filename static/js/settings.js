// The settings panel: the server's saved defaults for the next jobs, and where each value comes from
// (set in the environment for this run, saved here, or the built-in default), with Reset.

import { api, jsonPost } from "./api.js";
import { capitalize, sentence, ui } from "./dom.js";
import { showSavedLanguage } from "./language.js";
import { showLoras } from "./loras.js";

let sources = {};
let recipeKnobs = [];  // the settings whose empty value is the model's recipe

export async function loadSettings() {
  try {
    // The dropdowns' choices come from loadModels and loadComfyChoices, asked once per load.
    const answer = await api("/api/settings");
    const { settings } = answer;
    if (![...ui.settingsWorkflow.options].some((o) => o.value === settings.workflow)) {
      ui.settingsWorkflow.add(new Option(settings.workflow, settings.workflow));
    }
    for (const [name, value] of Object.entries(settings)) {
      const field = ui.settingsForm.elements[name];
      if (field && Array.isArray(value)) showLoras(field, value);
      else if (field) field.value = keeps(field, value) ? "" : value;
    }
    recipeKnobs = answer.knobs.filter((k) => k.placeholder === "model's recipe").map((k) => k.name);
    showSources(answer);
    if (settings.llm_preset) ui.preset.value = settings.llm_preset;
    showSavedLanguage(settings.language);
  } catch (err) {
    ui.settingsStatus.textContent = "Could not read the settings: " + err.message;
  }
}

// A value set in the environment wins for this run: say so and lock the field; a saved one can be reset.
function showSources({ sources: given, knobs }) {
  sources = given || {};
  const variables = Object.fromEntries((knobs || []).map((knob) => [knob.name, knob.variable]));
  for (const [name, source] of Object.entries(sources)) {
    const field = ui.settingsForm.elements[name];
    const note = ui.settingsForm.querySelector(`[data-source-for="${name}"]`);
    const reset = ui.settingsForm.querySelector(`[data-reset="${name}"]`);
    if (field) field.disabled = source === "environment";
    if (note) {
      note.hidden = source !== "environment";
      note.textContent = source === "environment" ? `set by ${variables[name]} for this run` : "";
    }
    if (reset) reset.hidden = source !== "saved";
  }
  ui.resetAll.hidden = !Object.values(sources).includes("saved");
}

// A number's keep value (0: the model's recipe, -1: a random seed) is shown as the empty field, whose
// placeholder says what it means, rather than as a bare 0 that reads like a broken setting.
function keeps(field, value) {
  return field.type === "number" && field.dataset.keep !== undefined && Number(value) === Number(field.dataset.keep);
}

// Every named control the environment does not set is a setting; numbers where the form has number inputs
// (an empty one saves its keep value).
function formValues() {
  const changes = {};
  for (const field of ui.settingsForm.elements) {
    if (!field.name || field.disabled) continue;
    changes[field.name] = field.type === "number" ? Number(field.value || field.dataset.keep || 0) : field.value;
  }
  return changes;
}

// afterSave(): reload what the new settings change (choices, health), beside the settings themselves.
export function initSettings({ afterSave }) {
  async function save(changes, done) {
    ui.settingsStatus.textContent = "Saving…";
    try {
      const answer = await api("/api/settings", jsonPost(changes));
      // taken without a check (its server did not answer): said beside "saved"
      ui.settingsStatus.textContent = [done, ...(answer.warnings || []).map(sentence)].join(" ");
      await Promise.all([loadSettings(), afterSave()]);
    } catch (err) {
      ui.settingsStatus.textContent = capitalize(err.message) + ".";
    }
  }

  ui.settingsForm.addEventListener("submit", (event) => {
    event.preventDefault();
    save(formValues(), "Saved. Changes apply to the next job.");
  });
  // null is "back to the default" for the server.
  ui.settingsForm.addEventListener("click", (event) => {
    const name = event.target.dataset && event.target.dataset.reset;
    if (name) save({ [name]: null }, "Reset to the default.");
  });
  // One click: every recipe value this page saved goes back to the model's own.
  ui.useRecipe.addEventListener("click", () => {
    const saved = recipeKnobs.filter((name) => sources[name] === "saved");
    save(Object.fromEntries(saved.map((name) => [name, null])), "The model's recipe is used again.");
  });
  ui.resetAll.addEventListener("click", () => {
    const saved = Object.keys(sources).filter((name) => sources[name] === "saved");
    save(Object.fromEntries(saved.map((name) => [name, null])), "All settings are back to their defaults.");
  });
}
