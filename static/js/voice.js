// The spoken caption: it plays when the result is shown (the picture, or the prompt when there is no
// ComfyUI to render it), whichever of the two arrives last starts it.

import { api, jsonPost } from "./api.js";
import { showError, showMessage, ui } from "./dom.js";
import { addNotes } from "./notes.js";

const voice = { url: null, resultShown: false };

export function resetVoice() {
  ui.voice.hidden = true;
  ui.voice.removeAttribute("src");
  ui.spokenCaption.textContent = "";
  voice.url = null;
  voice.resultShown = false;
}

export function playVoice(url) {
  ui.voice.src = url;
  ui.voice.hidden = false;
  ui.spokenCaption.textContent = ui.caption.value;
  ui.voice.play().catch(() => {
    // Autoplay can be blocked until the page has been clicked: the player stays visible.
    addNotes(["Press play to hear the caption."]);
  });
}

export function voiceReady(url) {
  voice.url = url;
  if (voice.resultShown) playVoice(url);
}

export function voiceKnown() {
  return voice.url !== null;
}

export function resultShown() {
  if (voice.resultShown) return;
  voice.resultShown = true;
  if (voice.url) playVoice(voice.url);
}

// The Speak button says the caption field's text again, edited or not.
export function initSpeak() {
  ui.speak.addEventListener("click", async () => {
    const text = ui.caption.value.trim();
    if (!text) return;
    ui.speak.disabled = true;
    try {
      const result = await api("/api/speak", jsonPost({ text, engine: ui.ttsEngine.value || undefined }));
      if (result.audio_url) playVoice(result.audio_url);
      else showMessage("The voice is off.", "");
    } catch (err) {
      showError(err);
    } finally {
      ui.speak.disabled = false;
    }
  });
}
