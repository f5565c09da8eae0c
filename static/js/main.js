// speech2image page: records with MediaRecorder, runs jobs on the server and follows them live over /ws.
// This module only wires the parts together; each lives in its own module.

import { initBanners } from "./banners.js";
import { MissingElement } from "./dom.js";
import { initWorkflowUpload, loadComfyChoices, loadModels, loadSpeechChoices } from "./choices.js";
import { initEdits } from "./edit.js";
import { initGallery, loadGallery, openEntryById } from "./gallery.js";
import { initHealth, refreshHealth } from "./health.js";
import { initLanguage } from "./language.js";
import { busy, followedJob, handleEvent, initJobs, jobOptions, restartAs, sendRecording } from "./job.js";
import { initLoras } from "./loras.js";
import { initModelsPanel } from "./models.js";
import { initOverrides, loadEffective } from "./overrides.js";
import { initRewrite } from "./plan.js";
import { initRecorder } from "./recorder.js";
import { connectRelay } from "./relay.js";
import { initSettings, loadSettings } from "./settings.js";
import { initStrip } from "./strip.js";
import { initTyped } from "./typed.js";
import { initSpeak } from "./voice.js";

const HEALTH_EVERY_MS = 5000;

// The render box's choices and what its empty fields mean follow ComfyUI's answer and the settings.
const loadRenderChoices = async () => loadEffective(await loadComfyChoices());

// Every part wires itself to its elements now: a missing one (a template and scripts that disagree)
// stops the page at once with its name, instead of a button that silently does nothing.
try {
  initRecorder({ busy, onRecorded: sendRecording, jobOptions });
  initJobs({ onJobDone: loadGallery });
  initStrip();
  initTyped();
  initLanguage();
  initRewrite(busy);
  initSpeak();
  initOverrides();
  initWorkflowUpload({ afterUpload: loadEffective });
  initGallery();
  initEdits({ restart: restartAs, open: openEntryById });
  initHealth();
  initBanners();
  initSettings({ afterSave: () => Promise.all([loadModels(), loadRenderChoices(), loadSpeechChoices(), refreshHealth()]) });
  initLoras();
  initModelsPanel({ afterChange: loadRenderChoices });
} catch (err) {
  if (!(err instanceof MissingElement)) throw err;
  document.body.prepend(Object.assign(document.createElement("p"), { className: "message error", textContent:
    `This page cannot start: ${err.message}. Reload it; if that does not help, reinstall speech2image.` }));
  throw err;
}

connectRelay(handleEvent, followedJob);
loadGallery();
loadSettings();
loadModels();
loadRenderChoices();
loadSpeechChoices();
refreshHealth();
setInterval(refreshHealth, HEALTH_EVERY_MS);
