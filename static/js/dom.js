// The page's elements, the message line under the recorder, and small text helpers.

export const $ = (id) => document.getElementById(id);

// Every element with an id, camelCased: "record-label" is ui.recordLabel. Module scripts run once
// the document is parsed, so all of them are there. Asking for one the page does not have throws at
// once, naming it (main.js shows that on the page), instead of failing later on an undefined.
const elements = Object.fromEntries([...document.querySelectorAll("[id]")]
  .map((element) => [element.id.replace(/-(\w)/g, (_, c) => c.toUpperCase()), element]));

export class MissingElement extends Error {}

export const ui = new Proxy(elements, {
  get(found, name) {
    if (typeof name !== "string" || name in found) return found[name];
    const id = name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
    throw new MissingElement(`the page has no element #${id}; the template and the scripts disagree`);
  },
});

export function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// A message as a sentence: a capital first letter and a closing full stop (unless it has its own).
export function sentence(text) {
  const trimmed = String(text || "").trim();
  if (!trimmed) return "";
  return capitalize(trimmed) + (/[.!?…:]$/.test(trimmed) ? "" : ".");
}

// Text whose `backticked` parts are code, as nodes: the server's words are never parsed as HTML.
export function withCode(text) {
  return String(text).split(/`([^`]+)`/).map((part, i) => {
    if (i % 2 === 0) return document.createTextNode(part);
    const code = document.createElement("code");
    code.textContent = part;
    return code;
  });
}

export function showMessage(text, kind = "") {
  ui.message.textContent = text;
  ui.message.className = "message " + kind;
  ui.message.hidden = !text;
}

export function showError(err) {
  showMessage(sentence(err.message), "error");
}
