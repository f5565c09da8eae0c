// The notes on a job (a substituted checkpoint, no live preview, a voice that failed…): one item
// each, written as a sentence, `code` shown as code. A note this tab has already shown for an
// earlier job is not repeated; where the settings hold the fix, the note offers it.

import { sentence, ui, withCode } from "./dom.js";

const SEEN_KEY = "s2i-notes-seen";

// Notes whose fix is a saved setting: a button opens the settings panel at that field.
const FIXES = [
  { match: /checkpoint .* is not in ComfyUI/i, label: "Choose a checkpoint", setting: "checkpoint" },
];

const shownForJob = new Set();  // this job's notes, whichever event brought them

function seenBefore() {
  try {
    return new Set(JSON.parse(sessionStorage.getItem(SEEN_KEY) || "[]"));
  } catch (_) {
    return new Set();
  }
}

function openSetting(name) {
  const panel = document.getElementById("settings-panel");
  panel.open = true;
  const field = ui.settingsForm.elements[name];
  if (field) {
    field.scrollIntoView({ behavior: "smooth", block: "center" });
    field.focus({ preventScroll: true });
  }
}

function noteItem(note) {
  const li = document.createElement("li");
  li.append(...withCode(sentence(note)));
  const fix = FIXES.find((f) => f.match.test(note));
  if (fix) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = fix.label;
    button.addEventListener("click", () => openSetting(fix.setting));
    li.append(" ", button);
  }
  return li;
}

export function resetNotes() {
  shownForJob.clear();
  ui.notes.replaceChildren();
}

// Events repeat a job's notes as they grow; each one shows once, and not at all if seen before.
export function addNotes(notes) {
  const seen = seenBefore();
  for (const note of notes || []) {
    if (!note || shownForJob.has(note)) continue;
    shownForJob.add(note);
    if (seen.has(note)) continue;
    seen.add(note);
    ui.notes.append(noteItem(note));
  }
  try {
    sessionStorage.setItem(SEEN_KEY, JSON.stringify([...seen]));
  } catch (_) { /* storage full or off: notes may repeat */ }
}
