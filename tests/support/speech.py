"""Spoken test clips made at test time, so no test depends on a file nobody can regenerate,
and how what Whisper heard is scored against what was said."""
from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import jiwer

from speech2image.speech.tts import PiperEngine

# How transcripts are compared for a word error rate: case, punctuation and spacing do not count.
NORMALIZE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)

_piper: PiperEngine | None = None


def piper_wav(text: str, path: Path) -> Path:
    """Speech in the bundled CC0 voice, loaded by the app's own Piper engine.

    Without noise (``noise_scale=0``) the same text gives the same audio on every run, so a
    test's clip does not change from one run to the next (Piper's default varies it)."""
    global _piper
    if _piper is None:
        _piper = PiperEngine()
        _piper.load()
    from piper import SynthesisConfig
    with wave.open(str(path), "wb") as out:
        _piper.model.synthesize_wav(text, out, syn_config=SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0))
    return path


def espeak_wav(text: str, path: Path, voice: str = "en-us", speed: int = 150) -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
    return path


def encode(source: Path, fmt: str) -> Path:
    """Re-encode a WAV the way Chrome's MediaRecorder uploads it (webm/opus, ogg/opus)."""
    target = source.with_suffix("." + fmt)
    codec = ["-c:a", "libopus", "-b:a", "32k"] if fmt in ("webm", "ogg") else []
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(source), *codec, str(target)],
        check=True,
    )
    return target


def silence_wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as wav_file:
        wav_file.setnchannels(1)
        wav_file.setsampwidth(2)
        wav_file.setframerate(rate)
        wav_file.writeframes(b"\x00\x00" * int(seconds * rate))
    return path


def pad_wav(source: Path, target: Path, lead_s: float, tail_s: float) -> Path:
    """Surround speech with silence: the fake microphone loops its file, so the
    browser test needs quiet edges to cut the loop cleanly."""
    with wave.open(str(source), "rb") as src:
        params = src.getparams()
        frames = src.readframes(src.getnframes())
    pad = b"\x00" * (params.sampwidth * params.nchannels)
    with wave.open(str(target), "wb") as dst:
        dst.setparams(params)
        dst.writeframes(pad * int(lead_s * params.framerate) + frames + pad * int(tail_s * params.framerate))
    return target


def join_wavs(sources: list[Path], target: Path, gap_s: float, tail_s: float = 0.0) -> Path:
    """Clips of one voice one after the other, ``gap_s`` of silence between them (a pause mid-request)."""
    chunks, params = [], None
    for source in sources:
        with wave.open(str(source), "rb") as src:
            params = src.getparams()
            chunks.append(src.readframes(src.getnframes()))
    assert params is not None
    pad = b"\x00" * (params.sampwidth * params.nchannels)
    with wave.open(str(target), "wb") as dst:
        dst.setparams(params)
        dst.writeframes((pad * int(gap_s * params.framerate)).join(chunks) + pad * int(tail_s * params.framerate))
    return target


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()
