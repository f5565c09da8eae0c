// The result panel: the picture, what it was rendered with, and clearing it all for the next job.

import { ui } from "./dom.js";
import { resetDecision } from "./edit.js";
import { addNotes, resetNotes } from "./notes.js";
import { resetProgress } from "./progress.js";
import { hideFailure } from "./strip.js";
import { resetVoice, resultShown } from "./voice.js";

export function resetResult() {
  resetProgress();
  hideFailure();
  resetNotes();
  resetDecision();
  ui.entryActions.hidden = true;
  ui.renderInfo.textContent = "";
  ui.canvas.hidden = false;
  ui.preview.hidden = true;
  ui.preview.alt = "Live preview";  // a sketch's words are not the job's preview
  ui.download.hidden = true;
  resetVoice();
}

// A job that ended without a picture: no empty box where it would have been.
export function showNoPicture() {
  ui.preview.hidden = true;
  ui.image.hidden = true;
  ui.canvas.hidden = true;
}

function fitCanvas(render) {
  if (render && render.width && render.height) ui.canvas.style.aspectRatio = `${render.width} / ${render.height}`;
}

// "red-fox-in-snow-1a2b3c.png": the first words of the prompt's subject (before any comma) and a
// short id, rather than a hex id.
export function downloadName(prompt, url) {
  const id = (String(url).match(/\/([0-9a-f]{6})[0-9a-f]*\.png$/) || [])[1] || "";
  const words = String(prompt || "").split(/[,.;:(]/)[0].toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
    .split(/[^a-z0-9]+/).filter(Boolean).slice(0, 6).join("-").slice(0, 48).replace(/-+$/, "");
  return [words || "speech2image", id].filter(Boolean).join("-") + ".png";
}

// prompt: the picture's prompt, which names the downloaded file.
export function showImage(url, render, prompt) {
  ui.canvas.hidden = false;
  fitCanvas(render);
  ui.image.onload = () => {
    ui.preview.hidden = true;
    resultShown();
  };
  ui.image.src = url;
  ui.image.alt = ui.caption.value || "The generated picture";
  ui.image.hidden = false;
  ui.download.href = url;
  ui.download.download = downloadName(prompt, url);
  ui.download.hidden = false;
}

export function describeRender(render) {
  const parts = [];
  if (render.checkpoint) parts.push(render.model_kind ? `${render.checkpoint} (${render.model_kind})` : render.checkpoint);
  if (render.width) parts.push(`${render.width}×${render.height}`);
  if (render.sampler) parts.push(render.sampler);
  if (render.steps) parts.push(`${render.steps} steps`);
  if (render.seed !== undefined) parts.push(`seed ${render.seed}`);
  return parts.join(" · ");
}

// What ComfyUI was asked for (the "render" event) or used (the "image" event), and the server's notes.
export function showRender(render, notes) {
  ui.renderInfo.textContent = describeRender(render);
  fitCanvas(render);
  addNotes(notes);
}
