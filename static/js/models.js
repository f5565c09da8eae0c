// Settings → Models: each of ComfyUI's models and LoRAs with its family, variant and the evidence for
// them; changing a family or variant tells the server what the file is (null: detect it again).

import { api, jsonPost } from "./api.js";
import { capitalize, ui } from "./dom.js";

let families = [];
let variants = [];

function select(options, value, label) {
  const list = document.createElement("select");
  list.setAttribute("aria-label", label);
  list.replaceChildren(...options.map(([v, text]) => new Option(text, v)));
  list.value = value || "";
  return list;
}

function cell(content) {
  const td = document.createElement("td");
  td.append(content);
  return td;
}

function row(model, afterChange) {
  const tr = document.createElement("tr");
  const family = select(families.map((f) => [f.name, f.label]), model.family, `Family of ${model.name}`);
  const variant = select([["", "—"], ...variants.map((v) => [v.name, v.label])], model.variant, `Variant of ${model.name}`);
  const evidence = document.createElement("span");
  evidence.textContent = model.evidence + (model.triggers && model.triggers.length ? ` · words: ${model.triggers.join(", ")}` : "");
  const tell = (change) => correct({ name: model.name, family: family.value, variant: variant.value || null, ...change },
    afterChange);
  family.addEventListener("change", () => tell({}));
  variant.addEventListener("change", () => tell({}));
  const cells = [cell(model.name), cell(model.folder), cell(family), cell(variant), cell(evidence)];
  if (model.source === "choice") {
    const forget = Object.assign(document.createElement("button"), { type: "button", className: "link",
      textContent: "Detect again" });
    forget.addEventListener("click", () => tell({ family: null, variant: null }));
    cells[4].append(" ", forget);
  }
  tr.append(...cells);
  return tr;
}

async function correct(body, afterChange) {
  ui.modelsStatus.textContent = "Saving…";
  try {
    const answer = await api("/api/models", jsonPost(body));
    await Promise.all([loadModelsPanel(afterChange), afterChange()]);  // the rows show it before it is said
    ui.modelsStatus.textContent = body.family ? `${answer.name} is drawn as ${answer.label || body.family} from now on.`
      : `${answer.name} is detected again.`;
  } catch (err) {
    ui.modelsStatus.textContent = capitalize(err.message) + ".";
  }
}

export async function loadModelsPanel(afterChange) {
  try {
    const answer = await api("/api/models");
    ({ families, variants } = answer);
    const all = [...answer.models, ...answer.loras];
    ui.modelsRows.replaceChildren(...all.map((model) => row(model, afterChange)));
    if (!answer.reachable) ui.modelsStatus.textContent = capitalize(answer.error || "ComfyUI is not answering") + ".";
    else if (!all.length) ui.modelsStatus.textContent = "ComfyUI has no models: put one in ComfyUI/models/checkpoints.";
  } catch (err) {
    ui.modelsStatus.textContent = capitalize(err.message) + ".";
  }
}

// afterChange(): what follows a correction (the render box's choices and what its empty fields mean).
export function initModelsPanel({ afterChange }) {
  ui.modelsPanel.addEventListener("toggle", () => {
    if (ui.modelsPanel.open) loadModelsPanel(afterChange);
  });
}
