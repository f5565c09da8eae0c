// The settings panel: the server's saved defaults for the next jobs.

import { api, jsonPost } from "./api.js";
import { capitalize, ui } from "./dom.js";

export async function loadSettings() {
  try {
    // The dropdowns' choices come from loadModels and loadComfyChoices, asked once per load.
    const { settings } = await api("/api/settings");
    if (![...ui.settingsWorkflow.options].some((o) => o.value === settings.workflow)) {
      ui.settingsWorkflow.add(new Option(settings.workflow, settings.workflow));
    }
    for (const [name, value] of Object.entries(settings)) {
      const field = ui.settingsForm.elements[name];
      if (field) field.value = value;
    }
    if (settings.llm_preset) ui.preset.value = settings.llm_preset;
  } catch (err) {
    ui.settingsStatus.textContent = "Could not read the settings: " + err.message;
  }
}

// Every named control is a setting; the server wants numbers where the form has number inputs.
function formValues() {
  const changes = {};
  for (const field of ui.settingsForm.elements) {
    if (!field.name) continue;
    changes[field.name] = field.type === "number" ? Number(field.value) : field.value;
  }
  return changes;
}

// afterSave(): reload what the new settings change (choices, health), beside the settings themselves.
export function initSettings({ afterSave }) {
  ui.settingsForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changes = formValues();
    ui.settingsStatus.textContent = "Saving…";
    try {
      await api("/api/settings", jsonPost(changes));
      ui.settingsStatus.textContent = "Saved. Changes apply to the next job.";
      await Promise.all([loadSettings(), afterSave()]);
    } catch (err) {
      ui.settingsStatus.textContent = capitalize(err.message) + ".";
    }
  });
}
