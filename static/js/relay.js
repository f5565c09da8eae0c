// The live relay: one websocket per tab carries its jobs' events; it reconnects with a growing pause.

import { SESSION_ID } from "./api.js";

const FIRST_RETRY_MS = 500;
const LONGEST_RETRY_MS = 8000;

export function connectRelay(onEvent) {
  let retryDelay = FIRST_RETRY_MS;
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws?session=${encodeURIComponent(SESSION_ID)}`);
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
