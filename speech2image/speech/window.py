"""A short recording through an encoder window fitted to it.

faster-whisper pads every recording to Whisper's 30 s window before the encoder, and on a CPU
the encoder is most of a short request's time (tiny.en int8 on 2 cores: ~0.33 s for 30 s of
frames, ~0.07–0.10 s for 10–15 s). Here the speech (Silero VAD's span, padded) is encoded in a
window of its own length plus ``PAD_S`` of silence, and decoded once with the same beam.

``PAD_S`` and the span's 200 ms margin are measured, not guessed (tests/support/data.py's 29
English requests in Piper's and espeak-ng's voices, beam 5): with 10 s of padding the word error
rate equals faster-whisper's own path (Piper 0.100 vs 0.109, espeak-ng 0.154 vs 0.154) at about
half its time; with 5 s espeak-ng loses 2 points, with 1 s it loses 29; 15 or 20 s, or
faster-whisper's 400 ms VAD margin, gain nothing (0.169–0.180 on espeak-ng, within noise).

``encode`` answers the encoder's output for the speech (None when it does not fit one window,
"" when there is no speech); ``detect`` reads the spoken language from that output (one decoder
step, no second encoding) and ``decode`` the words, in the language spoken (``transcribe``) or in
English (``translate``), several times from one encoding. ``decode`` answers None for a decode
that looks like a repetition loop: the caller then runs faster-whisper's own loop, with its
temperature fallback.
"""
from __future__ import annotations

import math
import zlib

import numpy as np

SAMPLE_RATE = 16000
FRAMES_PER_S = 100  # Whisper's mel frames (10 ms hop)
MAX_FRAMES = 3000  # Whisper's 30 s window
PAD_S = 10.0
# faster-whisper's own thresholds for "this was not speech" and "this is a loop"
NO_SPEECH_PROB, LOG_PROB_FLOOR, MAX_COMPRESSION = 0.6, -1.0, 2.4


def speech_spans(samples: np.ndarray, min_silence_ms: int = 300, pad_ms: int = 0) -> list[tuple[int, int]]:
    """Silero VAD's speech spans, in samples (a few ms for seconds of audio)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if samples.size < SAMPLE_RATE // 10:
        return []
    found = get_speech_timestamps(samples, VadOptions(min_silence_duration_ms=min_silence_ms, speech_pad_ms=pad_ms))
    return [(span["start"], span["end"]) for span in found]


def encode(model, samples: np.ndarray):
    """The encoder's output for the speech in 16 kHz float32 ``samples``; "" when there is no speech,
    None when the speech does not fit one window."""
    spans = speech_spans(samples, pad_ms=200)
    if not spans:
        return ""
    speech = samples[spans[0][0]:spans[-1][1]]
    features = model.feature_extractor(speech)
    frames = features.shape[-1]
    window = math.ceil((frames + PAD_S * FRAMES_PER_S) / FRAMES_PER_S) * FRAMES_PER_S
    if window > MAX_FRAMES:
        return None
    features = np.pad(features, ((0, 0), (0, window - frames))).astype(np.float32)
    return model.encode(features)


def detect(model, encoded) -> tuple[str, float]:
    """The language Whisper hears in an encoding, and its probability."""
    token, probability = model.model.detect_language(encoded)[0][0]
    return token[2:-2], float(probability)


def decode(model, encoded, language: str | None, beam_size: int, task: str = "transcribe") -> str | None:
    """The words of an encoding ("" when they are no speech), or None: use the full path."""
    from faster_whisper.tokenizer import Tokenizer

    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task=task, language=language or "en")
    prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    result = model.model.generate(encoded, [prompt], beam_size=beam_size, max_length=model.max_length,
                                  return_scores=True, return_no_speech_prob=True, suppress_blank=True,
                                  suppress_tokens=[-1])[0]
    tokens = result.sequences_ids[0]
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
    if result.no_speech_prob > NO_SPEECH_PROB and avg_logprob < LOG_PROB_FLOOR:
        return ""
    text = tokenizer.decode(tokens).strip()
    if text and len(text.encode()) / len(zlib.compress(text.encode())) > MAX_COMPRESSION:
        return None
    return text


def last_pause(samples: np.ndarray) -> int | None:
    """Where the last pause between two stretches of speech is (its middle), if the VAD hears one."""
    spans = speech_spans(samples, min_silence_ms=100)
    return (spans[-2][1] + spans[-1][0]) // 2 if len(spans) >= 2 else None
