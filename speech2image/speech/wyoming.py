"""One Wyoming server (the Home Assistant voice protocol): speech-to-text with
wyoming-faster-whisper, text-to-speech with wyoming-piper. The events and their framing come
from the ``wyoming`` package; this module only opens the socket and tells failures apart:
refused, closed mid-request, silent too long, an ``error`` event, or bytes that are no Wyoming.
"""
from __future__ import annotations

import select
import socket
import time

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, read_event, write_event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

from ..config import SpeechServer
from .server import CONNECT_TIMEOUT_S, ServerFailed, describe_bytes, pcm16, wav_from_pcm

RATE = 16000
CHUNK_SAMPLES = RATE  # one second of audio per audio-chunk event
MAX_LINE = 1 << 20  # a Wyoming header line is small; a longer one is not Wyoming


class _Stream:
    """The socket as the file ``wyoming.event`` reads and writes, counting what arrived (so an answer
    it could not parse is told from a closed connection) and bounding a header line."""

    def __init__(self, sock: socket.socket):
        self._file = sock.makefile("rwb")
        self.received = bytearray()

    def readline(self) -> bytes:
        line = self._file.readline(MAX_LINE)
        self.received += line[:200] if len(self.received) < 200 else b""
        if len(line) >= MAX_LINE:
            raise ServerFailed("answered something that is not the Wyoming protocol (an endless line)", garbage=True)
        return line

    def read(self, size: int) -> bytes:
        return self._file.read(size)

    def writelines(self, lines) -> None:
        self._file.writelines(lines)

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class Connection:
    """One request's connection; ``with`` closes it."""

    def __init__(self, server: SpeechServer, timeout_s: float):
        self.timeout_s = timeout_s
        try:
            self.sock = socket.create_connection((server.host, server.port),
                                                 timeout=min(CONNECT_TIMEOUT_S, timeout_s))
        except socket.timeout:
            raise ServerFailed(f"did not accept a connection within {min(CONNECT_TIMEOUT_S, timeout_s):g} s") \
                from None
        except OSError as exc:
            raise ServerFailed(f"refused the connection ({exc.strerror or exc})") from None
        self.sock.settimeout(timeout_s)
        self.stream = _Stream(self.sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.sock.fileno() < 0:
            return
        try:
            self.stream.close()  # flushes: the peer may be gone
        except OSError:
            pass
        finally:
            self.sock.close()

    def answered(self) -> bool:
        """Whether the server has sent something (or closed) that was not read yet (before any read: the
        socket's own buffer is all there is)."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def send(self, event: Event) -> None:
        try:
            write_event(event, self.stream)  # type: ignore[arg-type]  # typed BinaryIO; any file-like will do
        except OSError:
            # It stopped reading: what it said before closing tells a non-Wyoming server from a dead one.
            self.sock.settimeout(0.5)
            try:
                self.receive()
            except ServerFailed as exc:
                if exc.garbage:
                    raise
            raise ServerFailed("closed the connection mid-request") from None

    def receive(self) -> Event:
        seen = len(self.stream.received)
        try:
            event = read_event(self.stream)  # type: ignore[arg-type]  # typed BinaryIO; any file-like will do
        except ServerFailed:
            raise
        except socket.timeout:
            raise ServerFailed(f"did not answer within {self.timeout_s:g} s") from None
        except OSError:
            raise ServerFailed("closed the connection mid-request") from None
        except Exception:  # JSON of another shape: no 'type', a list...
            event = None
            seen = -1
        if event is None:
            if len(self.stream.received) > seen:
                raise ServerFailed("answered something that is not the Wyoming protocol "
                                   f"({describe_bytes(bytes(self.stream.received))})", garbage=True)
            raise ServerFailed("closed the connection mid-request")
        if Error.is_type(event.type):
            raise ServerFailed(f"said: {Error.from_event(event).text}")
        return event


def describe(server: SpeechServer, timeout_s: float) -> Info:
    with Connection(server, timeout_s) as conn:
        conn.send(Describe().event())
        event = conn.receive()
        if not Info.is_type(event.type):
            raise ServerFailed(f"answered '{event.type}' to Describe instead of 'info'", garbage=True)
        try:
            return Info.from_event(event)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ServerFailed("answered a malformed 'info'", garbage=True) from None


def asr_info(info: Info) -> dict:
    """What a recognition server offers: its programs, models and languages."""
    models = [m for program in info.asr for m in program.models if m.installed]
    return {"program": ", ".join(f"{p.name} {p.version or ''}".strip() for p in info.asr) or None,
            "models": [m.name for m in models],
            "languages": sorted({lang for m in models for lang in (m.languages or [])})}


def tts_info(info: Info) -> dict:
    voices = [v for program in info.tts for v in program.voices if v.installed]
    return {"program": ", ".join(f"{p.name} {p.version or ''}".strip() for p in info.tts) or None,
            "voices": [v.name for v in voices],
            "languages": sorted({lang for v in voices for lang in (v.languages or [])}),
            "voice_languages": {v.name: list(v.languages or []) for v in voices}}


class Upload:
    """One Transcribe stream: ``Transcribe`` and ``AudioStart`` at once, the audio as it comes (``send``),
    the transcript after ``AudioStop`` (``finish``). wyoming-faster-whisper writes the chunks to a file as
    they arrive and reads that file once, at AudioStop (``supports_transcript_streaming: false``): a stream
    costs the network its audio once, and the server one read at its end."""

    def __init__(self, server: SpeechServer, language: str | None, model: str | None, timeout_s: float):
        self.conn = Connection(server, timeout_s)
        self.sent = 0  # bytes of PCM sent
        try:
            self.conn.send(Transcribe(name=model or None, language=language or None).event())
            self.conn.send(AudioStart(rate=RATE, width=2, channels=1).event())
        except BaseException:
            self.close()
            raise

    def send(self, pcm: bytes) -> None:
        """More audio; ServerFailed when the server ended the stream before its end (it closed, said an
        error, or answered already: a server that ends speech itself, e.g. --vad-endpointing)."""
        if self.conn.answered():
            event = self.conn.receive()  # raises for a close or an error
            raise ServerFailed(f"ended the stream before the recording did (it answered '{event.type}')")
        step = CHUNK_SAMPLES * 2
        for start in range(0, len(pcm), step):
            self.conn.send(AudioChunk(rate=RATE, width=2, channels=1, audio=pcm[start:start + step]).event())
        self.sent += len(pcm)

    def finish(self) -> str:
        """AudioStop, then the transcript (transcript-start / -chunk of streaming servers come before it)."""
        try:
            self.conn.send(AudioStop().event())
            while True:
                event = self.conn.receive()
                if Transcript.is_type(event.type):
                    try:
                        return (Transcript.from_event(event).text or "").strip()
                    except (KeyError, TypeError):
                        raise ServerFailed("answered a transcript without text", garbage=True) from None
        finally:
            self.close()

    def close(self) -> None:
        self.conn.__exit__()


def transcribe(server: SpeechServer, samples: np.ndarray, language: str | None, model: str | None,
               timeout_s: float) -> str:
    """A whole recording: Transcribe -> AudioStart / AudioChunk... / AudioStop -> Transcript."""
    upload = Upload(server, language, model, timeout_s)
    try:
        upload.send(pcm16(samples))
    except BaseException:
        upload.close()
        raise
    return upload.finish()


def synthesize(server: SpeechServer, text: str, voice: str | None, timeout_s: float) -> tuple[bytes, float]:
    """Synthesize -> AudioStart / AudioChunk... / AudioStop; the WAV and the seconds to the first audio."""
    started = time.perf_counter()
    first = None
    pcm = bytearray()
    audio_format = None
    with Connection(server, timeout_s) as conn:
        conn.send(Synthesize(text=text, voice=SynthesizeVoice(name=voice) if voice else None).event())
        while True:
            event = conn.receive()
            if AudioStart.is_type(event.type):
                start = conn_check(AudioStart.from_event, event, "audio-start")
                audio_format = (start.rate, start.width, start.channels)
            elif AudioChunk.is_type(event.type):
                chunk = conn_check(AudioChunk.from_event, event, "audio-chunk")
                audio_format = audio_format or (chunk.rate, chunk.width, chunk.channels)
                first = first if first is not None else time.perf_counter() - started
                pcm += chunk.audio
            elif AudioStop.is_type(event.type):
                break
    if audio_format is None or not pcm:
        raise ServerFailed("answered no audio")
    assert first is not None  # audio came, so the first chunk set it
    return wav_from_pcm(bytes(pcm), *audio_format), first


def conn_check(parse, event: Event, what: str):
    try:
        return parse(event)
    except (KeyError, TypeError, ValueError):
        raise ServerFailed(f"answered a malformed {what}", garbage=True) from None
