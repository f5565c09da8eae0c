// The page's elements, the message line under the recorder, and small text helpers.

export const $ = (id) => document.getElementById(id);

// Every element with an id, camelCased: "record-label" is ui.recordLabel. Module scripts run once
// the document is parsed, so all of them are there.
export const ui = Object.fromEntries([...document.querySelectorAll("[id]")]
  .map((element) => [element.id.replace(/-(\w)/g, (_, c) => c.toUpperCase()), element]));

export function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function showMessage(text, kind = "") {
  ui.message.textContent = text;
  ui.message.className = "message " + kind;
  ui.message.hidden = !text;
}

export function showError(err) {
  showMessage(capitalize(err.message) + ".", "error");
}
