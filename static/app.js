// speech2image page: records with MediaRecorder, uploads once on stop, shows the transcript.
"use strict";

const $ = (id) => document.getElementById(id);

const ui = {
  record: $("record"),
  recordLabel: $("record-label"),
  timer: $("timer"),
  meter: $("meter"),
  meterFill: $("meter-fill"),
  message: $("message"),
  transcript: $("transcript"),
  transcriptMeta: $("transcript-meta"),
  preset: $("preset"),
  model: $("model"),
  rewrite: $("rewrite"),
  prompt: $("prompt"),
  promptSource: $("prompt-source"),
  negative: $("negative"),
  caption: $("caption"),
  promptMeta: $("prompt-meta"),
};

// One id per browser tab: follow-ups ("now make it at night") edit this tab's last prompt only.
const SESSION_ID = sessionStorage.getItem("s2i-session") || (() => {
  const id = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
  sessionStorage.setItem("s2i-session", id);
  return id;
})();

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// Formats Chrome, Firefox and Safari can record, best first; the server decodes all of them.
const MIME_CANDIDATES = [
  "audio/webm;codecs=opus",
  "audio/ogg;codecs=opus",
  "audio/webm",
  "audio/ogg",
  "audio/mp4",
];
const EXTENSIONS = { "audio/webm": "webm", "audio/ogg": "ogg", "audio/mp4": "m4a" };

function showMessage(text, kind = "") {
  ui.message.textContent = text;
  ui.message.className = "message " + kind;
  ui.message.hidden = !text;
}

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
    const blob = new Blob(this.chunks, { type });
    this.onStop(blob, (performance.now() - this.startedAt) / 1000);
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
        const rms = Math.sqrt(sum / samples.length);
        const level = Math.min(100, Math.round(Math.sqrt(rms) * 160));
        ui.meterFill.style.width = level + "%";
        ui.meter.setAttribute("aria-valuenow", String(level));
        this.frame = requestAnimationFrame(draw);
      };
      draw();
    } catch (err) {
      console.warn("level meter unavailable", err);
    }
  }
}

async function postAudio(blob) {
  const base = blob.type.split(";")[0];
  const form = new FormData();
  form.append("audio", blob, `recording.${EXTENSIONS[base] || "webm"}`);
  const response = await fetch("/api/transcribe", { method: "POST", body: form });
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON: handled below */ }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `the server answered ${response.status}`;
    throw Object.assign(new Error(message), { code: body && body.error && body.error.code });
  }
  return body;
}

let busy = false;
const recorder = new Recorder(async (blob, seconds) => {
  setRecordingUi(false);
  busy = true;
  ui.record.disabled = true;
  showMessage(`Transcribing ${seconds.toFixed(1)} s of audio…`, "busy");
  try {
    const result = await postAudio(blob);
    ui.transcript.value = result.text;
    ui.transcriptMeta.textContent = `${result.duration_s.toFixed(1)} s of speech (${result.language}) transcribed in ${result.elapsed_s.toFixed(2)} s`;
  } catch (err) {
    const invite = err.code === "no_speech" ? " Press Record and try again." : "";
    showMessage(capitalize(err.message) + "." + invite, "error");
    return;
  } finally {
    busy = false;
    ui.record.disabled = false;
  }
  await writePrompt();
});

// --- prompt writing (streamed as server-sent events over a POST) ---------------

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
  ui.promptSource.textContent = plan.source === "llm" ? `written by ${plan.model}` : "written offline";
  ui.promptMeta.textContent = `${plan.preset} preset, ${plan.elapsed_s.toFixed(2)} s` + (plan.notice ? ` — ${plan.notice}` : "");
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
        showMessage(data.source === "llm" ? "Prompt ready. Edit it if you like." : `Prompt ready. ${data.notice || "It was written offline."}`, data.source === "llm" ? "ok" : "busy");
      } else if (event === "error") {
        throw new Error(data.message);
      }
    }
  } catch (err) {
    showMessage(capitalize(err.message) + ".", "error");
  } finally {
    ui.rewrite.disabled = false;
  }
}

ui.rewrite.addEventListener("click", writePrompt);

async function loadModels() {
  try {
    const info = await (await fetch("/api/llm")).json();
    const current = ui.model.value;
    ui.model.replaceChildren(new Option(info.server ? "Server default" : "No LLM server", ""));
    for (const id of info.models) ui.model.append(new Option(id, id));
    ui.model.value = info.models.includes(current) ? current : (info.model && info.models.includes(info.model) ? info.model : "");
  } catch (_) { /* the health light already says the server is away */ }
}

function setRecordingUi(on) {
  ui.record.classList.toggle("recording", on);
  ui.record.setAttribute("aria-pressed", String(on));
  ui.recordLabel.textContent = on ? "Stop" : "Record";
}

async function toggleRecording() {
  if (busy) return;
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

async function refreshHealth() {
  try {
    const response = await fetch("/api/health");
    const health = await response.json();
    const whisper = health.whisper;
    const light = $("health-whisper");
    light.className = "light " + ({ ready: "ok", loading: "loading", idle: "loading" }[whisper.state] || "bad");
    light.title = whisper.state === "error"
      ? `Whisper: ${whisper.error}`
      : `Whisper ${whisper.model} on ${whisper.device} (${whisper.compute_type}): ${whisper.state}`;
    const llm = health.llm;
    const llmLight = $("health-llm");
    llmLight.className = "light " + ({ ready: "ok", off: "unknown" }[llm.state] || "bad");
    llmLight.title = llm.state === "ready" ? `LLM ${llm.model} at ${llm.server}` : `LLM ${llm.state}: ${llm.fix}`;
  } catch (_) {
    for (const light of document.querySelectorAll("#health .light")) {
      light.className = "light bad";
      light.title = "The speech2image server is not answering";
    }
  }
}

loadModels();
refreshHealth();
setInterval(refreshHealth, 5000);
