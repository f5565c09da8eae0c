// The lights in the top bar: Whisper, the LLM, ComfyUI and the voice, polled every few seconds.
// Each light is a button: a tap or click opens what it means and how to fix it (Escape closes).

import { SERVER_AWAY, api } from "./api.js";
import { sentence, ui, withCode } from "./dom.js";
import { showComfyBanner, showServerAway } from "./banners.js";

const LIGHTS = ["whisper", "llm", "comfyui", "tts"];
const comfyWaiters = [];  // what runs once ComfyUI answers (a job asked to render when it is back)
const explained = {};  // light -> { title, text, fix } as the last check left it
let openLight = null;

// fix: what to do, introduced by fixLabel ("To fix" unless the state is fine as it is).
function setLight(name, cls, title, text, fix = "", fixLabel = "To fix") {
  const light = lightOf(name);
  light.className = "light " + cls;
  light.title = [title, text].filter(Boolean).join(": ");
  explained[name] = { title, text, fix, fixLabel };
  if (openLight === name) fillDetail(name);
}

// Speech servers (SPEECH2IMAGE_ASR_URL / _TTS_URL): one line per server with what it offers and how busy it is.
function speechServer(srv) {
  const offers = (srv.models || srv.voices || []).map((name) => name.split("/").pop());
  const total = srv.models_total || srv.voices_total || offers.length;
  const what = offers.length ? `, ${srv.models ? "model" : "voice"}${total > 1 ? "s" : ""} ${offers.slice(0, 3).join(", ")}${total > 3 ? ` (+${total - 3})` : ""}` : "";
  if (srv.state === "ready" || srv.state === "loading") {
    return `${srv.url} (${srv.protocol}) is ${srv.state}${what}; ${srv.busy} busy, ${srv.served} served`;
  }
  if (srv.state === "garbage") return `${srv.error}: it is not a ${srv.protocol === "wyoming" ? "Wyoming" : "speech"} server`;
  return srv.error || `${srv.url} is not answering`;
}

function serversLight(status, label) {
  const text = status.servers.map(speechServer).join("; ");
  if (status.state === "ready") return ["ok", `${label}: ready`, text];
  if (status.state === "loading") return ["loading", `${label}: loading`, text];
  return ["bad", `${label}: no server answers`, text, status.fix];
}

function whisperLight(whisper) {
  if (whisper.servers) return serversLight(whisper, "Speech recognition servers");
  const cls = { ready: "ok", loading: "loading", idle: "loading" }[whisper.state] || "bad";
  if (whisper.state === "error") {
    return [cls, "Speech recognition failed to load", whisper.error, "check SPEECH2IMAGE_WHISPER_MODEL and the server log"];
  }
  const model = `the ${whisper.model} model on ${whisper.device} (${whisper.compute_type})`;
  return [cls, `Speech recognition: ${whisper.state}`,
    whisper.state === "ready" ? `Whisper runs ${model}` : `Whisper is loading ${model}; recording works once it is ready`];
}

// No LLM is a supported way to work: the offline rewriter writes the prompts, so it is not an error.
function llmLight(llm) {
  if (llm.state === "ready") return ["ok", "LLM: ready", `prompts are written by ${llm.model} at ${llm.server}`];
  if (llm.state === "off") {
    return ["offline", "LLM: offline rewriter", "the LLM is switched off; prompts are written by the offline rewriter",
      "set `SPEECH2IMAGE_LLM_URL` (or the Server URL in Settings) to an OpenAI-compatible server", "To use an LLM"];
  }
  const tried = llm.tried && llm.tried.length ? ` (tried ${llm.tried.join(", ")})` : "";
  return ["offline", "LLM: offline rewriter", `no LLM server answered${tried}; prompts are written by the offline rewriter`,
    llm.fix, "To use an LLM"];
}

// One line per server: its state, and how its address was found (configured, discovered, started).
function comfyServer(srv) {
  const how = srv.how && srv.how !== "discovery" ? `, ${srv.how}` : "";
  if (srv.state === "ready") return `ready (${srv.version || "?"} on ${srv.device || "?"}${how})`;
  if (srv.state === "starting") return "starting";
  return "not answering";
}

function comfyLight(comfyui) {
  const servers = comfyui.servers || [];
  const text = servers.map((srv) => `ComfyUI at ${srv.url} is ${comfyServer(srv)}`).join("; ");
  if (comfyui.state === "ready") return ["ok", "ComfyUI: ready", text, comfyui.fix];
  if (comfyui.state === "starting") return ["loading", "Starting ComfyUI…", text, comfyui.fix];
  return ["bad", "ComfyUI: unreachable", text || `ComfyUI at ${comfyui.url} is not answering`, comfyui.fix];
}

// Said once on the page: a ComfyUI with only a CPU takes minutes per picture.
// The ComfyUI we started found no GPU and was started again on the CPU: that is said first.
function noteDevice(comfyui) {
  const note = ui.deviceNote;
  if (comfyui.device !== "cpu" || !note || !note.hidden) return;
  const restarted = (comfyui.servers || []).map((srv) => srv.note).find(Boolean);
  note.textContent = (restarted ? `${sentence(restarted)} ` : "")
    + "ComfyUI runs on the CPU here, far slower than on a GPU: SD 1.5's usual 512×512 at 20 steps takes a "
    + "minute or more. Fewer steps and a smaller size are much faster, and a job that would take long says so as "
    + "it starts.";
  note.hidden = false;
}

function voiceLight(tts) {
  if (tts.servers) return serversLight(tts, "Voice servers");
  const cls = { ready: "ok", loading: "loading", idle: "loading", off: "offline" }[tts.state] || "bad";
  if (tts.state === "error") return [cls, "Voice: failed", tts.error, "choose another voice engine in Settings"];
  if (tts.state === "off") return [cls, "Voice: off", "captions are not spoken", "choose a voice engine in Settings"];
  return [cls, `Voice: ${tts.state}`, `captions are spoken by ${tts.engine}${tts.voice ? ` (${tts.voice})` : ""}`];
}

export async function refreshHealth() {
  let health;
  try {
    health = await api("/api/health");
  } catch (err) {
    for (const name of LIGHTS) setLight(name, "unknown", "No answer", err.message);
    showServerAway(err.message === SERVER_AWAY ? err.message : null);
    return;
  }
  showServerAway(null);
  setLight("whisper", ...whisperLight(health.whisper));
  setLight("llm", ...llmLight(health.llm));
  setLight("comfyui", ...comfyLight(health.comfyui));
  noteDevice(health.comfyui);
  setLight("tts", ...voiceLight(health.tts));
  showComfyBanner(health.comfyui);
  if (health.comfyui.state === "ready") comfyWaiters.splice(0).forEach((run) => run());
}

// run() once the health check next finds ComfyUI answering.
export function whenComfyReady(run) {
  comfyWaiters.push(run);
}

function lightOf(name) {
  return document.getElementById(`health-${name}`);
}

function fillDetail(name) {
  const { title, text, fix, fixLabel } = explained[name] || { title: "Checking…", text: "", fix: "" };
  ui.healthDetailTitle.textContent = title;
  ui.healthDetailText.replaceChildren(...withCode(sentence(text)));
  ui.healthDetailFix.replaceChildren(...(fix ? withCode(`${fixLabel}: ${sentence(fix)}`) : []));
}

function closeDetail(returnFocus = false) {
  if (!openLight) return;
  const light = lightOf(openLight);
  light.setAttribute("aria-expanded", "false");
  ui.healthDetail.hidden = true;
  openLight = null;
  if (returnFocus) light.focus();
}

function toggleDetail(name) {
  const wasOpen = openLight === name;
  closeDetail();
  if (wasOpen) return;
  openLight = name;
  fillDetail(name);
  const light = lightOf(name);
  light.setAttribute("aria-expanded", "true");
  ui.healthDetail.hidden = false;
  const box = light.getBoundingClientRect();
  const header = ui.healthDetail.offsetParent.getBoundingClientRect();
  const width = ui.healthDetail.offsetWidth;
  const left = Math.min(Math.max(8, box.left - header.left), header.width - width - 8);
  ui.healthDetail.style.left = `${Math.max(8, left)}px`;
}

export function initHealth() {
  for (const name of LIGHTS) lightOf(name).addEventListener("click", () => toggleDetail(name));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeDetail(true);
  });
  document.addEventListener("click", (event) => {
    if (openLight && !event.target.closest("#health, #health-detail")) closeDetail();
  });
}
