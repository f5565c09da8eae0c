// Banners under the top bar for what stops the page from working: our own server not answering,
// and no ComfyUI to render with (said at load, with how to start it, until ComfyUI answers).

import { sentence, ui, withCode } from "./dom.js";

const START_COMFYUI = "start it in the ComfyUI folder with "
  + "`python main.py --listen 127.0.0.1 --port 8188 --preview-method auto`, or use ComfyUI Desktop "
  + "(port 8000) with `SPEECH2IMAGE_COMFYUI_URL=http://127.0.0.1:8000` or that URL in Settings";

let comfyDismissed = false;  // until ComfyUI answers again

// message: why the server is away (null: it answers); the health check keeps asking meanwhile.
export function showServerAway(message) {
  ui.serverBanner.hidden = !message;
  ui.serverBanner.textContent = message ? `${sentence(message)} The page keeps checking.` : "";
}

function addressesTried(comfyui) {
  const servers = comfyui.servers || [];
  const down = servers.filter((srv) => srv.state !== "ready").map((srv) => srv.url);
  return down.length ? down.join(", ") : comfyui.url;
}

// comfyui: the health answer's part; the banner shows while no ComfyUI server answers.
export function showComfyBanner(comfyui) {
  const missing = comfyui.state !== "ready";
  if (!missing) comfyDismissed = false;
  ui.comfyBanner.hidden = !missing || comfyDismissed;
  if (ui.comfyBanner.hidden) return;
  // An address the person set: the fix is about that address, not the usual ports.
  const configured = (comfyui.servers || []).some((srv) => srv.how === "configured");
  const fix = configured ? "check that ComfyUI runs at that address (set in Settings or "
    + "`SPEECH2IMAGE_COMFYUI_URL`) and listens on that port, or change the address" : START_COMFYUI;
  const text = `ComfyUI is not answering at ${addressesTried(comfyui)}: prompts and captions work, pictures `
    + `need ComfyUI. To render, ${fix}.`;
  if (ui.comfyBannerText.textContent !== text.replace(/`/g, "")) ui.comfyBannerText.replaceChildren(...withCode(text));
}

// A job in view says it is waiting for ComfyUI, with what to do: the banner would say it twice.
export function quietComfyBanner() {
  comfyDismissed = true;
  ui.comfyBanner.hidden = true;
}

export function initBanners() {
  ui.comfyBannerClose.addEventListener("click", () => {
    comfyDismissed = true;
    ui.comfyBanner.hidden = true;
  });
}
