// The typed request box: emptied once a request is sent, which stays in this tab's history; the Up and
// Down arrows bring earlier ones back (as in a terminal).

import { ui } from "./dom.js";

const sent = [];  // oldest first
let back = 0;  // how far Up has gone into `sent`; 0: the box holds new text

// The request was sent: keep it, and empty the box for the next one.
export function typedSent(text) {
  if (sent[sent.length - 1] !== text) sent.push(text);
  back = 0;
  ui.typed.value = "";
}

function recall(step) {
  const to = Math.max(0, Math.min(sent.length, back + step));
  if (to === back) return;
  back = to;
  ui.typed.value = back ? sent[sent.length - back] : "";
  ui.typed.setSelectionRange(ui.typed.value.length, ui.typed.value.length);
}

export function initTyped() {
  ui.typed.addEventListener("keydown", (event) => {
    if (event.key === "ArrowUp") recall(1);
    else if (event.key === "ArrowDown") recall(-1);
    else return;
    event.preventDefault();
  });
}
