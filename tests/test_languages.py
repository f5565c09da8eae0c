"""Speaking another language: heard in that language (Whisper base, detected), drawn in English (the LLM
told the language, or Whisper's own translation offline), the caption spoken back in the person's language.

The spoken requests are natural synthetic speech that Whisper base understands (Kokoro, see
tests/support/speech.py): Japanese, and German through espeak-ng's IPA.
"""
from __future__ import annotations

import json
import shutil
import wave

import jiwer
import numpy as np
import pytest
import requests

from speech2image import create_app
from speech2image.prompt import PromptWriter
from speech2image.speech import Transcriber, Voices, multilingual_model_path
from speech2image.speech.tts import bundled_piper_voice

from .support.audio_stream import AudioStream, pcm16k
from .support.live import LiveServer
from .support.relay import Relay, finished
from .support.speech import NORMALIZE, espeak_wav, pad_wav

JAPANESE = "古いピアノの上で黒い猫が寝ています。"  # "The black cat is sleeping on the old piano."
GERMAN = "Ein altes Schloss am See bei Sonnenuntergang."  # "An old castle by the lake at sunset."
GERMAN_CAPTION = "Ein altes Schloss am See bei Sonnenuntergang, mit Bergen im Hintergrund."
LLM_PROMPT = "an old castle by a lake at sunset, mountains in the background, soft light, highly detailed"


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_comfy, models_dir):
    """An app that detects the language (auto), writes offline, and speaks with espeak-ng."""
    app = create_app({"data_dir": str(tmp_path_factory.mktemp("languages")), "models_dir": str(models_dir),
                      "language": "auto", "llm_url": "off", "tts_engine": "espeak", "comfyui_url": fake_comfy.url,
                      "steps": 4, "width": 64, "height": 64})
    with LiveServer(app) as live:
        assert live.wait_for_whisper(timeout=300)["state"] == "ready"
        yield live


def transcribe(server, path, **fields) -> dict:
    with open(path, "rb") as f:
        answer = requests.post(server.url + "/api/transcribe", files={"audio": (path.name, f, "audio/wav")},
                               data=fields, timeout=120)
    assert answer.status_code == 200, answer.text
    return answer.json()


def job_of(server, path, **fields) -> dict:
    relay = Relay(server)
    with open(path, "rb") as f:
        answer = requests.post(server.url + "/api/jobs", files={"audio": (path.name, f, "audio/wav")},
                               data={"session": relay.session, **fields}, timeout=30)
    assert answer.status_code == 202, answer.text
    events = relay.until(finished, timeout=120)
    relay.close()
    return {"snapshot": events[-1]["snapshot"], "events": events}


def test_japanese_and_german_are_heard_in_their_own_language(server, make_clip):
    japanese = transcribe(server, make_clip(JAPANESE, "kokoro", language="ja"), translate="1")
    assert japanese["language"] == "ja" and japanese["language_probability"] > 0.9, japanese
    assert "ピアノ" in japanese["text"] and "猫" in japanese["text"], japanese["text"]
    assert {"cat", "piano"} <= set(japanese["translation"].lower().replace(".", "").split()), japanese
    german = transcribe(server, make_clip(GERMAN, "kokoro", language="de"))
    assert german["language"] == "de" and german["language_name"] == "German" and not german["language_unsure"]
    assert jiwer.wer(GERMAN, german["text"], reference_transform=NORMALIZE, hypothesis_transform=NORMALIZE) == 0
    assert "translation" not in german  # only when asked for


def test_a_language_whisper_is_unsure_of_asks_and_mixing_languages_is_heard(server, make_clip, clips_dir):
    # espeak-ng's robotic French: base hears a language, but not surely -> the page asks (no error)
    unsure = transcribe(server, french_by_espeak(clips_dir))
    assert unsure["language_probability"] < 0.5 and unsure["language_unsure"] is True, unsure
    # Japanese, then German, in one recording: one language is chosen for it, and nothing breaks
    mixed = clips_dir / "mixed.wav"
    join_wavs([make_clip(JAPANESE, "kokoro", language="ja"), make_clip(GERMAN, "kokoro", language="de")], mixed)
    both = transcribe(server, mixed, translate="1")
    assert both["language"] in ("ja", "de") and both["text"], both


def french_by_espeak(clips_dir):
    return espeak_wav("Voici un vieux château au bord du lac au coucher du soleil.", clips_dir / "espeak-fr.wav",
                      voice="fr", speed=175)


def join_wavs(paths, target):
    chunks = []
    for path in paths:
        with wave.open(str(path), "rb") as w:
            rate, chunks = w.getframerate(), chunks + [np.frombuffer(w.readframes(w.getnframes()), np.int16)]
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.concatenate(chunks).tobytes())
    return target


def test_offline_the_prompt_comes_from_whispers_translation(server, make_clip, fake_comfy):
    result = job_of(server, make_clip(GERMAN, "kokoro", language="de"))
    job = result["snapshot"]
    assert job["stage"] == "done", job
    assert job["transcript"] == GERMAN and job["language"] == "de"  # the box keeps what was said
    assert job["prompt_source"] == "offline" and "machine translation" in job["prompt_notice"], job
    english = job["translation"].rstrip(".")
    assert english and job["prompt"].startswith(english)  # the prompt's words: Whisper's English
    assert job["caption"] == GERMAN  # without an LLM, the caption is the person's own words
    assert english in json.dumps(fake_comfy.posted[-1], ensure_ascii=False)  # what ComfyUI was given
    audio = next(e for e in result["events"] if e["type"] == "audio")
    assert audio["engine"] == "espeak" and audio["language"] == "de" and audio["voice"].startswith("de")


def test_with_an_llm_the_prompt_is_english_and_the_caption_speaks_german(server, make_clip, fake_llm, fake_comfy,
                                                                         models_dir):
    fake_llm.behaviour.reply = json.dumps({"prompt": LLM_PROMPT, "negative_prompt": "blurry", "caption": GERMAN_CAPTION})
    assert requests.post(server.url + "/api/settings", json={"llm_url": fake_llm.url}, timeout=10).ok
    try:
        result = job_of(server, make_clip(GERMAN, "kokoro", language="de"))
    finally:
        requests.post(server.url + "/api/settings", json={"llm_url": None}, timeout=10)
    job = result["snapshot"]
    assert job["stage"] == "done" and job["prompt_source"] == "llm", job
    system, user = fake_llm.requests[-1]["messages"]
    assert "The person spoke German" in system["content"] and "in English" in system["content"]
    assert user["content"].startswith(GERMAN) and "Machine translation into English" in user["content"]
    assert job["prompt"] == LLM_PROMPT and LLM_PROMPT in json.dumps(fake_comfy.posted[-1])
    assert job["caption"] == GERMAN_CAPTION
    # the spoken caption is German: the multilingual model hears German in it
    wav = requests.get(server.url + job["audio_url"], timeout=10).content
    heard = Transcriber(language="auto", models_dir=models_dir).transcribe(wav)
    assert heard.language == "de", heard


def test_a_live_recording_in_german_is_heard_and_a_correction_holds_for_the_rest(server, make_clip, clips_dir):
    wav = pad_wav(make_clip(GERMAN, "kokoro", language="de"), clips_dir / "live-de.wav", lead_s=0.3, tail_s=1.5)
    stream = AudioStream(server.url, Relay(server).session, {"steps": 4})
    assert stream.until("ready")["type"] == "ready"
    stream.play(pcm16k(wav), pace=2.0)
    stream.send({"type": "stop"})
    final = stream.until("final")
    assert final["language"] == "de" and final["language_probability"] > 0.5 and final["translation"], final
    assert stream.until("job")["snapshot"]["language"] == "de"
    stream.close()
    # the person says it is Japanese before speaking: every pass, and the final text, use Japanese
    corrected = AudioStream(server.url, Relay(server).session, {"steps": 4})
    assert corrected.until("ready")["type"] == "ready"
    corrected.send({"type": "language", "language": "ja"})
    corrected.play(pcm16k(pad_wav(make_clip(JAPANESE, "kokoro", language="ja"), clips_dir / "live-ja.wav",
                                  lead_s=0.3, tail_s=1.5)), pace=2.0)
    corrected.send({"type": "stop"})
    final = corrected.until("final")
    assert final["language"] == "ja" and final["language_probability"] is None, final  # asked, not detected
    assert "ピアノ" in final["text"], final
    assert all(p["language"] == "ja" for p in corrected.of("partial")), corrected.of("partial")
    corrected.close()


def test_an_unknown_language_is_refused_with_the_list(make_app):
    client = make_app().test_client()
    answer = client.post("/api/settings", json={"language": "klingon"})
    assert answer.status_code == 400 and "auto, af, am" in answer.get_json()["error"]["message"]
    answer = client.post("/api/jobs", json={"transcript": "a cat", "language": "xx"})
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "bad_language"
    with pytest.raises(ValueError, match="SPEECH2IMAGE_LANGUAGE: 'xx' is not a language Whisper knows; use one of auto, af"):
        make_app(language="xx")
    assert make_app().test_client().get("/api/settings").get_json()["settings"]["language"] == "en"  # the default


def test_whisper_base_is_joined_once_and_again_when_cut_short(tmp_path):
    folder = multilingual_model_path(tmp_path)
    joined = folder / "model.bin"
    size, written = joined.stat().st_size, joined.stat().st_mtime_ns
    assert size > 100_000_000 and (folder / "tokenizer.json").is_file()
    assert multilingual_model_path(tmp_path) == folder and joined.stat().st_mtime_ns == written  # not again
    with open(joined, "r+b") as f:
        f.truncate(size // 2)  # a copy cut short (a full disk)
    multilingual_model_path(tmp_path)
    assert joined.stat().st_size == size


def test_a_piper_voice_of_the_voices_folder_speaks_its_language(tmp_path):
    # a Piper voice in the voices folder, by its .onnx.json's language
    voice = bundled_piper_voice()
    shutil.copy(voice, tmp_path / "de_DE-test-medium.onnx")
    config = json.loads(voice.with_name(voice.name + ".json").read_text())
    config["language"] = {"code": "de_DE", "family": "de"}
    (tmp_path / "de_DE-test-medium.onnx.json").write_text(json.dumps(config))
    voices = Voices("piper", voices_dir=str(tmp_path))
    assert voices.piper_voice("de", "piper") == str(tmp_path / "de_DE-test-medium.onnx")
    assert voices.piper_voice("fr", "piper") is None


def test_speak_takes_a_language_and_says_which_voice_spoke(make_app, openai_audio):
    openai_audio.behaviour.voices = ["af_heart", "de_DE-thorsten-medium"]
    client = make_app(tts_engine="piper", tts_url=openai_audio.url).test_client()
    answer = client.post("/api/speak", json={"text": GERMAN_CAPTION, "language": "de"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["voice"].startswith("de_DE-thorsten-medium") and answer.get_json()["language"] == "de"
    assert openai_audio.requests[-1]["json"]["voice"] == "de_DE-thorsten-medium"
    english = client.post("/api/speak", json={"text": "Here is a cat.", "language": "en"}).get_json()
    assert openai_audio.requests[-1]["json"]["voice"] == "af_heart" and english["language"] is None
    # no voice here speaks Yoruba (espeak-ng has none): said, and no English voice reads it
    answer = client.post("/api/speak", json={"text": "Ẹ kú àárọ̀", "language": "yo"})
    assert answer.status_code == 503 and answer.get_json()["error"]["code"] == "no_voice_for_language"
    assert "Yoruba" in answer.get_json()["error"]["message"]


def test_an_edit_by_voice_in_another_language_reads_its_translation():
    writer = PromptWriter(None)
    writer.write("Ein altes Schloss am See", session="tab", language="de", translation="An old castle by the lake.")
    plan = writer.write("Mach es Nacht", session="tab", language="de", translation="Make it night.", can_edit=True)
    assert plan.mode == "edit" and plan.prompt.startswith("An old castle by the lake, night"), plan
    assert plan.caption == "Mach es Nacht" and plan.words_from == "translation" and plan.language == "de"
    english = writer.write("make it night", session="other", language="en", translation="ignored", can_edit=True)
    assert english.words_from is None and english.language is None and english.caption.startswith("Here is")
