// The gallery: finished pictures, newest first (failed and cancelled jobs too, when asked for);
// one opens in the result panel to run again or delete.

import { api, jsonPost } from "./api.js";
import { showError, showMessage, ui } from "./dom.js";
import { chooseTarget, loadChain, showDecision } from "./edit.js";
import { busy, jobFields, jobOptions, startJob } from "./job.js";
import { drawStages, setStage, showBar } from "./progress.js";
import { describeRender, resetResult, showImage, showNoPicture } from "./result.js";
import { hideStrip, showFailure, showStrip } from "./strip.js";
import { voiceReady } from "./voice.js";

const OUTCOMES = { error: "Failed", cancelled: "Cancelled", prompt_ready: "Prompt only" };
let openEntry = null;  // the gallery entry shown in the result panel, if any

// A job without a picture: what it was asked, how it ended, and why.
function textTile(entry) {
  const tile = document.createElement("span");
  tile.className = "tile";
  const outcome = document.createElement("strong");
  outcome.textContent = OUTCOMES[entry.stage] || entry.stage;
  const asked = document.createElement("span");
  asked.textContent = entry.prompt || entry.transcript || "";
  tile.append(outcome, asked);
  if (entry.error) {
    const why = document.createElement("span");
    why.className = "why";
    why.textContent = entry.error.message;
    tile.append(why);
  }
  return tile;
}

function thumbnail(entry) {
  const li = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.jobId = entry.job_id;
  button.dataset.stage = entry.stage;
  button.title = [entry.prompt || entry.transcript, entry.error && entry.error.message].filter(Boolean).join("\n");
  if (entry.thumb_url) {
    const img = document.createElement("img");
    img.src = entry.thumb_url;
    img.alt = entry.caption || entry.prompt || "A picture from the gallery";
    img.loading = "lazy";
    button.append(img);
    if (entry.edit_of) {  // a change of another picture: that one, small, in the corner
      const parent = document.createElement("img");
      parent.className = "parent-thumb";
      parent.src = `/outputs/${entry.edit_of}.thumb.jpg`;
      parent.alt = "Changed from";
      parent.addEventListener("error", () => parent.remove());  // that picture was deleted
      button.append(parent);
      button.title = `Changed from an earlier picture\n${button.title}`;
    }
  } else {
    button.append(textTile(entry));
  }
  button.addEventListener("click", () => showEntry(entry));
  li.append(button);
  return li;
}

export async function loadGallery() {
  try {
    const { entries } = await api(ui.galleryAll.checked ? "/api/gallery?all=1" : "/api/gallery");
    ui.galleryEmpty.hidden = entries.length > 0;
    ui.gallery.replaceChildren(...entries.map(thumbnail));
  } catch (_) { /* the gallery fills on the next successful load */ }
}

function fillFields(entry) {
  ui.transcript.value = entry.transcript || "";
  ui.prompt.value = entry.prompt || "";
  ui.negative.value = entry.negative_prompt || "";
  ui.caption.value = entry.caption || "";
}

// A gallery entry by id (a link of a chain), shown as if its thumbnail was clicked.
export async function openEntryById(jobId) {
  try {
    showEntry(await api(`/api/gallery/${jobId}`));
  } catch (err) {
    showError(err);
  }
}

function showEntry(entry) {
  if (busy()) return;
  openEntry = entry;
  resetResult();
  fillFields(entry);
  showStrip();
  setStage(entry.stage);
  ui.renderInfo.textContent = describeRender(entry.render || {});
  if (entry.decision) showDecision(entry.decision);
  if (entry.edit_of) loadChain(entry.job_id);
  drawStages(entry.timings || {});
  if (entry.image_url) {
    showBar(100);
    ui.progress.className = "progress done";
    showImage(entry.image_url, entry.render, entry.prompt);
    if (entry.audio_url) voiceReady(entry.audio_url);
  } else {
    showNoPicture();
    if (entry.error) showFailure(entry.error.message);
  }
  ui.entryActions.hidden = false;
  ui.againSame.hidden = !entry.image_url;
  ui.againNew.hidden = !(entry.prompt || entry.transcript);
  ui.againNew.textContent = entry.image_url ? "Run again (new seed)" : "Run again";
  ui.changePicture.hidden = !entry.image_url;
  showMessage(entry.image_url ? "From the gallery. Run it again, or edit the prompt and press Generate."
    : "From the gallery, without a picture. Run it again, or edit it and press Generate.", entry.image_url ? "ok" : "");
  ui.result.scrollIntoView({ behavior: "smooth", block: "start" });
}

// The entry's prompt with what its render used for every job option it recorded (the workflow,
// checkpoint, size…); the seed only when asked for the same picture, where 0 is a seed too.
// An entry that never got a prompt runs from its transcript.
function runEntryAgain(sameSeed) {
  if (!openEntry || busy()) return;
  const render = openEntry.render || {};
  const texts = openEntry.prompt
    ? { prompt: openEntry.prompt, negative_prompt: openEntry.negative_prompt || "", caption: openEntry.caption || "" }
    : { transcript: openEntry.transcript };
  const body = { ...jobOptions(), ...texts };
  for (const field of jobFields()) if (field !== "seed" && render[field]) body[field] = render[field];
  delete body.edit_of;  // an edit runs again as a change of the same parent, at its strength
  if (openEntry.edit_of) Object.assign(body, { edit_of: openEntry.edit_of, denoise: openEntry.decision.strength });
  if (openEntry.language) body.language = openEntry.language;  // its caption is read in its language
  if (sameSeed && render.seed !== undefined) body.seed = render.seed;
  else delete body.seed;
  openEntry = null;
  startJob(jsonPost(body));
}

async function deleteEntry() {
  const what = openEntry && openEntry.image_url ? "this picture and its voice" : "this entry";
  if (!openEntry || !confirm(`Delete ${what} from the gallery?`)) return;
  try {
    await api(`/api/gallery/${openEntry.job_id}`, { method: "DELETE" });
    openEntry = null;
    resetResult();
    fillFields({});  // the deleted entry's texts go with it
    ui.promptSource.hidden = true;
    ui.promptMeta.textContent = "";
    ui.transcriptMeta.textContent = "";
    ui.image.hidden = true;
    setStage("pending");
    ui.stage.textContent = "Ready";
    hideStrip();
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
  ui.changePicture.addEventListener("click", () => openEntry && chooseTarget(openEntry));
  ui.galleryAll.addEventListener("change", loadGallery);
}
