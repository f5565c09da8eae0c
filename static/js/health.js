// The lights in the top bar: Whisper, the LLM, ComfyUI and the voice, polled every few seconds.

import { api } from "./api.js";
import { $ } from "./dom.js";

function setLight(id, cls, title) {
  const light = $(id);
  light.className = "light " + cls;
  light.title = title;
}

// One line per server: its state, and how its address was found (configured, discovered, started).
function comfyServer(srv) {
  const how = srv.how && srv.how !== "discovery" ? `, ${srv.how}` : "";
  if (srv.state === "ready") return `ready (${srv.version || "?"} on ${srv.device || "?"}${how})`;
  if (srv.state === "starting") return "Starting ComfyUI…";
  return `unreachable${srv.error ? ` (${srv.error})` : ""}`;
}

function comfyTitle(comfyui) {
  return comfyui.servers.map((srv) => `ComfyUI at ${srv.url}: ${comfyServer(srv)}`).join("\n")
    + (comfyui.fix ? `\nTo fix: ${comfyui.fix}` : "");
}

// Said once on the page: a ComfyUI with only a CPU takes minutes per picture.
function noteDevice(comfyui) {
  const note = $("device-note");
  if (comfyui.device !== "cpu" || !note.hidden) return;
  note.textContent = "ComfyUI runs on the CPU here: a 512×512 picture at 20 steps takes a minute or more, not seconds. "
    + "Fewer steps and a smaller size are much faster; the page warns before a job that would take long.";
  note.hidden = false;
}

export async function refreshHealth() {
  try {
    const { whisper, llm, comfyui, tts } = await api("/api/health");
    setLight("health-whisper", { ready: "ok", loading: "loading", idle: "loading" }[whisper.state] || "bad",
      whisper.state === "error" ? `Whisper: ${whisper.error}` : `Whisper ${whisper.model} on ${whisper.device} (${whisper.compute_type}): ${whisper.state}`);
    setLight("health-llm", { ready: "ok", off: "unknown" }[llm.state] || "bad",
      llm.state === "ready" ? `LLM ${llm.model} at ${llm.server}` : `LLM ${llm.state}: ${llm.fix}`);
    setLight("health-comfyui", { ready: "ok", starting: "loading" }[comfyui.state] || "bad", comfyTitle(comfyui));
    noteDevice(comfyui);
    setLight("health-tts", { ready: "ok", loading: "loading", idle: "loading", off: "unknown" }[tts.state] || "bad",
      tts.state === "error" ? `Voice: ${tts.error}` : `Voice: ${tts.engine} ${tts.voice || ""} (${tts.state})`);
  } catch (_) {
    for (const light of document.querySelectorAll("#health .light")) {
      light.className = "light bad";
      light.title = "The speech2image server is not answering";
    }
  }
}
