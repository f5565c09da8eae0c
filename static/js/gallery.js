// The gallery: finished pictures, newest first; one opens in the result panel to run again or delete.

import { api, jsonPost } from "./api.js";
import { showError, showMessage, ui } from "./dom.js";
import { busy, jobFields, jobOptions, startJob } from "./job.js";
import { drawStages, setStage, showBar } from "./progress.js";
import { describeRender, resetResult, showImage } from "./result.js";
import { voiceReady } from "./voice.js";

let openEntry = null;  // the gallery entry shown in the result panel, if any

function thumbnail(entry) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.jobId = entry.job_id;
  button.title = entry.prompt || "";
  const img = document.createElement("img");
  img.src = entry.thumb_url;
  img.alt = entry.caption || entry.prompt || "A picture from the gallery";
  img.loading = "lazy";
  button.append(img);
  button.addEventListener("click", () => showEntry(entry));
  li.append(button);
  return li;
}

export async function loadGallery() {
  try {
    const { entries } = await api("/api/gallery");
    ui.galleryEmpty.hidden = entries.length > 0;
    ui.gallery.replaceChildren(...entries.map(thumbnail));
  } catch (_) { /* the gallery fills on the next successful load */ }
}

function showEntry(entry) {
  if (busy()) return;
  openEntry = entry;
  resetResult();
  ui.transcript.value = entry.transcript || "";
  ui.prompt.value = entry.prompt || "";
  ui.negative.value = entry.negative_prompt || "";
  ui.caption.value = entry.caption || "";
  setStage("done");
  showBar(100);
  ui.progress.className = "progress done";
  ui.renderInfo.textContent = describeRender(entry.render || {});
  drawStages(entry.timings || {});
  showImage(entry.image_url, entry.render);
  if (entry.audio_url) voiceReady(entry.audio_url);
  ui.entryActions.hidden = false;
  showMessage("From the gallery. Run it again, or edit the prompt and press Generate.", "ok");
  ui.stage.scrollIntoView({ behavior: "smooth", block: "start" });
}

// The entry's prompt with what its render used for every job option it recorded (the workflow,
// checkpoint, size…); the seed only when asked for the same picture, where 0 is a seed too.
function runEntryAgain(sameSeed) {
  if (!openEntry || busy()) return;
  const render = openEntry.render || {};
  const body = { ...jobOptions(), prompt: openEntry.prompt, negative_prompt: openEntry.negative_prompt || "",
    caption: openEntry.caption || "" };
  for (const field of jobFields()) if (field !== "seed" && render[field]) body[field] = render[field];
  if (sameSeed && render.seed !== undefined) body.seed = render.seed;
  else delete body.seed;
  openEntry = null;
  startJob(jsonPost(body));
}

async function deleteEntry() {
  if (!openEntry || !confirm("Delete this picture and its voice from the gallery?")) return;
  try {
    await api(`/api/gallery/${openEntry.job_id}`, { method: "DELETE" });
    openEntry = null;
    resetResult();
    ui.image.hidden = true;
    setStage("pending");
    ui.stage.textContent = "Ready";
    showMessage("Deleted.", "");
    loadGallery();
  } catch (err) {
    showError(err);
  }
}

export function initGallery() {
  ui.againSame.addEventListener("click", () => runEntryAgain(true));
  ui.againNew.addEventListener("click", () => runEntryAgain(false));
  ui.deleteEntry.addEventListener("click", deleteEntry);
}
