"""One live recording on a recognition server while it is spoken: the audio goes out as it arrives,
on one Wyoming connection per recording, and the final transcript is the server's one read of it at
Stop, so no pass re-sends what the server already has.

wyoming-faster-whisper (like every Wyoming ASR that says ``supports_transcript_streaming: false``)
keeps a stream's chunks in a file and reads them once, at ``AudioStop``, then closes: one stream
gives one transcript. So the stream carries the audio for the final text, and the partial texts
while speaking come another way (``stream.LiveTranscriber``: short passes of the current phrase).

When the server fails mid-recording (it closes, says an error, answers early, stops reading), the
recording moves to another server that streams and everything heard so far is sent there first,
so no word is lost; with no such server left, the final text is one request of the whole recording
through the pool (an OpenAI-compatible server or ``local`` takes only whole recordings anyway).
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

import numpy as np

from .members import AsrMember
from .server import ServerFailed
from .wyoming import Upload

log = logging.getLogger(__name__)


class Upstream:
    """``feed`` each frame as it arrives, ``finish`` for the final text, ``close`` when the recording ends."""

    def __init__(self, pool, language: str | None, model: str, so_far: Callable[[], bytes],
                 whole: Callable[[np.ndarray], str]):
        """``pool``: the SpeechPool of recognition members; ``so_far``: the recording's PCM until now (what a
        switch re-sends); ``whole``: the pool's request of a whole recording (the fallback)."""
        self.pool = pool
        self.language = language
        self.model = model
        self.so_far = so_far
        self.whole = whole
        self.member: AsrMember | None = None
        self.upload: Upload | None = None
        self.switches = 0
        self._tried: dict[str, str] = {}
        self._started = False  # a server was asked for: a recording that never streams asks none
        self._lock = threading.Lock()

    @property
    def url(self) -> str | None:
        return self.member.url if self.member is not None else None

    def feed(self, pcm: bytes) -> None:
        """The newest frame (already in ``so_far``); the first frame opens the stream."""
        with self._lock:
            if not self._started:
                self._started = True
                self._move()  # opens a stream and sends so_far(), this frame included
                return
            if self.upload is None:
                return  # no server streams: the whole recording goes at the end
            try:
                self.upload.send(pcm)
            except ServerFailed as exc:
                self._failed(exc, self.upload)
                self._move()

    def finish(self, samples: Callable[[], np.ndarray]) -> str:
        """The final transcript: the streaming server's read at AudioStop, or, when it fails or none
        streams, the whole recording through the pool (once more elsewhere if that fails)."""
        with self._lock:
            if self.upload is not None:
                upload, self.upload = self.upload, None
                try:
                    text = upload.finish()
                except ServerFailed as exc:
                    self._failed(exc, upload)
                else:
                    self.pool.release(self.member, None)
                    return text
        return self.whole(samples())

    def close(self) -> None:
        with self._lock:
            if self.upload is not None:
                self.upload.close()
                self.upload = None
                self.pool.release(self.member, None, served=False)

    # --- under the lock ---------------------------------------------------------------------

    def _failed(self, exc: ServerFailed, upload=None) -> None:
        assert self.member is not None  # a failure is a claimed member's
        log.warning("speech recognition server %s %s (live recording, %d bytes sent to it)", self.member.url,
                    exc.reason, upload.sent if upload is not None else 0)
        if upload is not None:
            upload.close()
        self.upload = None
        self._tried[self.member.url] = exc.reason
        self.pool.release(self.member, exc)

    def _move(self) -> None:
        """A stream on the least busy server that streams and was not tried, with everything so far."""
        streamers = [m for m in self.pool.members if m.streams]
        while streamers:
            member = self.pool.claim(self._tried, frozenset(m.url for m in streamers))
            if member is None:
                break
            self.member = member
            upload = None
            try:
                upload = member.open_stream(self.language, self.model)
                upload.send(self.so_far())
            except ServerFailed as exc:
                self._failed(exc, upload)
                continue
            except Exception:  # a bug or a library's surprise: the member must not stay claimed
                log.exception("speech recognition server %s failed unexpectedly", member.url)
                self._failed(ServerFailed("failed unexpectedly (the app's log has the details)"), upload)
                continue
            self.upload = upload
            if self._tried:
                self.switches += 1
                log.info("live recording moved to %s with the %d bytes heard so far", member.url, upload.sent)
            return
        self.member, self.upload = None, None
