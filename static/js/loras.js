// The LoRA pickers (the saved setting and the job's own): rows of a LoRA and its strength, kept as JSON
// in the picker's hidden input, which the form and the job options send as they are. An empty list
// leaves the input empty: for a job that is the saved setting.

const STRENGTH = { min: "-5", max: "5", step: "0.05" };

function read(hidden) {
  try {
    const entries = JSON.parse(hidden.value || "[]");
    return Array.isArray(entries) ? entries : [];
  } catch (_) {
    return [];
  }
}

function write(picker, entries) {
  const hidden = picker.querySelector("input[type=hidden]");
  hidden.value = entries.length ? JSON.stringify(entries) : "";
  draw(picker);
  hidden.dispatchEvent(new Event("input", { bubbles: true }));  // the override count follows
}

function row(picker, entry, index) {
  const line = document.createElement("span");
  line.className = "lora-row";
  const name = Object.assign(document.createElement("span"), { className: "lora-name", textContent: entry.name });
  const strength = Object.assign(document.createElement("input"), { type: "number", value: entry.strength, ...STRENGTH });
  strength.setAttribute("aria-label", `Strength of ${entry.name}`);
  strength.addEventListener("change", (event) => {
    event.stopPropagation();
    const entries = read(picker.querySelector("input[type=hidden]"));
    entries[index] = { name: entry.name, strength: Number(strength.value) };
    write(picker, entries);
  });
  const remove = Object.assign(document.createElement("button"), { type: "button", className: "link", textContent: "×" });
  remove.setAttribute("aria-label", `Remove ${entry.name}`);
  remove.addEventListener("click", () => write(picker, read(picker.querySelector("input[type=hidden]"))
    .filter((_, i) => i !== index)));
  line.append(name, strength, remove);
  return line;
}

function draw(picker) {
  const entries = read(picker.querySelector("input[type=hidden]"));
  picker.querySelector(".lora-rows").replaceChildren(...entries.map((entry, i) => row(picker, entry, i)));
}

// A value set from outside (the saved settings loaded): show it.
export function showLoras(hidden, entries) {
  hidden.value = entries && entries.length ? JSON.stringify(entries) : "";
  draw(hidden.closest("[data-lora-picker]"));
}

export function initLoras() {
  for (const picker of document.querySelectorAll("[data-lora-picker]")) {
    const add = picker.querySelector(".lora-add");
    add.addEventListener("change", (event) => {
      event.stopPropagation();
      const entries = read(picker.querySelector("input[type=hidden]"));
      if (add.value && !entries.some((entry) => entry.name === add.value)) {
        write(picker, [...entries, { name: add.value, strength: 1 }]);
      }
      add.value = "";
    });
    draw(picker);
  }
}
