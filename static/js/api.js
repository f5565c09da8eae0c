// Talking to the server: JSON requests and server-sent events, and one way to read a refusal.

// One id per browser tab: its jobs' events come only to it, and follow-ups edit its own last prompt.
export const SESSION_ID = sessionStorage.getItem("s2i-session") || (() => {
  const id = crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now();
  sessionStorage.setItem("s2i-session", id);
  return id;
})();

// What a request meets when nothing answers (fetch says only "Failed to fetch").
export const SERVER_AWAY = "the speech2image server is not answering — is it still running?";

async function send(path, options) {
  try {
    return await fetch(path, options);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw Object.assign(new Error(SERVER_AWAY), { code: "server_away" });
  }
}

// The server refuses with {"error": {"code", "message"}}; a proxy's or a crash's page has no such body.
async function refusal(response) {
  const body = await response.json().catch(() => null);
  const error = body && body.error ? body.error : { message: `the server answered ${response.status}` };
  return Object.assign(new Error(error.message), { code: error.code });
}

export async function api(path, options = {}) {
  const response = await send(path, options);
  if (!response.ok) throw await refusal(response);
  return response.json().catch(() => null);
}

export function jsonPost(body) {
  return { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
}

// Server-sent events over a POST (EventSource can only GET): yields { event, data } as they arrive.
export async function* streamEvents(path, options) {
  const response = await send(path, { ...options, headers: { ...options.headers, Accept: "text/event-stream" } });
  if (!response.ok) throw await refusal(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = (block.match(/^event: (.*)$/m) || [])[1] || "message";
      const data = (block.match(/^data: (.*)$/m) || [])[1];
      if (data) yield { event, data: JSON.parse(data) };
    }
  }
}
