"""The fake ComfyUI replaying a recorded run: a real trace's websocket frames, in their order and rhythm."""
from __future__ import annotations

import io
import json
import struct
import time

from PIL import Image


def jpeg(color, size=(64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


class Replay:
    """Mixed into FakeComfyUI (``knobs.replay`` names the trace)."""

    def _replay(self, client, prompt_id) -> None:
        """Send a recorded run's frames in their order and rhythm, with our prompt id in them."""
        trace = json.loads(open(self.knobs.replay).read())
        recorded = next(e["body"]["prompt_id"] for e in trace if e.get("http") == "POST /prompt")
        history = next((e["body"][recorded] for e in trace if e.get("http", "").startswith("GET /history")), None)
        started = time.monotonic()
        for event in trace:
            if "t" in event:
                delay = started + event["t"] / self.knobs.replay_speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if "ws" in event:
                if event["ws"].get("type") == "status":
                    continue  # the connection's own greeting was sent already
                message = json.loads(json.dumps(event["ws"]).replace(recorded, prompt_id))
                if message["type"] == "executed":  # ComfyUI has written the file when it says so
                    for image in message["data"]["output"].get("images", []):
                        buf = io.BytesIO()
                        Image.new("RGB", (128, 128), (10, 20, 30)).save(buf, "PNG")
                        self.files[(image["filename"], image["type"])] = buf.getvalue()
                if message["type"] == "executing" and message["data"].get("node") is None and history:
                    self.history[prompt_id] = json.loads(json.dumps(history).replace(recorded, prompt_id))
                self._send(client, message)
            elif "ws_binary" in event:
                frame = event["ws_binary"]
                image = jpeg((200, 100, 50))
                if frame["event"] == 4:
                    meta = json.dumps(frame["metadata"]).replace(recorded, prompt_id).encode()
                    self._send(client, struct.pack(">II", 4, len(meta)) + meta + image)
                else:
                    self._send(client, struct.pack(">II", 1, frame["u32_2"]) + image)
