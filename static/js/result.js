// The result panel: the picture, what it was rendered with, and clearing it all for the next job.

import { ui } from "./dom.js";
import { resetProgress } from "./progress.js";
import { pictureShown, resetVoice } from "./voice.js";

export function resetResult() {
  resetProgress();
  ui.entryActions.hidden = true;
  ui.notes.textContent = "";
  ui.renderInfo.textContent = "";
  ui.preview.hidden = true;
  ui.download.hidden = true;
  resetVoice();
}

function fitCanvas(render) {
  if (render && render.width && render.height) ui.canvas.style.aspectRatio = `${render.width} / ${render.height}`;
}

export function showImage(url, render) {
  fitCanvas(render);
  ui.image.onload = () => {
    ui.preview.hidden = true;
    pictureShown();
  };
  ui.image.src = url;
  ui.image.alt = ui.caption.value || "The generated picture";
  ui.image.hidden = false;
  ui.download.href = url;
  ui.download.hidden = false;
}

export function describeRender(render) {
  const parts = [];
  if (render.checkpoint) parts.push(render.checkpoint);
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
  if (notes.length) ui.notes.textContent = notes.join(" ");
}
