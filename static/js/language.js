// The language the person speaks: the tab's choice (sent with every job, remembered for the tab), the
// language Whisper heard beside the transcript with its probability, one line asking when Whisper is
// unsure, the switch offered to a browser set to another language, and a correction while recording
// (the live stream uses it for the rest of the recording).

import { ui } from "./dom.js";

const TAB_KEY = "s2i-language";  // sessionStorage: the tab's language
const OFFER_KEY = "s2i-language-offer";  // localStorage: the person answered the offer once
const BROWSER_CODES = { nb: "no", iw: "he", fil: "tl", jv: "jw" };  // browser codes Whisper writes otherwise
const corrections = new Set();  // listeners while a recording streams: called with the corrected code
let heard = null;  // { language, language_probability, language_unsure } of the last transcript

function displayNames(locale) {
  try { return new Intl.DisplayNames([locale], { type: "language" }); } catch (_) { return null; }
}
const english = displayNames("en");

// "German" for de (the page's language is English); the code when the browser has no name for it.
export function languageName(code, names = english) {
  if (!code) return "";
  try { return (names && names.of(code)) || code; } catch (_) { return code; }
}

function percent(probability) {
  return `${Math.round(probability * 100)} %`;
}

function hasChoice(code) {
  return [...ui.language.options].some((option) => option.value === code);
}

// The language a caption is in: what Whisper heard, else the tab's choice; undefined when unknown.
export function captionLanguage() {
  if (heard && heard.language) return heard.language;
  const chosen = ui.language.value;
  return chosen && chosen !== "auto" ? chosen : undefined;
}

// Whisper's English translation of the last recording, for Rewrite; undefined when there is none.
export function heardTranslation() {
  return (heard && heard.translation) || undefined;
}

// Called by the live stream while it records: corrections go to it (see stream.js); answers the unsubscribe.
export function onCorrection(listener) {
  corrections.add(listener);
  return () => corrections.delete(listener);
}

function choose(code) {
  ui.language.value = code;
  if (code) sessionStorage.setItem(TAB_KEY, code);
  else sessionStorage.removeItem(TAB_KEY);
  ui.languageAsk.hidden = true;
  for (const listener of corrections) listener(code || "auto");
}

// What Whisper heard (a transcript event, a live partial or final frame, a job's snapshot).
export function showHeard(answer) {
  if (!answer || !answer.language) return;
  heard = answer;
  const name = languageName(answer.language);
  const sure = answer.language_probability === null || answer.language_probability === undefined
    ? "" : ` · ${percent(answer.language_probability)}`;
  ui.languageHeard.textContent = `Heard: ${name}${sure}`;
  ui.languageHeard.hidden = false;
  const unsure = answer.language_unsure ?? (answer.language_probability != null && answer.language_probability < 0.5);
  ui.languageAsk.hidden = !unsure;
  if (unsure) {
    ui.languageAskText.textContent = `Whisper is not sure you spoke ${name} (${percent(answer.language_probability)}).`
      + " Which language was it?";
  }
}

export function forgetHeard() {
  heard = null;
  ui.languageHeard.hidden = true;
  ui.languageAsk.hidden = true;
}

// The browser's own language, as one of Whisper's codes, when it is not English and Whisper knows it.
function browserLanguage() {
  const base = (navigator.language || "en").split("-")[0].toLowerCase();
  const code = BROWSER_CODES[base] || base;
  return code !== "en" && hasChoice(code) ? code : null;
}

function offerSwitch() {
  const code = browserLanguage();
  if (!code || ui.language.value || localStorage.getItem(OFFER_KEY)) return;
  const own = languageName(code, displayNames(code));
  ui.languageOfferText.textContent = `Your browser speaks ${own} (${languageName(code)}).`;
  ui.languageOfferButton.textContent = `Speak ${own}`;
  ui.languageOfferButton.onclick = () => {
    choose(code);
    localStorage.setItem(OFFER_KEY, code);
    ui.languageOffer.hidden = true;
  };
  ui.languageOffer.hidden = false;
}

// The options read as names ("German (de)"), the tab's language comes back, and the offer is made.
export function initLanguage() {
  const saved = ui.settingsForm.elements.language;  // the settings panel's menu of the same codes
  for (const option of [...ui.language.options, ...(saved ? saved.options : [])]) {
    const code = option.value;
    option.value = code;  // an <option> without a value attribute would take its new label as its value
    if (code === "auto") option.textContent = "Detect the language";
    else if (code) option.textContent = `${languageName(code)} (${code})`;
  }
  const remembered = sessionStorage.getItem(TAB_KEY);
  if (remembered && hasChoice(remembered)) ui.language.value = remembered;
  ui.language.addEventListener("change", () => choose(ui.language.value));
  ui.languageAskChoose.addEventListener("click", () => ui.language.focus());
  ui.languageOfferClose.addEventListener("click", () => {
    localStorage.setItem(OFFER_KEY, "no");
    ui.languageOffer.hidden = true;
  });
  offerSwitch();
}

// The saved default's name on the empty option ("Saved default: English").
export function showSavedLanguage(code) {
  const empty = ui.language.options[0];
  if (empty && empty.value === "") {
    empty.textContent = `Saved default: ${code === "auto" ? "detect" : languageName(code)}`;
  }
}
