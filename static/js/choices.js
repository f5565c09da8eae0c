// The dropdowns' choices: the LLM server's models and what ComfyUI and our workflow folder offer,
// asked for once per load (and after saving settings or uploading a workflow).

import { api } from "./api.js";
import { capitalize, showMessage, ui } from "./dom.js";

function fillOptions(list, values, selected, firstLabel, labels = {}) {
  list.replaceChildren(...(firstLabel !== undefined ? [new Option(firstLabel, "")] : []),
    ...values.map((v) => new Option(labels[v] || v, v)));
  if (values.includes(selected)) list.value = selected;
}

// Every element marked data-choices="<key>" lists `values`: a datalist as suggestions, a select as
// its options, keeping its current choice when still offered, else selecting `fallback` (the server's
// default). A select's data-empty-label gives it a first empty option; `emptyLabel` can reword it.
// A job override (data-override) stays empty unless chosen: empty is the saved default. `labels` name
// the values for people (a model: "juggernautXL.safetensors (SDXL)").
function fillChoices(key, values, fallback, emptyLabel, labels) {
  for (const list of document.querySelectorAll(`[data-choices="${CSS.escape(key)}"]`)) {
    if (list.tagName !== "SELECT") {
      fillOptions(list, values, undefined, undefined, labels);
      continue;
    }
    const label = list.dataset.emptyLabel === undefined ? undefined : emptyLabel || list.dataset.emptyLabel;
    fillOptions(list, values, list.dataset.override !== undefined ? list.value : list.value || fallback, label, labels);
  }
}

export async function loadModels() {
  try {
    const info = await api("/api/llm");
    // With no LLM server found, the empty choice means no LLM at all rather than the server's default.
    fillChoices("model", info.models, info.model, info.server ? undefined : "No LLM server");
  } catch (_) { /* the health light says the server is away */ }
}

// info.choices maps each job field to what ComfyUI or our workflow folder offer; info[field] is its default;
// info.models says what each model is. Answers info (null when the server did not answer).
export async function loadComfyChoices() {
  try {
    const info = await api("/api/comfyui");
    const kinds = Object.fromEntries((info.models || []).map((m) => [m.name, `${m.name} (${m.label})`]));
    for (const [key, values] of Object.entries(info.choices)) {
      fillChoices(key, values, info[key], undefined, key === "checkpoint" ? kinds : {});
    }
    return info;
  } catch (_) {
    return null;  // shown by the health light
  }
}

// The models and voices the speech servers of the settings offer (none while the models run in this app).
export async function loadSpeechChoices() {
  try {
    const info = await api("/api/speech");
    for (const [key, values] of Object.entries(info.choices)) fillChoices(key, values);
  } catch (_) { /* the health lights say what is away */ }
}

// An uploaded workflow is chosen for this job; afterUpload(info) gets the new choices.
async function uploadWorkflow(afterUpload) {
  const file = ui.workflowFile.files[0];
  if (!file) return;
  const form = new FormData();
  form.append("workflow", file, file.name);
  try {
    const result = await api("/api/workflows", { method: "POST", body: form });
    const info = await loadComfyChoices();
    ui.workflow.value = result.name;
    afterUpload(info);
    showMessage(`Workflow “${result.name}” added and selected.`, "ok");
  } catch (err) {
    showMessage(capitalize(err.message), "error");
  } finally {
    ui.workflowFile.value = "";
  }
}

export function initWorkflowUpload({ afterUpload }) {
  ui.workflowFile.addEventListener("change", () => uploadWorkflow(afterUpload));
}
