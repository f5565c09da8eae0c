// The job this tab follows: starting it (recorded, typed, or from the edited prompt), cancelling
// it, and showing its events as the relay brings them.

import { SESSION_ID, api, jsonPost } from "./api.js";
import { showError, showMessage, ui } from "./dom.js";
import { editOptions, jobAccepted, loadChain, showDecision } from "./edit.js";
import { draftShown, forgetDraft, onEarly } from "./draft.js";
import { addNotes } from "./notes.js";
import { PromptStream, showPlan } from "./plan.js";
import { FINISHED, drawStages, fillBar, setProgress, setStage, timingsThatRan } from "./progress.js";
import { resetResult, showImage, showNoPicture, showRender } from "./result.js";
import { quietComfyBanner } from "./banners.js";
import { whenComfyReady } from "./health.js";
import { clearStep, hideFailure, hideStrip, showCancelling, showFailure, showProgressStep, showStep, showStrip,
  showWaiting, waitingToRender } from "./strip.js";
import { typedSent } from "./typed.js";
import { forgetHeard, showHeard } from "./language.js";
import { resultShown, voiceKnown, voiceReady } from "./voice.js";

// phase: "idle", "starting" (POST /api/jobs sent, no id yet) or "running" (id known).
// earlyEvents: the relay's events that beat the answer to POST /api/jobs, replayed once it comes.
// prompt: the tokens of the prompt the LLM is writing for this job; plan: the prompt it renders.
const job = { phase: "idle", id: null, earlyEvents: [], prompt: new PromptStream(), plan: null };
let onDone = () => {};

export function busy() {
  return job.phase !== "idle";
}

export function followedJob() {
  return job.id;
}

function setBusy(on) {
  if (on) showStrip();
  ui.record.disabled = on;
  ui.generate.disabled = on;
  ui.rewrite.disabled = on;
  ui.cancel.hidden = !on;
  ui.cancel.disabled = false;
}

function follow(id) {
  Object.assign(job, { phase: "running", id, prompt: new PromptStream(), plan: null });
}

function stopFollowing() {
  Object.assign(job, { phase: "idle", id: null });
}

// The job's options are the controls marked data-job="<field of POST /api/jobs>"; an empty one
// leaves the server's default. A new knob in the template needs nothing here.
function jobControls() {
  return document.querySelectorAll("[data-job]");
}

export function jobFields() {
  return [...jobControls()].map((control) => control.dataset.job);
}

export function jobOptions() {
  const options = { session: SESSION_ID, ...editOptions() };
  for (const control of jobControls()) {
    if (control.value !== "") options[control.dataset.job] = control.value;
  }
  return options;
}

export function startJob(fetchOptions) {
  return followStart(api("/api/jobs", fetchOptions));
}

// answer: the promise of the started job's snapshot (from POST /api/jobs or the live stream).
// A draft in view (drawn at the pause) stays while the answer comes: the job may be that draft.
async function followStart(answer) {
  const drafted = draftShown();
  if (!drafted) resetResult();
  showMessage("");  // the last job's "Done." is not this one's; the strip shows the stage
  setBusy(true);
  if (!drafted) setStage("pending");
  Object.assign(job, { phase: "starting", id: null, earlyEvents: [] });
  try {
    const snapshot = await answer;
    forgetDraft();
    if (drafted && snapshot.job_id !== drafted) resetResult();  // not the draft: the job starts afresh
    jobAccepted();
    follow(snapshot.job_id);
    applySnapshot(snapshot);
    for (const event of job.earlyEvents.splice(0)) handleEvent(event);
  } catch (err) {
    forgetDraft();
    stopFollowing();
    setBusy(false);
    hideStrip();  // no job to follow; the message says why
    showError(err);
  }
}

// liveAnswer: the job the live transcript started, or null (no live stream): upload the blob.
// options: the job's fields as sent to the live stream (the same request_id).
export function sendRecording(blob, fileName, seconds, liveAnswer = Promise.resolve(null), options = jobOptions()) {
  const form = new FormData();
  form.append("audio", blob, fileName);
  for (const [name, value] of Object.entries(options)) form.append(name, value);
  ui.prompt.value = "";
  showMessage("");
  return followStart(liveAnswer.then((snapshot) => {
    if (!snapshot) forgetHeard();
    if (snapshot) return snapshot;
    ui.transcript.value = "";
    showMessage(`Uploading ${seconds.toFixed(1)} s of audio…`, "busy");
    return api("/api/jobs", { method: "POST", body: form });
  }));
}

// Generate: the edited prompt as it stands, or else the transcript for the LLM to write one.
function generate() {
  const prompt = ui.prompt.value.trim();
  const transcript = ui.transcript.value.trim();
  if (!prompt && !transcript) {
    showMessage("Record or type a request first.", "error");
    return;
  }
  const body = { ...jobOptions(), ...editOptions(true) };
  if (prompt) Object.assign(body, { prompt, negative_prompt: ui.negative.value, caption: ui.caption.value });
  else body.transcript = transcript;
  startJob(jsonPost(body));
}

function sendTyped(event) {
  event.preventDefault();
  const text = ui.typed.value.trim();
  if (!text || busy()) return;
  ui.transcript.value = text;
  ui.transcriptMeta.textContent = "";  // it spoke of the last recording
  forgetHeard();
  ui.prompt.value = "";
  typedSent(text);
  startJob(jsonPost({ ...jobOptions(), transcript: text }));
}

// The page's switch: the request in view again as a new picture or as a change (``fields``); the job
// still running for it is cancelled.
export function restartAs(fields) {
  if (job.phase === "running") api(`/api/jobs/${job.id}/cancel`, { method: "POST" }).catch(() => {});
  stopFollowing();
  const body = { ...jobOptions(), ...fields };
  if (fields.mode === "new") delete body.edit_of;
  const prompt = ui.prompt.value.trim();
  if (prompt) Object.assign(body, { prompt, negative_prompt: ui.negative.value, caption: ui.caption.value });
  else body.transcript = ui.transcript.value.trim();
  startJob(jsonPost(body));
}

async function cancel() {
  if (job.phase !== "running") return;
  ui.cancel.disabled = true;
  try {
    await api(`/api/jobs/${job.id}/cancel`, { method: "POST" });
    showMessage("Cancelling…", "busy");
  } catch (err) {
    showError(err);
  }
}

// The same request again, as the finished job had it: its prompt, else its transcript
// (a recording is not kept once transcribed); null when there is nothing to run.
function againRequest(snapshot) {
  const change = snapshot.edit_of ? { edit_of: snapshot.edit_of, denoise: snapshot.decision.strength } : {};
  if (snapshot.language) change.language = snapshot.language;  // the caption is read in its language
  if (snapshot.prompt) {
    return { prompt: snapshot.prompt, negative_prompt: snapshot.negative_prompt || "", caption: snapshot.caption || "",
      ...change };
  }
  return snapshot.transcript ? { transcript: snapshot.transcript, ...change } : null;
}

function finish(snapshot) {
  stopFollowing();
  setBusy(false);
  const stage = snapshot.stage;
  setStage(stage);
  drawStages(timingsThatRan(snapshot));
  if (stage === "done") {
    fillBar();
    ui.progress.className = "progress done";
    const total = snapshot.timings.total;
    showStep(total ? `${total.toFixed(1)} s` : "");
    showMessage("Done. Edit the prompt and press Generate to try again.", "ok");
    if (snapshot.edit_of) loadChain(snapshot.job_id);
    onDone();
  } else {
    clearStep();
    showNoPicture();
  }
  let notes = snapshot.notes;
  if (stage === "prompt_ready") {
    // No ComfyUI to render: the prompt and the caption are the result. Said once, in the strip (its note says
    // why and how to start ComfyUI), with one click to render it by itself when ComfyUI answers again.
    const waiting = notes.find((note) => note.startsWith("Prompt ready;")) || "Prompt ready; there is no ComfyUI.";
    notes = notes.filter((note) => note !== waiting);
    ui.progress.className = "progress waiting";
    showMessage("");
    quietComfyBanner();
    const again = againRequest(snapshot);
    showWaiting(waiting, again && (() => renderWhenBack(again)));
    resultShown();  // the caption plays: it is part of the result
    onDone();
  } else if (stage === "error") {
    ui.progress.className = "progress failed";
    showMessage("");  // the strip says it, in view
    const again = againRequest(snapshot);
    showFailure(snapshot.error.message, again && (() => startJob(jsonPost({ ...jobOptions(), ...again }))));
  } else if (stage === "cancelled") {
    ui.progress.className = "progress stopped";
    showMessage("Cancelled.", "");
  }
  addNotes(notes);
}

function renderWhenBack(again) {
  waitingToRender();
  whenComfyReady(() => {
    hideFailure();
    startJob(jsonPost({ ...jobOptions(), ...again }));
  });
}

// The job as it stands, from the answer to POST /api/jobs or the relay's "resume" after a reconnect.
function applySnapshot(snapshot) {
  setStage(snapshot.stage, { position: snapshot.queue_position });
  if (snapshot.transcript) ui.transcript.value = snapshot.transcript;
  showHeard(snapshot);
  if (snapshot.prompt) {
    job.plan = snapshot.prompt;
    ui.prompt.value = snapshot.prompt;
    ui.negative.value = snapshot.negative_prompt || "";
    ui.caption.value = snapshot.caption || "";
  }
  setProgress(snapshot.percent || 0);
  if (snapshot.decision) showDecision(snapshot.decision);
  if (snapshot.audio_url && !voiceKnown()) voiceReady(snapshot.audio_url);
  if (snapshot.image_url) showImage(snapshot.image_url, snapshot.render, snapshot.prompt);
  if (FINISHED.has(snapshot.stage)) finish(snapshot);
}

function onStage(event) {
  setStage(event.stage, event);
  if (event.stage === "transcribing") showMessage("Transcribing…", "busy");
  else if (/^(Uploading|Transcribing)/.test(ui.message.textContent)) showMessage("");  // the stage label takes over
  if (event.stage === "writing_prompt") {
    ui.prompt.value = "";
    job.prompt = new PromptStream();
  }
  if (event.snapshot && FINISHED.has(event.stage)) finish(event.snapshot);
}

// One handler per relay event type of the followed job; other types are ignored.
const HANDLERS = new Map(Object.entries({
  stage: onStage,
  transcript(event) {
    ui.transcript.value = event.text;
    ui.transcriptMeta.textContent = `${event.duration_s.toFixed(1)} s of speech transcribed in ${event.elapsed_s.toFixed(2)} s`;
    showHeard(event);
  },
  token: (event) => job.prompt.add(event.text),
  prompt(event) {
    job.plan = event.plan.prompt;
    showPlan(event.plan);
  },
  decision: (event) => showDecision(event.decision),
  render(event) {
    showRender(event.render, event.notes);
    ui.image.hidden = true;
  },
  node(event) {
    showStep(event.phase);  // "loading the model", "encoding the prompt"… (then the sampler's step n/N)
    setProgress(event.percent);
  },
  cached: (event) => setProgress(event.percent),
  waiting(event) {
    ui.step.textContent = event.text;  // e.g. "Starting ComfyUI…"
  },
  progress(event) {
    setProgress(event.percent);
    showProgressStep(event);
  },
  preview(event) {
    ui.preview.src = event.url;
    ui.preview.hidden = false;
  },
  cancelling: () => showCancelling(),
  audio: (event) => voiceReady(event.url, event),
  audio_error: (event) => addNotes([event.message]),
  image(event) {
    showImage(event.url, event.render, job.plan);
    showRender(event.render, event.notes);
  },
}));

// "resume": after a reconnect, the server names the job this tab still has running.
function resume(event) {
  follow(event.job_id);
  resetResult();
  setBusy(true);
  applySnapshot(event.snapshot);
}

export function handleEvent(event) {
  if (event.type === "resume") {
    resume(event);
  } else if (event.type === "draft" || event.type === "sketch") {
    // recording, or Stop pressed and the job not yet known
    if (job.phase !== "running") onEarly(event, { starting: job.phase === "starting" });
  } else if (job.phase === "starting" && event.job_id) {
    job.earlyEvents.push(event);
  } else if (event.job_id && event.job_id === job.id && HANDLERS.has(event.type)) {
    HANDLERS.get(event.type)(event);
  }
}

// onJobDone(): a picture was saved (the gallery has a new entry).
export function initJobs({ onJobDone }) {
  onDone = onJobDone;
  ui.generate.addEventListener("click", generate);
  ui.typedForm.addEventListener("submit", sendTyped);
  ui.cancel.addEventListener("click", cancel);
}
