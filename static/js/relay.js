// The live relay: one websocket per tab carries its jobs' events; it reconnects with a growing pause.
// Each connection names the job the tab follows, so after a network blip or a server restart the
// server answers "resume" with that job as it stands now, finished meanwhile or picked up again.

import { SESSION_ID } from "./api.js";

const FIRST_RETRY_MS = 500;
const LONGEST_RETRY_MS = 8000;

// followedJob(): the id of the job the tab shows, or null.
export function connectRelay(onEvent, followedJob = () => null) {
  let retryDelay = FIRST_RETRY_MS;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const job = followedJob();
    const socket = new WebSocket(`${scheme}://${location.host}/ws?session=${encodeURIComponent(SESSION_ID)}` +
      (job ? `&job=${encodeURIComponent(job)}` : ""));
    socket.onmessage = (message) => {
      retryDelay = FIRST_RETRY_MS;
      onEvent(JSON.parse(message.data));
    };
    socket.onclose = () => {
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, LONGEST_RETRY_MS);
    };
  };
  connect();
}
