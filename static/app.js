// speech2image page: records with MediaRecorder, runs jobs on the server and follows them live over /ws.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = Object.fromEntries([
  "record", "record-label", "timer", "meter", "meter-fill", "message", "transcript", "transcript-meta",
  "preset", "model", "rewrite", "prompt", "prompt-source", "negative", "caption", "prompt-meta",
  "workflow", "workflow-file", "checkpoint", "steps", "width", "height", "seed", "generate", "cancel",
  "stage", "step", "progress", "progress-fill", "canvas", "preview", "image", "render-info", "notes", "download",
  "speak", "tts-engine", "spoken-caption", "voice", "typed-form", "typed", "auto-stop", "stages",
  "entry-actions", "again-same", "again-new", "delete-entry", "gallery", "gallery-empty", "settings-form",
  "settings-status", "settings-workflow", "llm-models", "checkpoints",
].map((id) => [id.replace(/-(\w)/g, (_, c) => c.toUpperCase()), $(id)]));

// One id per browser tab: its jobs' events come only to it, and follow-ups edit its own last prompt.
const SESSION_ID = sessionStorage.getItem("s2i-session") || (() => {
  const id = crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now();
  sessionStorage.setItem("s2i-session", id);
  return id;
})();

const STAGE_LABELS = {
  pending: "Starting…", transcribing: "Transcribing…", writing_prompt: "Writing the prompt…",
  submitting: "Sending to ComfyUI…", queued: "Queued", rendering: "Rendering…", saving: "Saving…",
  done: "Done", error: "Failed", cancelled: "Cancelled",
};
const FINISHED = new Set(["done", "error", "cancelled"]);

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function showMessage(text, kind = "") {
  ui.message.textContent = text;
  ui.message.className = "message " + kind;
  ui.message.hidden = !text;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (_) { /* handled below */ }
  if (!response.ok) {
    const error = body && body.error ? body.error : { message: `the server answered ${response.status}` };
    throw Object.assign(new Error(error.message), { code: error.code });
  }
  return body;
}

// --- recording -------------------------------------------------------------------

const SPEECH_LEVEL = 25;
const AUTO_STOP_SILENCE_MS = 1500;
ui.autoStop.checked = localStorage.getItem("s2i-auto-stop") === "1";
ui.autoStop.addEventListener("change", () => localStorage.setItem("s2i-auto-stop", ui.autoStop.checked ? "1" : "0"));

const MIME_CANDIDATES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/ogg", "audio/mp4"];
const EXTENSIONS = { "audio/webm": "webm", "audio/ogg": "ogg", "audio/mp4": "m4a" };

function pickMimeType() {
  if (typeof MediaRecorder === "undefined") return null;
  return MIME_CANDIDATES.find((type) => MediaRecorder.isTypeSupported(type)) || "";
}

function microphoneProblem(err) {
  switch (err && err.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was denied. Allow the microphone for this site (the icon in the address bar) and try again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Plug one in (or type your request) and try again.";
    case "NotReadableError":
      return "The microphone is busy or failed to start. Close other apps using it and try again.";
    default:
      return "Could not start the microphone: " + ((err && err.message) || err);
  }
}

class Recorder {
  constructor(onStop) {
    this.onStop = onStop;
    this.active = false;
  }

  async start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw Object.assign(new Error("this browser cannot record audio here (use http://localhost or HTTPS)"), { name: "SecurityError" });
    }
    const mimeType = pickMimeType();
    if (mimeType === null) throw new Error("this browser has no MediaRecorder");
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    this.chunks = [];
    this.heardSpeech = false;
    this.quietSince = null;
    this.recorder = new MediaRecorder(this.stream, mimeType ? { mimeType } : undefined);
    this.recorder.ondataavailable = (event) => { if (event.data && event.data.size) this.chunks.push(event.data); };
    this.recorder.onstop = () => this.finish();
    this.recorder.start(250);
    this.startedAt = performance.now();
    this.active = true;
    this.watchLevel();
    this.tick = setInterval(() => this.showTime(), 200);
    this.showTime();
  }

  stop() {
    if (!this.active) return;
    this.active = false;
    this.recorder.stop();
  }

  finish() {
    clearInterval(this.tick);
    cancelAnimationFrame(this.frame);
    if (this.audioContext) this.audioContext.close();
    this.stream.getTracks().forEach((track) => track.stop());
    ui.meterFill.style.width = "0%";
    ui.meter.setAttribute("aria-valuenow", "0");
    const type = this.recorder.mimeType || (this.chunks[0] && this.chunks[0].type) || "audio/webm";
    this.onStop(new Blob(this.chunks, { type }), (performance.now() - this.startedAt) / 1000);
  }

  // Optional auto-stop: once the person has spoken, ~1.5 s of quiet ends the recording.
  checkSilence(level) {
    if (!ui.autoStop.checked || !this.active) return;
    const now = performance.now();
    if (level > SPEECH_LEVEL) {
      this.heardSpeech = true;
      this.quietSince = null;
    } else if (this.heardSpeech) {
      this.quietSince = this.quietSince || now;
      if (now - this.quietSince > AUTO_STOP_SILENCE_MS) this.stop();
    }
  }

  showTime() {
    const seconds = Math.floor((performance.now() - this.startedAt) / 1000);
    ui.timer.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  }

  watchLevel() {
    try {
      this.audioContext = new AudioContext();
      const analyser = this.audioContext.createAnalyser();
      analyser.fftSize = 1024;
      this.audioContext.createMediaStreamSource(this.stream).connect(analyser);
      const samples = new Float32Array(analyser.fftSize);
      const draw = () => {
        analyser.getFloatTimeDomainData(samples);
        let sum = 0;
        for (const s of samples) sum += s * s;
        const level = Math.min(100, Math.round(Math.sqrt(Math.sqrt(sum / samples.length)) * 160));
        ui.meterFill.style.width = level + "%";
        ui.meter.setAttribute("aria-valuenow", String(level));
        this.checkSilence(level);
        this.frame = requestAnimationFrame(draw);
      };
      draw();
    } catch (err) {
      console.warn("level meter unavailable", err);
    }
  }
}

function setRecordingUi(on) {
  ui.record.classList.toggle("recording", on);
  ui.record.setAttribute("aria-pressed", String(on));
  ui.recordLabel.textContent = on ? "Stop" : "Record";
}

const recorder = new Recorder(async (blob, seconds) => {
  setRecordingUi(false);
  const form = new FormData();
  form.append("audio", blob, `recording.${EXTENSIONS[blob.type.split(";")[0]] || "webm"}`);
  for (const [name, value] of Object.entries(jobOptions())) form.append(name, value);
  ui.transcript.value = "";
  ui.prompt.value = "";
  showMessage(`Uploading ${seconds.toFixed(1)} s of audio…`, "busy");
  await startJob({ method: "POST", body: form });
});

async function toggleRecording() {
  if (busy()) return;
  if (recorder.active) {
    recorder.stop();
    return;
  }
  try {
    await recorder.start();
    setRecordingUi(true);
    showMessage("Listening… click Stop (or press Space) when you are done.", "busy");
  } catch (err) {
    setRecordingUi(false);
    showMessage(microphoneProblem(err), "error");
  }
}

ui.record.addEventListener("click", toggleRecording);
document.addEventListener("keydown", (event) => {
  // Text fields keep their spaces; a focused button already clicks itself on Space.
  const ownsSpace = event.target.closest("textarea, input, select, button, [contenteditable]");
  if (event.code !== "Space" || ownsSpace || event.repeat) return;
  event.preventDefault();
  toggleRecording();
});

// --- jobs and the live relay ---------------------------------------------------------

let currentJob = null;
let streamedPrompt = "";
let earlyEvents = [];  // events that beat the answer to POST /api/jobs

function busy() {
  return currentJob !== null;
}

function setBusy(on) {
  ui.record.disabled = on;
  ui.generate.disabled = on;
  ui.rewrite.disabled = on;
  ui.cancel.hidden = !on;
  ui.cancel.disabled = false;
}

function jobOptions() {
  const options = { session: SESSION_ID, preset: ui.preset.value };
  if (ui.model.value) options.model = ui.model.value;
  if (ui.workflow.value) options.workflow = ui.workflow.value;
  if (ui.checkpoint.value) options.checkpoint = ui.checkpoint.value;
  if (ui.ttsEngine.value) options.tts_engine = ui.ttsEngine.value;
  for (const name of ["steps", "width", "height", "seed"]) {
    if (ui[name].value !== "") options[name] = ui[name].value;
  }
  return options;
}

function resetResult() {
  streamedPrompt = "";
  ui.progress.className = "progress";
  stageStarts = [];
  clearInterval(stageTimer);
  stageTimer = null;
  renderPercent = 0;
  overall = 0;
  ui.stage.dataset.stage = "pending";
  ui.stages.replaceChildren();
  ui.entryActions.hidden = true;
  showBar(0);
  ui.step.textContent = "";
  ui.notes.textContent = "";
  ui.renderInfo.textContent = "";
  ui.preview.hidden = true;
  ui.download.hidden = true;
  ui.voice.hidden = true;
  ui.voice.removeAttribute("src");
  ui.spokenCaption.textContent = "";
  voiceUrl = null;
  imageShown = false;
}

// The caption plays when the picture appears; whichever of the two arrives last starts it.
let voiceUrl = null;
let imageShown = false;

function playVoice(url) {
  ui.voice.src = url;
  ui.voice.hidden = false;
  ui.spokenCaption.textContent = ui.caption.value;
  ui.voice.play().catch(() => {
    // Autoplay can be blocked until the page has been clicked: the player stays visible.
    ui.notes.textContent = (ui.notes.textContent + " Press play to hear the caption.").trim();
  });
}

function voiceReady(url) {
  voiceUrl = url;
  if (imageShown) playVoice(url);
}

async function startJob(fetchOptions) {
  resetResult();
  setBusy(true);
  currentJob = "starting";
  earlyEvents = [];
  try {
    const job = await api("/api/jobs", fetchOptions);
    currentJob = job.job_id;
    applySnapshot(job);
    for (const event of earlyEvents.splice(0)) handleEvent(event);
  } catch (err) {
    currentJob = null;
    setBusy(false);
    showMessage(capitalize(err.message) + ".", "error");
  }
}

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
  startJob({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

async function cancel() {
  if (!currentJob || currentJob === "starting") return;
  ui.cancel.disabled = true;
  try {
    await api(`/api/jobs/${currentJob}/cancel`, { method: "POST" });
    showMessage("Cancelling…", "busy");
  } catch (err) {
    showMessage(capitalize(err.message) + ".", "error");
  }
}

ui.generate.addEventListener("click", generate);

ui.typedForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.typed.value.trim();
  if (!text || busy()) return;
  ui.transcript.value = text;
  ui.prompt.value = "";
  startJob({ method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ...jobOptions(), transcript: text }) });
});
ui.cancel.addEventListener("click", cancel);

// One bar for the whole job: each stage owns a slice, the render's own percentage fills its slice.
const STAGE_SPAN = {
  pending: [0, 0], transcribing: [0, 15], writing_prompt: [15, 25], submitting: [25, 28], queued: [28, 30],
  rendering: [30, 95], saving: [95, 100], done: [100, 100],
};
let stageStarts = [];
let stageTimer = null;
let renderPercent = 0;
let overall = 0;

function setProgress(renderValue) {
  renderPercent = renderValue;
  const stage = ui.stage.dataset.stage || "pending";
  const [low, high] = STAGE_SPAN[stage] || [overall, overall];
  const within = stage === "rendering" || stage === "queued" ? renderPercent / 100 : 0;
  overall = Math.max(overall, low + (high - low) * within);
  showBar(overall);
}

function showBar(percent) {
  const value = Math.max(0, Math.min(100, percent));
  ui.progressFill.style.width = value + "%";
  ui.progress.setAttribute("aria-valuenow", String(Math.round(value)));
}

const STAGE_NAMES = { transcribing: "Transcribing", writing_prompt: "Writing prompt", submitting: "Sending",
  queued: "Queued", rendering: "Rendering", saving: "Saving" };

function setStage(stage, extra = {}) {
  ui.stage.textContent = stage === "queued" && extra.position ? `Queued #${extra.position}` : (STAGE_LABELS[stage] || stage);
  const previous = ui.stage.dataset.stage;
  ui.stage.dataset.stage = stage;
  if (stage !== previous && STAGE_NAMES[stage]) {
    stageStarts.push({ stage, at: performance.now() });
  }
  if (stage === "rendering" && previous !== "rendering") bringResultIntoView();
  if (FINISHED.has(stage)) {
    clearInterval(stageTimer);
    stageTimer = null;
  } else if (!stageTimer && STAGE_NAMES[stage]) {
    stageTimer = setInterval(drawStages, 200);
  }
  drawStages();
  setProgress(renderPercent);
}

// On a phone the result sits below the text boxes: when the render starts, show it, unless the
// person is typing or already looking at it.
const SINGLE_COLUMN = window.matchMedia("(max-width: 860px)");

function bringResultIntoView() {
  if (!SINGLE_COLUMN.matches) return;
  const active = document.activeElement;
  const editing = active && active.id !== "typed" && ["TEXTAREA", "INPUT", "SELECT"].includes(active.tagName);
  if (editing) return;
  const box = ui.canvas.getBoundingClientRect();
  if (box.top >= 0 && box.bottom <= window.innerHeight) return;
  ui.stage.scrollIntoView({ behavior: "smooth", block: "start" });
}

function drawStages(final = null) {
  const now = performance.now();
  const items = stageStarts.map((entry, i) => {
    const end = i + 1 < stageStarts.length ? stageStarts[i + 1].at : (final ? entry.at : now);
    const seconds = (end - entry.at) / 1000;
    const li = document.createElement("li");
    li.textContent = `${STAGE_NAMES[entry.stage]} ${seconds.toFixed(1)} s`;
    if (i === stageStarts.length - 1 && !final) li.className = "current";
    return li;
  });
  if (final) {
    // The server's own timings, once the job is over.
    const names = { asr: "Speech recognition", prompt: "Prompt", render: "Render", speech: "Voice", save: "Saving", total: "Total" };
    items.length = 0;
    for (const [key, label] of Object.entries(names)) {
      if (final[key] === undefined) continue;
      const li = document.createElement("li");
      li.textContent = `${label} ${final[key].toFixed(2)} s`;
      items.push(li);
    }
  }
  ui.stages.replaceChildren(...items);
}

function showImage(url, render) {
  if (render && render.width && render.height) ui.canvas.style.aspectRatio = `${render.width} / ${render.height}`;
  ui.image.onload = () => {
    ui.preview.hidden = true;
    if (!imageShown) {
      imageShown = true;
      if (voiceUrl) playVoice(voiceUrl);
    }
  };
  ui.image.src = url;
  ui.image.alt = ui.caption.value || "The generated picture";
  ui.image.hidden = false;
  ui.download.href = url;
  ui.download.hidden = false;
}

function describeRender(render) {
  const parts = [];
  if (render.checkpoint) parts.push(render.checkpoint);
  if (render.width) parts.push(`${render.width}×${render.height}`);
  if (render.steps) parts.push(`${render.steps} steps`);
  if (render.seed !== undefined) parts.push(`seed ${render.seed}`);
  return parts.join(" · ");
}

function finish(snapshot) {
  currentJob = null;
  setBusy(false);
  const stage = snapshot.stage;
  setStage(stage);
  drawStages(snapshot.timings || {});
  if (stage === "done") {
    overall = 100;
    showBar(100);
    ui.progress.className = "progress done";
    const total = snapshot.timings.total;
    ui.step.textContent = total ? `${total.toFixed(1)} s` : "";
    showMessage("Done. Edit the prompt and press Generate to try again.", "ok");
    loadGallery();
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

function applySnapshot(snapshot) {
  setStage(snapshot.stage, { position: snapshot.queue_position });
  if (snapshot.transcript) ui.transcript.value = snapshot.transcript;
  if (snapshot.prompt) {
    ui.prompt.value = snapshot.prompt;
    ui.negative.value = snapshot.negative_prompt || "";
    ui.caption.value = snapshot.caption || "";
  }
  setProgress(snapshot.percent || 0);
  if (snapshot.audio_url && !voiceUrl) voiceReady(snapshot.audio_url);
  if (snapshot.image_url) showImage(snapshot.image_url, snapshot.render);
  if (FINISHED.has(snapshot.stage)) finish(snapshot);
}

function handleEvent(event) {
  if (event.type === "resume") {
    currentJob = event.job_id;
    resetResult();
    setBusy(true);
    applySnapshot(event.snapshot);
    return;
  }
  if (currentJob === "starting" && event.job_id) {
    earlyEvents.push(event);
    return;
  }
  if (!event.job_id || event.job_id !== currentJob) return;
  switch (event.type) {
    case "stage":
      setStage(event.stage, event);
      if (event.stage === "transcribing") showMessage("Transcribing…", "busy");
      else if (/^(Uploading|Transcribing)/.test(ui.message.textContent)) showMessage("");  // the stage label takes over
      if (event.stage === "writing_prompt") { ui.prompt.value = ""; streamedPrompt = ""; }
      if (event.snapshot && FINISHED.has(event.stage)) finish(event.snapshot);
      break;
    case "transcript":
      ui.transcript.value = event.text;
      ui.transcriptMeta.textContent = `${event.duration_s.toFixed(1)} s of speech transcribed in ${event.elapsed_s.toFixed(2)} s`;
      break;
    case "token":
      streamedPrompt += event.text;
      ui.prompt.value = partialPrompt(streamedPrompt);
      break;
    case "prompt":
      showPlan(event.plan);
      break;
    case "render":
      ui.renderInfo.textContent = describeRender(event.render);
      if (event.render.width && event.render.height) ui.canvas.style.aspectRatio = `${event.render.width} / ${event.render.height}`;
      if (event.notes.length) ui.notes.textContent = event.notes.join(" ");
      ui.image.hidden = true;
      break;
    case "node":
      ui.step.textContent = event.title || event.class_type || `node ${event.node}`;
      setProgress(event.percent);
      break;
    case "cached":
      setProgress(event.percent);
      break;
    case "progress":
      setProgress(event.percent);
      if (event.value !== undefined) ui.step.textContent = `step ${event.value}/${event.max}`;
      break;
    case "preview":
      ui.preview.src = event.url;
      ui.preview.hidden = false;
      break;
    case "audio":
      voiceReady(event.url);
      break;
    case "audio_error":
      ui.notes.textContent = event.message;
      break;
    case "image":
      showImage(event.url, event.render);
      ui.renderInfo.textContent = describeRender(event.render);
      if (event.notes.length) ui.notes.textContent = event.notes.join(" ");
      break;
    default:
      break;
  }
}

let socket = null;
let retryDelay = 500;

function connectRelay() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws?session=${encodeURIComponent(SESSION_ID)}`);
  socket.onmessage = (message) => {
    retryDelay = 500;
    handleEvent(JSON.parse(message.data));
  };
  socket.onclose = () => {
    setTimeout(connectRelay, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 8000);
  };
}

// --- prompt writing alone (Rewrite), streamed as server-sent events over a POST ------------

// Shows the "prompt" field of the JSON the LLM is still writing, or its raw text.
function partialPrompt(text) {
  const match = text.match(/"prompt"\s*:\s*"((?:[^"\\]|\\.)*)/);
  if (!match) return text.trimStart().startsWith("{") ? "" : text;
  try { return JSON.parse(`"${match[1].replace(/\\$/, "")}"`); } catch (_) { return match[1]; }
}

async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = (block.match(/^event: (.*)$/m) || [])[1] || "message";
      const data = (block.match(/^data: (.*)$/m) || [])[1];
      if (data) yield { event, data: JSON.parse(data) };
    }
  }
}

function showPlan(plan) {
  ui.prompt.value = plan.prompt;
  ui.negative.value = plan.negative_prompt;
  ui.caption.value = plan.caption;
  ui.promptSource.hidden = false;
  ui.promptSource.className = "badge " + plan.source;
  ui.promptSource.textContent = { llm: `written by ${plan.model}`, offline: "written offline", user: "your prompt" }[plan.source];
  const timing = plan.elapsed_s ? `, ${plan.elapsed_s.toFixed(2)} s` : "";
  ui.promptMeta.textContent = `${plan.preset} preset${timing}` + (plan.notice ? ` — ${plan.notice}` : "");
}

async function writePrompt() {
  const transcript = ui.transcript.value.trim();
  if (!transcript) {
    showMessage("The transcript is empty: record or type a request first.", "error");
    return;
  }
  ui.rewrite.disabled = true;
  ui.prompt.value = "";
  ui.promptSource.hidden = true;
  ui.promptMeta.textContent = "";
  showMessage("Writing the prompt…", "busy");
  let streamed = "";
  try {
    const response = await fetch("/api/prompt", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ transcript, preset: ui.preset.value, model: ui.model.value || undefined, session: SESSION_ID }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      throw new Error(body && body.error ? body.error.message : `the server answered ${response.status}`);
    }
    for await (const { event, data } of readEvents(response)) {
      if (event === "token") {
        streamed += data.text;
        ui.prompt.value = partialPrompt(streamed);
      } else if (event === "result") {
        showPlan(data);
        showMessage(data.source === "llm" ? "Prompt ready. Edit it if you like, then press Generate." : `Prompt ready. ${data.notice || "It was written offline."}`, data.source === "llm" ? "ok" : "busy");
      } else if (event === "error") {
        throw new Error(data.message);
      }
    }
  } catch (err) {
    showMessage(capitalize(err.message) + ".", "error");
  } finally {
    ui.rewrite.disabled = busy();
  }
}

ui.rewrite.addEventListener("click", writePrompt);

ui.speak.addEventListener("click", async () => {
  const text = ui.caption.value.trim();
  if (!text) return;
  ui.speak.disabled = true;
  try {
    const result = await api("/api/speak", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text, engine: ui.ttsEngine.value || undefined }),
    });
    if (result.audio_url) playVoice(result.audio_url);
    else showMessage("The voice is off.", "");
  } catch (err) {
    showMessage(capitalize(err.message) + ".", "error");
  } finally {
    ui.speak.disabled = false;
  }
});

// --- choices and health ----------------------------------------------------------------

function fillSelect(select, values, selected, firstLabel) {
  select.replaceChildren(...(firstLabel !== undefined ? [new Option(firstLabel, "")] : []), ...values.map((v) => new Option(v, v)));
  if (values.includes(selected)) select.value = selected;
}

async function loadModels() {
  try {
    const info = await api("/api/llm");
    const current = ui.model.value || info.model;
    fillSelect(ui.model, info.models, current, info.server ? "Server default" : "No LLM server");
    fillSelect(ui.llmModels, info.models);  // suggestions for the settings' model field
  } catch (_) { /* the health light says the server is away */ }
}

async function loadComfyChoices() {
  try {
    const info = await api("/api/comfyui");
    fillSelect(ui.workflow, info.workflows, ui.workflow.value || info.workflow);
    fillSelect(ui.checkpoint, info.checkpoints, ui.checkpoint.value || info.checkpoint, "Automatic");
    fillSelect(ui.settingsWorkflow, info.workflows, ui.settingsWorkflow.value || info.workflow);
    fillSelect(ui.checkpoints, info.checkpoints);  // suggestions for the settings' checkpoint field
  } catch (_) { /* shown by the health light */ }
}

ui.workflowFile.addEventListener("change", async () => {
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
});

function setLight(id, cls, title) {
  const light = $(id);
  light.className = "light " + cls;
  light.title = title;
}

async function refreshHealth() {
  try {
    const health = await api("/api/health");
    const { whisper, llm, comfyui } = health;
    setLight("health-whisper", { ready: "ok", loading: "loading", idle: "loading" }[whisper.state] || "bad",
      whisper.state === "error" ? `Whisper: ${whisper.error}` : `Whisper ${whisper.model} on ${whisper.device} (${whisper.compute_type}): ${whisper.state}`);
    setLight("health-llm", { ready: "ok", off: "unknown" }[llm.state] || "bad",
      llm.state === "ready" ? `LLM ${llm.model} at ${llm.server}` : `LLM ${llm.state}: ${llm.fix}`);
    setLight("health-comfyui", comfyui.state === "ready" ? "ok" : "bad",
      comfyui.servers.map((srv) => `ComfyUI at ${srv.url}: ${srv.state === "ready" ? `ready (${srv.version || "?"})` : "unreachable"}`).join("\n")
        + (comfyui.fix ? `\nTo fix: ${comfyui.fix}` : ""));
    const tts = health.tts;
    setLight("health-tts", { ready: "ok", loading: "loading", idle: "loading", off: "unknown" }[tts.state] || "bad",
      tts.state === "error" ? `Voice: ${tts.error}` : `Voice: ${tts.engine} ${tts.voice || ""} (${tts.state})`);
  } catch (_) {
    for (const light of document.querySelectorAll("#health .light")) {
      light.className = "light bad";
      light.title = "The speech2image server is not answering";
    }
  }
}

// --- gallery ------------------------------------------------------------------------------

let openEntry = null;

async function loadGallery() {
  try {
    const { entries } = await api("/api/gallery");
    ui.galleryEmpty.hidden = entries.length > 0;
    ui.gallery.replaceChildren(...entries.map((entry) => {
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
    }));
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

function runEntryAgain(sameSeed) {
  if (!openEntry || busy()) return;
  const render = openEntry.render || {};
  const body = { ...jobOptions(), prompt: openEntry.prompt, negative_prompt: openEntry.negative_prompt || "",
    caption: openEntry.caption || "" };
  for (const key of ["workflow", "checkpoint", "steps", "width", "height"]) if (render[key]) body[key] = render[key];
  if (render.cfg) body.cfg = render.cfg;
  if (sameSeed && render.seed !== undefined) body.seed = render.seed;
  else delete body.seed;
  openEntry = null;
  startJob({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

ui.againSame.addEventListener("click", () => runEntryAgain(true));
ui.againNew.addEventListener("click", () => runEntryAgain(false));
ui.deleteEntry.addEventListener("click", async () => {
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
    showMessage(capitalize(err.message) + ".", "error");
  }
});

// --- settings ---------------------------------------------------------------------------

const NUMBER_SETTINGS = new Set(["steps", "cfg", "width", "height", "seed"]);

async function loadSettings() {
  try {
    // The dropdowns' choices come from loadModels and loadComfyChoices, asked once per load.
    const { settings } = await api("/api/settings");
    if (![...ui.settingsWorkflow.options].some((o) => o.value === settings.workflow)) {
      ui.settingsWorkflow.add(new Option(settings.workflow, settings.workflow));
    }
    for (const [name, value] of Object.entries(settings)) {
      const field = ui.settingsForm.elements[name];
      if (field) field.value = value;
    }
    if (settings.llm_preset) ui.preset.value = settings.llm_preset;
  } catch (err) {
    ui.settingsStatus.textContent = "Could not read the settings: " + err.message;
  }
}

ui.settingsForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const changes = {};
  for (const field of ui.settingsForm.elements) {
    if (!field.name) continue;
    changes[field.name] = NUMBER_SETTINGS.has(field.name) ? Number(field.value) : field.value;
  }
  ui.settingsStatus.textContent = "Saving…";
  try {
    await api("/api/settings", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(changes) });
    ui.settingsStatus.textContent = "Saved. Changes apply to the next job.";
    await Promise.all([loadSettings(), loadModels(), loadComfyChoices(), refreshHealth()]);
  } catch (err) {
    ui.settingsStatus.textContent = capitalize(err.message) + ".";
  }
});

connectRelay();
loadGallery();
loadSettings();
loadModels();
loadComfyChoices();
refreshHealth();
setInterval(refreshHealth, 5000);
