// The spoken caption: it plays when the result is shown (the picture, or the prompt when there is no
// ComfyUI to render it), whichever of the two arrives last starts it.

import { api, jsonPost } from "./api.js";
import { showError, showMessage, ui } from "./dom.js";
import { captionLanguage, languageName } from "./language.js";
import { addNotes } from "./notes.js";

const voice = { url: null, resultShown: false, by: null };

// "Spoken by espeak-ng's de+m3 voice (German)": which voice read the caption, and in which language.
function showVoice(spoken) {
  if (!spoken || !spoken.voice) {
    ui.voiceBy.textContent = "";
    return;
  }
  const engine = { espeak: "espeak-ng", piper: "Piper", coqui: "Coqui" }[spoken.engine] || spoken.engine;
  const language = spoken.language ? ` (${languageName(spoken.language)})` : "";
  ui.voiceBy.textContent = `Spoken by ${engine}'s ${spoken.voice} voice${language}.`;
}

export function resetVoice() {
  ui.voice.hidden = true;
  ui.voice.removeAttribute("src");
  ui.spokenCaption.textContent = "";
  ui.voiceBy.textContent = "";
  voice.url = null;
  voice.by = null;
  voice.resultShown = false;
}

export function playVoice(url, spoken = voice.by) {
  showVoice(spoken);
  ui.voice.src = url;
  ui.voice.hidden = false;
  ui.spokenCaption.textContent = ui.caption.value;
  ui.voice.play().catch(() => {
    // Autoplay can be blocked until the page has been clicked: the player stays visible.
    addNotes(["Press play to hear the caption."]);
  });
}

// spoken: the audio event (engine, voice, language), when known.
export function voiceReady(url, spoken = null) {
  voice.url = url;
  voice.by = spoken;
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
      const result = await api("/api/speak", jsonPost({ text, engine: ui.ttsEngine.value || undefined,
        language: captionLanguage() }));
      if (result.audio_url) playVoice(result.audio_url, result);
      else showMessage("The voice is off.", "");
    } catch (err) {
      showError(err);
    } finally {
      ui.speak.disabled = false;
    }
  });
}
