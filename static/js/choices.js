// The dropdowns' choices: the LLM server's models and what ComfyUI and our workflow folder offer,
// asked for once per load (and after saving settings or uploading a workflow).

import { api } from "./api.js";
import { capitalize, showMessage, ui } from "./dom.js";

function fillSelect(select, values, selected, firstLabel) {
  select.replaceChildren(...(firstLabel !== undefined ? [new Option(firstLabel, "")] : []), ...values.map((v) => new Option(v, v)));
  if (values.includes(selected)) select.value = selected;
}

export async function loadModels() {
  try {
    const info = await api("/api/llm");
    const current = ui.model.value || info.model;
    fillSelect(ui.model, info.models, current, info.server ? "Server default" : "No LLM server");
    fillSelect(ui.llmModels, info.models);  // suggestions for the settings' model field
  } catch (_) { /* the health light says the server is away */ }
}

export async function loadComfyChoices() {
  try {
    const info = await api("/api/comfyui");
    fillSelect(ui.workflow, info.workflows, ui.workflow.value || info.workflow);
    fillSelect(ui.checkpoint, info.checkpoints, ui.checkpoint.value || info.checkpoint, "Automatic");
    fillSelect(ui.settingsWorkflow, info.workflows, ui.settingsWorkflow.value || info.workflow);
    fillSelect(ui.checkpoints, info.checkpoints);  // suggestions for the settings' checkpoint field
  } catch (_) { /* shown by the health light */ }
}

async function uploadWorkflow() {
  const file = ui.workflowFile.files[0];
  if (!file) return;
  const form = new FormData();
  form.append("workflow", file, file.name);
  try {
    const result = await api("/api/workflows", { method: "POST", body: form });
    await loadComfyChoices();
    ui.workflow.value = result.name;
    showMessage(`Workflow “${result.name}” added and selected.`, "ok");
  } catch (err) {
    showMessage(capitalize(err.message), "error");
  } finally {
    ui.workflowFile.value = "";
  }
}

export function initWorkflowUpload() {
  ui.workflowFile.addEventListener("change", uploadWorkflow);
}
