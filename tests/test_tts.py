"""The spoken caption: engines, intelligibility, the API, and speech beside the render."""
from __future__ import annotations

import time

import jiwer
import pytest
import requests

from speech2image.errors import BadInput
from speech2image.speech import NothingToSay, Speaker, TtsError, Voices, wav_info
from speech2image.speech.asr import Transcriber

from .support.coqui import tiny_vits
from .support.fake_comfy import FakeComfyUI, Knobs
from .support.relay import run
from .support.speech import NORMALIZE

CAPTIONS = [
    "Here is a red fox sitting in a snowy forest at sunrise.",
    "Here is a lighthouse on a rocky coast during a storm.",
    "Here is an astronaut riding a horse on the moon.",
    "Here is a small wooden cabin by a quiet lake with mountains behind it.",
    "Here is a golden retriever puppy playing in the autumn leaves.",
    "Here is a cup of hot coffee on a wooden table next to an open book.",
]


@pytest.fixture(scope="module")
def transcriber():
    model = Transcriber()
    assert model.wait_ready()
    return model


@pytest.fixture(scope="module")
def piper():
    speaker = Speaker("piper")
    speaker.start_loading()
    return speaker


def test_piper_is_intelligible(piper, transcriber):
    heard = []
    for caption in CAPTIONS:
        spoken = piper.speak(caption)
        assert spoken.sample_rate == 22050 and spoken.engine == "piper" and spoken.voice == "en_US-joe-medium"
        words = len(caption.split())
        assert 0.15 * words < spoken.duration_s < 0.8 * words + 1.0, (caption, spoken.duration_s)
        heard.append(transcriber.transcribe(spoken.wav).text)
    wer = jiwer.wer(CAPTIONS, heard, reference_transform=NORMALIZE, hypothesis_transform=NORMALIZE)
    print(f"Piper caption WER {wer:.3f}: {heard}")
    assert wer <= 0.10, (wer, heard)
    assert piper.status()["state"] == "ready"


def test_espeak_engine_speaks():
    spoken = Speaker("espeak").speak("Here is a blue bicycle.")
    rate, duration = wav_info(spoken.wav)
    assert rate == spoken.sample_rate and 0.5 < duration < 5


def test_off_engine_says_nothing():
    assert Speaker("off").speak("anything") is None
    assert Speaker("off").status() == {"engine": "off", "state": "off"}


def test_empty_and_long_text_are_refused(piper):
    with pytest.raises(BadInput):
        piper.speak("   ")
    with pytest.raises(BadInput):
        piper.speak("word " * 500)


@pytest.mark.parametrize("text", ["[", "...", '"', "\u2026", " - ", "_", "\u200b"])
def test_text_with_nothing_to_say_is_not_spoken(piper, text):
    # Piper itself fails on these with "# channels not specified"
    with pytest.raises(NothingToSay, match=r"^Nothing to say aloud in the caption; no voice\.$"):
        piper.speak(text)
    assert piper.speak("Here is 42.").duration_s > 0.3  # a digit is something to say


def test_a_voice_library_failure_is_logged_in_full_and_shown_plainly(caplog):
    with pytest.raises(TtsError) as failed:
        Speaker("espeak", voice="nosuch").speak("Here is a secret garden.")
    assert failed.value.message == "the espeak voice could not speak this caption"
    logged = caplog.text
    assert "espeak-ng exited with status 1" in logged and "voice does not exist" in logged
    assert "secret garden" not in logged  # the caption stays out of the log


def test_missing_piper_voice_is_a_clear_error(tmp_path):
    speaker = Speaker("piper", voice=str(tmp_path / "nope.onnx"))
    with pytest.raises(TtsError, match="does not exist"):
        speaker.speak("hello")
    assert speaker.status()["state"] == "error"


@pytest.mark.heavy  # Coqui with torch: scripts/test.sh --all
def test_licensed_coqui_model_never_prompts(monkeypatch):
    monkeypatch.delenv("COQUI_TOS_AGREED", raising=False)
    speaker = Speaker("coqui", voice="tts_models/multilingual/multi-dataset/xtts_v2")
    with pytest.raises(TtsError, match="COQUI_TOS_AGREED=1"):
        speaker.speak("hello")


def test_unknown_engine_is_400():
    with pytest.raises(BadInput):
        Voices("piper").get("festival")


@pytest.mark.heavy  # Coqui with torch: scripts/test.sh --all
def test_coqui_engine_loads_a_local_model(tmp_path):
    model_path, config_path = tiny_vits(tmp_path)
    assert model_path.stat().st_size < 20_000_000
    speaker = Speaker("coqui", coqui_model_path=str(model_path), coqui_config_path=str(config_path))
    spoken = speaker.speak("Here is a red fox.")
    assert spoken.engine == "coqui" and spoken.voice == "model.pth"
    rate, duration = wav_info(spoken.wav)
    assert rate == 16000 and duration > 0.1 and len(spoken.wav) > 1000
    assert speaker.status()["state"] == "ready"


def test_speak_api(make_app):
    client = make_app(tts_engine="piper").test_client()
    body = client.post("/api/speak", json={"text": "Here is a cat in a red hat."}).get_json()
    assert body["engine"] == "piper" and body["duration_s"] > 0.5
    audio = client.get(body["audio_url"])
    assert audio.mimetype == "audio/wav" and audio.data[:4] == b"RIFF"
    assert client.post("/api/speak", json={"text": ""}).status_code == 400
    assert client.post("/api/speak", json={"text": "hi", "engine": "festival"}).get_json()["error"]["code"] == "bad_tts_engine"
    assert client.post("/api/speak", json={"text": "hi", "engine": "off"}).get_json() == {"audio_url": None, "engine": "off"}
    assert client.get("/api/health").get_json()["tts"]["engine"] == "piper"


def test_speak_api_says_when_there_is_nothing_to_say(make_app):
    client = make_app(tts_engine="piper").test_client()
    response = client.post("/api/speak", json={"text": " [ "})
    assert response.status_code == 400
    assert response.get_json() == {"error": {"code": "nothing_to_say",
                                             "message": "Nothing to say aloud in the caption; no voice."}}


LONG_CAPTION = "Here is a small wooden cabin by a quiet lake with tall mountains behind it and a clear starry sky above."


def voice_ready(server, timeout=60.0):
    """Wait while the app's default voice loads (it starts loading with the app)."""
    deadline = time.monotonic() + timeout
    while server.app.extensions["speech2image"].voices.get().status()["state"] in ("loading", "idle"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return server


def piper_job(serve, comfy, caption=LONG_CAPTION, **config):
    """One job of 10 steps whose caption Piper speaks: its events, final snapshot and the spoken WAV's answer."""
    server = voice_ready(serve(**{"comfyui_url": comfy.url, "preload": True, "tts_engine": "piper", "steps": 10,
                                  **config}))
    snapshot, events = run(server, prompt="a cabin", caption=caption, timeout=60)
    audio = requests.get(server.url + snapshot["audio_url"], timeout=5) if snapshot["audio_url"] else None
    return events, snapshot, audio


def test_speech_runs_beside_the_render(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.25)) as comfy:  # 10 steps: a render of about 2.5 s
        events, snapshot, audio = piper_job(serve, comfy)
    assert snapshot["stage"] == "done" and audio.content[:4] == b"RIFF"
    # The overlap itself, not a duration (a faster voice must not fail this): the caption was spoken
    # after the render was sent and was ready before the render ended (before its picture was saved).
    at = {(e["stage"] if e["type"] == "stage" else e["type"]): e["t"] for e in events}
    assert at["submitting"] <= at["audio"] < at["saving"]
    kinds = [e["type"] for e in events]
    assert kinds.index("audio") < kinds.index("image")  # the voice was ready before the picture


def test_voice_failure_keeps_the_picture(tmp_path, serve):
    broken_voice = tmp_path / "broken.onnx"
    broken_voice.write_bytes(b"not a model")
    with FakeComfyUI(Knobs(step_delay_s=0.01)) as comfy:
        events, snapshot, audio = piper_job(serve, comfy, tts_voice=str(broken_voice))
    assert snapshot["stage"] == "done" and snapshot["image_url"] and snapshot["audio_url"] is None
    # the page gets a plain sentence; onnxruntime's own message is for the server log
    assert "The voice failed: the piper voice (broken) could not be loaded; the server log has the details" \
        in snapshot["notes"]
    assert any(e["type"] == "audio_error" for e in events)


def test_caption_with_nothing_to_say_keeps_the_picture_and_says_so(serve):
    with FakeComfyUI(Knobs(step_delay_s=0.01)) as comfy:
        events, snapshot, audio = piper_job(serve, comfy, caption="...")
    assert snapshot["stage"] == "done" and snapshot["image_url"] and snapshot["audio_url"] is None
    assert "Nothing to say aloud in the caption; no voice." in snapshot["notes"]
    assert not any("failed" in note for note in snapshot["notes"])
