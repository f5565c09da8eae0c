// The job this tab follows: starting it (recorded, typed, or from the edited prompt), cancelling
// it, and showing its events as the relay brings them.

import { SESSION_ID, api, jsonPost } from "./api.js";
import { capitalize, showError, showMessage, ui } from "./dom.js";
import { PromptStream, showPlan } from "./plan.js";
import { FINISHED, drawStages, fillBar, setProgress, setStage } from "./progress.js";
import { resetResult, showImage, showRender } from "./result.js";
import { voiceKnown, voiceReady } from "./voice.js";

// phase: "idle", "starting" (POST /api/jobs sent, no id yet) or "running" (id known).
// earlyEvents: the relay's events that beat the answer to POST /api/jobs, replayed once it comes.
// prompt: the tokens of the prompt the LLM is writing for this job.
const job = { phase: "idle", id: null, earlyEvents: [], prompt: new PromptStream() };
let onDone = () => {};

export function busy() {
  return job.phase !== "idle";
}

export function followedJob() {
  return job.id;
}

function setBusy(on) {
  ui.record.disabled = on;
  ui.generate.disabled = on;
  ui.rewrite.disabled = on;
  ui.cancel.hidden = !on;
  ui.cancel.disabled = false;
}

function follow(id) {
  Object.assign(job, { phase: "running", id, prompt: new PromptStream() });
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
  const options = { session: SESSION_ID };
  for (const control of jobControls()) {
    if (control.value !== "") options[control.dataset.job] = control.value;
  }
  return options;
}

export async function startJob(fetchOptions) {
  resetResult();
  setBusy(true);
  Object.assign(job, { phase: "starting", id: null, earlyEvents: [] });
  try {
    const snapshot = await api("/api/jobs", fetchOptions);
    follow(snapshot.job_id);
    applySnapshot(snapshot);
    for (const event of job.earlyEvents.splice(0)) handleEvent(event);
  } catch (err) {
    stopFollowing();
    setBusy(false);
    showError(err);
  }
}

export function sendRecording(blob, fileName, seconds) {
  const form = new FormData();
  form.append("audio", blob, fileName);
  for (const [name, value] of Object.entries(jobOptions())) form.append(name, value);
  ui.transcript.value = "";
  ui.prompt.value = "";
  showMessage(`Uploading ${seconds.toFixed(1)} s of audio…`, "busy");
  return startJob({ method: "POST", body: form });
}

// Generate: the edited prompt as it stands, or else the transcript for the LLM to write one.
function generate() {
  const prompt = ui.prompt.value.trim();
  const transcript = ui.transcript.value.trim();
  if (!prompt && !transcript) {
    showMessage("Record or type a request first.", "error");
    return;
  }
  const body = { ...jobOptions() };
  if (prompt) Object.assign(body, { prompt, negative_prompt: ui.negative.value, caption: ui.caption.value });
  else body.transcript = transcript;
  startJob(jsonPost(body));
}

function sendTyped(event) {
  event.preventDefault();
  const text = ui.typed.value.trim();
  if (!text || busy()) return;
  ui.transcript.value = text;
  ui.prompt.value = "";
  startJob(jsonPost({ ...jobOptions(), transcript: text }));
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

function finish(snapshot) {
  stopFollowing();
  setBusy(false);
  const stage = snapshot.stage;
  setStage(stage);
  drawStages(snapshot.timings || {});
  if (stage === "done") {
    fillBar();
    ui.progress.className = "progress done";
    const total = snapshot.timings.total;
    ui.step.textContent = total ? `${total.toFixed(1)} s` : "";
    showMessage("Done. Edit the prompt and press Generate to try again.", "ok");
    onDone();
  } else if (stage === "prompt_ready") {
    // No ComfyUI to render: the prompt and the caption are the result; the note says how to start it.
    ui.preview.hidden = true;
    showMessage("Prompt ready — there is no ComfyUI to render it. Start ComfyUI and press Generate.", "busy");
    onDone();
  } else if (stage === "error") {
    ui.progress.className = "progress failed";
    ui.preview.hidden = true;
    showMessage(capitalize(snapshot.error.message) + (snapshot.error.message.endsWith(".") ? "" : "."), "error");
  } else {
    ui.preview.hidden = true;
    showMessage("Cancelled.", "");
  }
  if (snapshot.notes && snapshot.notes.length) ui.notes.textContent = snapshot.notes.join(" ");
}

// The job as it stands, from the answer to POST /api/jobs or the relay's "resume" after a reconnect.
function applySnapshot(snapshot) {
  setStage(snapshot.stage, { position: snapshot.queue_position });
  if (snapshot.transcript) ui.transcript.value = snapshot.transcript;
  if (snapshot.prompt) {
    ui.prompt.value = snapshot.prompt;
    ui.negative.value = snapshot.negative_prompt || "";
    ui.caption.value = snapshot.caption || "";
  }
  setProgress(snapshot.percent || 0);
  if (snapshot.audio_url && !voiceKnown()) voiceReady(snapshot.audio_url);
  if (snapshot.image_url) showImage(snapshot.image_url, snapshot.render);
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
  },
  token: (event) => job.prompt.add(event.text),
  prompt: (event) => showPlan(event.plan),
  render(event) {
    showRender(event.render, event.notes);
    ui.image.hidden = true;
  },
  node(event) {
    ui.step.textContent = event.title || event.class_type || `node ${event.node}`;
    setProgress(event.percent);
  },
  cached: (event) => setProgress(event.percent),
  progress(event) {
    setProgress(event.percent);
    if (event.value !== undefined) ui.step.textContent = `step ${event.value}/${event.max}`;
  },
  preview(event) {
    ui.preview.src = event.url;
    ui.preview.hidden = false;
  },
  audio: (event) => voiceReady(event.url),
  audio_error(event) {
    ui.notes.textContent = event.message;
  },
  image(event) {
    showImage(event.url, event.render);
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
