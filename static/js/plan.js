// The prompt plan (prompt, negative prompt, caption) and its live streaming, shared by the
// Rewrite button (server-sent events) and jobs (the relay's "token" and "prompt" events).

import { SESSION_ID, jsonPost, streamEvents } from "./api.js";
import { showError, showMessage, ui } from "./dom.js";
import { captionLanguage, heardTranslation } from "./language.js";

// Shows the "prompt" field of the JSON the LLM is still writing, or its raw text.
function partialPrompt(text) {
  const match = text.match(/"prompt"\s*:\s*"((?:[^"\\]|\\.)*)/);
  if (!match) return text.trimStart().startsWith("{") ? "" : text;
  try { return JSON.parse(`"${match[1].replace(/\\$/, "")}"`); } catch (_) { return match[1]; }
}

// The LLM's tokens so far; each one shows the prompt as far as it is written.
export class PromptStream {
  constructor() {
    this.text = "";
  }

  add(token) {
    this.text += token;
    ui.prompt.value = partialPrompt(this.text);
  }
}

export function showPlan(plan) {
  ui.prompt.value = plan.prompt;
  ui.negative.value = plan.negative_prompt;
  ui.caption.value = plan.caption;
  ui.promptSource.hidden = false;
  ui.promptSource.className = "badge " + plan.source;
  const offline = plan.words_from === "translation" ? "offline, from a machine translation" : "written offline";
  ui.promptSource.textContent = { llm: `written by ${plan.model}`, offline, user: "your prompt" }[plan.source];
  const timing = plan.elapsed_s ? `, ${plan.elapsed_s.toFixed(2)} s` : "";
  const family = plan.family ? `, for ${plan.family}` : "";  // the kind of model it was written for
  ui.promptMeta.textContent = `${plan.preset} preset${family}${timing}` + (plan.notice ? ` — ${plan.notice}` : "");
}

function planReady(plan) {
  showPlan(plan);
  if (plan.source === "llm") showMessage("Prompt ready. Edit it if you like, then press Generate.", "ok");
  else showMessage(`Prompt ready. ${plan.notice || "It was written offline."}`, "busy");
}

// Rewrite: the prompt alone from the transcript, without a render.
async function writePrompt(busy) {
  const transcript = ui.transcript.value.trim();
  if (!transcript) {
    showMessage("The transcript is empty: record or type a request first.", "error");
    return;
  }
  ui.rewrite.disabled = true;
  ui.prompt.value = "";
  ui.promptSource.hidden = true;
  ui.promptMeta.textContent = "";
  showMessage("Writing the prompt…", "busy");
  const stream = new PromptStream();
  try {
    // the picture's model (this job's, else the saved one) decides how the prompt is written; the language
    // spoken, how the caption is written
    const request = jsonPost({ transcript, preset: ui.preset.value, model: ui.model.value || undefined, session: SESSION_ID,
      checkpoint: ui.checkpoint.value || undefined, cfg: ui.cfg.value || undefined,
      language: captionLanguage(), translation: heardTranslation() });
    for await (const { event, data } of streamEvents("/api/prompt", request)) {
      if (event === "token") stream.add(data.text);
      else if (event === "result") planReady(data);
      else if (event === "error") throw new Error(data.message);
    }
  } catch (err) {
    showError(err);
  } finally {
    ui.rewrite.disabled = busy();
  }
}

// busy(): a job is under way, which keeps Rewrite disabled after its own request ends.
export function initRewrite(busy) {
  ui.rewrite.addEventListener("click", () => writePrompt(busy));
}
