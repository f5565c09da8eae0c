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
};

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
    showMessage("Transcript ready. Edit it if anything is wrong.", "ok");
  } catch (err) {
    const invite = err.code === "no_speech" ? " Press Record and try again." : "";
    showMessage(err.message.charAt(0).toUpperCase() + err.message.slice(1) + "." + invite, "error");
  } finally {
    busy = false;
    ui.record.disabled = false;
  }
});

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
  } catch (_) {
    $("health-whisper").className = "light bad";
    $("health-whisper").title = "The speech2image server is not answering";
  }
}

refreshHealth();
setInterval(refreshHealth, 5000);
