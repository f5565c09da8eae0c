// Recording: MediaRecorder with a level meter, a timer and optional auto-stop on silence,
// started and stopped with the Record button or the Space bar. While it records, the audio also
// streams to the server for a live transcript (stream.js); the MediaRecorder blob is the fallback.

import { showMessage, ui } from "./dom.js";
import { setStage } from "./progress.js";
import { LiveStream } from "./stream.js";

const SPEECH_LEVEL = 25;
const AUTO_STOP_SILENCE_MS = 1500;

const MIME_CANDIDATES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/ogg", "audio/mp4"];
const EXTENSIONS = { "audio/webm": "webm", "audio/ogg": "ogg", "audio/mp4": "m4a" };

function requestId() {
  return crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now();
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
  constructor(onStop, jobOptions) {
    this.onStop = onStop;
    this.jobOptions = jobOptions;
    this.active = false;
  }

  async startLive() {
    ui.transcript.value = "";
    this.live = new LiveStream(this.options, {
      onNote: (text) => {
        ui.transcriptMeta.textContent = text;
        this.stop();
      },
    });
    try {
      await this.live.start(this.stream);
    } catch (err) {
      console.warn("no live transcript; the recording is uploaded at Stop", err);
      this.live.fail();
    }
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
    this.liveAnswer = null;
    // One request however it reaches the server: the live stream starts the job, or the upload does
    // when the stream failed; if both arrive (a socket dropped just after the job started), the
    // shared request_id makes the server answer the job it already has.
    this.options = { ...this.jobOptions(), request_id: requestId() };
    await this.startLive();
    this.watchLevel();
    this.tick = setInterval(() => this.showTime(), 200);
    this.showTime();
  }

  stop() {
    if (!this.active) return;
    this.active = false;
    this.liveAnswer = this.live.stop();  // asked at once: the final text is usually there already
    this.recorder.stop();
  }

  // The recording is handed over (its length is in the upload message): the timer is back at 0:00.
  finish() {
    clearInterval(this.tick);
    showTime(0);
    cancelAnimationFrame(this.frame);
    if (this.audioContext) this.audioContext.close();
    this.stream.getTracks().forEach((track) => track.stop());
    ui.meterFill.style.width = "0%";
    ui.meter.setAttribute("aria-valuenow", "0");
    const type = this.recorder.mimeType || (this.chunks[0] && this.chunks[0].type) || "audio/webm";
    const blob = new Blob(this.chunks, { type });
    const name = `recording.${EXTENSIONS[blob.type.split(";")[0]] || "webm"}`;
    this.onStop(blob, name, (performance.now() - this.startedAt) / 1000, this.liveAnswer, this.options);
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
    showTime(Math.floor((performance.now() - this.startedAt) / 1000));
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

function showTime(seconds) {
  ui.timer.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

function setRecordingUi(on) {
  ui.record.classList.toggle("recording", on);
  ui.record.setAttribute("aria-pressed", String(on));
  ui.recordLabel.textContent = on ? "Stop" : "Record";
}

// busy(): a job is under way, so no new recording; onRecorded(blob, fileName, seconds, liveAnswer, options)
// gets each one (liveAnswer: the live stream's started job, or null to upload the blob; options: the
// job's fields as they were when recording started, with its request_id);
// jobOptions(): the job's fields now.
export function initRecorder({ busy, onRecorded, jobOptions }) {
  ui.autoStop.checked = localStorage.getItem("s2i-auto-stop") === "1";
  ui.autoStop.addEventListener("change", () => localStorage.setItem("s2i-auto-stop", ui.autoStop.checked ? "1" : "0"));

  const recorder = new Recorder((blob, name, seconds, liveAnswer, options) => {
    setRecordingUi(false);
    onRecorded(blob, name, seconds, liveAnswer, options);
  }, jobOptions);

  async function toggleRecording() {
    if (busy()) return;
    if (recorder.active) {
      recorder.stop();
      return;
    }
    try {
      await recorder.start();
      setRecordingUi(true);
      setStage("listening");
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
}
