// speech2image page: records with MediaRecorder, runs jobs on the server and follows them live over /ws.
// This module only wires the parts together; each lives in its own module.

import { initWorkflowUpload, loadComfyChoices, loadModels } from "./choices.js";
import { initGallery, loadGallery } from "./gallery.js";
import { refreshHealth } from "./health.js";
import { busy, followedJob, handleEvent, initJobs, sendRecording } from "./job.js";
import { initRewrite } from "./plan.js";
import { initRecorder } from "./recorder.js";
import { connectRelay } from "./relay.js";
import { initSettings, loadSettings } from "./settings.js";
import { initSpeak } from "./voice.js";

const HEALTH_EVERY_MS = 5000;

initRecorder({ busy, onRecorded: sendRecording });
initJobs({ onJobDone: loadGallery });
initRewrite(busy);
initSpeak();
initWorkflowUpload();
initGallery();
initSettings({ afterSave: () => Promise.all([loadModels(), loadComfyChoices(), refreshHealth()]) });

connectRelay(handleEvent, followedJob);
loadGallery();
loadSettings();
loadModels();
loadComfyChoices();
refreshHealth();
setInterval(refreshHealth, HEALTH_EVERY_MS);
