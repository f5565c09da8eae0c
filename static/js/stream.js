// Live transcript: while recording, the microphone streams to /ws/audio as 16 kHz PCM (the
// AudioWorklet in pcm-worklet.js) and the server's partial transcripts show in the transcript box's
// place, tentative words lighter. At Stop the server answers the final text and starts the job.
// Frames: see speech2image/speech/stream.py. When the socket cannot open or fails, the recorder
// uploads its MediaRecorder blob as before.

import { SESSION_ID } from "./api.js";
import { ui } from "./dom.js";
import { onCorrection, showHeard } from "./language.js";

const OPEN_TIMEOUT_MS = 10000;  // the audio waits meanwhile; Stop before then uploads it

function livePreview() {
  let preview = document.getElementById("live-transcript");
  if (!preview) {
    preview = document.createElement("p");
    preview.id = "live-transcript";
    preview.className = "live-transcript";
    preview.setAttribute("aria-live", "polite");
    preview.hidden = true;
    ui.transcript.insertAdjacentElement("beforebegin", preview);
  }
  return preview;
}

function showPartial(committed, tentative) {
  const preview = livePreview();
  const strong = document.createElement("span");
  strong.className = "committed";
  strong.textContent = committed;
  const light = document.createElement("span");
  light.className = "tentative";
  light.textContent = (committed && tentative ? " " : "") + tentative;
  preview.replaceChildren(strong, light);
  preview.hidden = false;
  ui.transcript.hidden = true;  // the words are shown once, in the box's place, until the final text fills it
}

export function hidePreview() {
  livePreview().hidden = true;
  ui.transcript.hidden = false;
}

export class LiveStream {
  // options: the job's fields as for POST /api/jobs; onNote(text): the server cut the recording.
  constructor(options, { onNote }) {
    this.options = options;
    this.onNote = onNote;
    this.failed = false;
    this.ready = false;
    this.waiting = [];  // frames captured before the server said "ready"
    this.outcome = null;  // { resolve, reject } once stop() was called
  }

  async start(mediaStream) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.socket = new WebSocket(`${scheme}://${location.host}/ws/audio?session=${encodeURIComponent(SESSION_ID)}`);
    this.socket.binaryType = "arraybuffer";
    this.socket.onopen = () => this.socket.send(JSON.stringify({
      type: "start", sample_rate: 16000, format: "s16le", ...this.options }));
    this.socket.onmessage = (message) => this.receive(JSON.parse(message.data));
    this.socket.onerror = () => this.fail();
    this.socket.onclose = () => this.fail();
    this.openTimer = setTimeout(() => { if (!this.ready) this.fail(); }, OPEN_TIMEOUT_MS);
    // The person corrects the language while speaking: the rest of the recording is heard in it.
    this.unlisten = onCorrection((language) => {
      if (this.ready && !this.failed && !this.outcome) this.socket.send(JSON.stringify({ type: "language", language }));
    });
    livePreview().replaceChildren();
    this.context = new AudioContext();
    await this.context.audioWorklet.addModule("/static/js/pcm-worklet.js");
    this.source = this.context.createMediaStreamSource(mediaStream);
    this.node = new AudioWorkletNode(this.context, "pcm-16k");
    this.node.port.onmessage = (event) => this.send(event.data);
    this.source.connect(this.node);
  }

  send(pcm) {
    if (this.failed || this.outcome) return;
    if (this.ready) this.socket.send(pcm);
    else this.waiting.push(pcm);
  }

  receive(frame) {
    switch (frame.type) {
      case "ready":
        if (this.failed) break;
        this.ready = true;
        clearTimeout(this.openTimer);
        for (const pcm of this.waiting.splice(0)) this.socket.send(pcm);
        break;
      case "partial":
        if (frame.committed || frame.tentative) showPartial(frame.committed, frame.tentative);
        showHeard(frame);
        break;
      case "note":
        this.onNote(frame.message);
        break;
      case "final":
        this.final = frame;
        hidePreview();
        ui.transcript.value = frame.text;
        showHeard(frame);
        // pass_after_stop: speech came after the last pass, so Stop waited for one more
        ui.transcriptMeta.textContent = `${frame.duration_s.toFixed(1)} s of speech transcribed live; ` +
          (frame.pass_after_stop ? `final text ${frame.elapsed_s.toFixed(2)} s after Stop` : "final text ready at Stop");
        break;
      case "job":
        this.settle((outcome) => outcome.resolve(frame.snapshot));
        this.socket.close();  // the last frame: the server waits for this close
        break;
      case "error": {
        // the words heard so far go into the box, kept to send or edit once the trouble is fixed
        const preview = livePreview();
        const heard = preview.hidden ? "" : preview.textContent.trim();
        hidePreview();
        if (heard && !ui.transcript.value.trim()) ui.transcript.value = heard;
        this.error = Object.assign(new Error(frame.message), { code: frame.code });
        this.settle((outcome) => outcome.reject(this.error));
        this.socket.close();
        break;
      }
      default:
        break;
    }
  }

  settle(how) {
    if (this.outcome) how(this.outcome);
    this.finished = how;
  }

  // The socket failed before an answer: the recorder falls back to uploading (resolve null).
  fail() {
    if (this.failed || this.finished) return;
    this.failed = true;
    clearTimeout(this.openTimer);
    hidePreview();
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) this.socket.close();
    this.finished = (outcome) => outcome.resolve(null);
    if (this.outcome) this.finished(this.outcome);
  }

  release() {
    if (this.unlisten) this.unlisten();
    if (this.source) this.source.disconnect();
    if (this.context) this.context.close();
  }

  // Stop: answers the started job's snapshot, null when the caller must upload instead, or rejects
  // with the server's error (no speech, too many jobs...).
  stop() {
    this.release();
    const answer = new Promise((resolve, reject) => { this.outcome = { resolve, reject }; });
    if (this.finished) this.finished(this.outcome);
    else if (this.ready) this.socket.send(JSON.stringify({ type: "stop" }));
    else this.fail();
    return answer;
  }
}
