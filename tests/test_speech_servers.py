"""Speech on other machines: real Wyoming servers (wyoming-faster-whisper, wyoming-piper) and an
OpenAI-compatible audio double, each as a pool member; failures named, never a 500."""
from __future__ import annotations

import io
import os
import threading
import time
import wave

import jiwer
import pytest
import requests

from speech2image.config import Settings
from speech2image.jobs import FINISHED_STAGES
from speech2image.speech import AsrPool, TtsPool
from speech2image.speech.asr import Transcriber
from speech2image.speech.tts import Speaker

from .support.app_process import AppProcess, free_port
from .support.relay import start_job
from .support.speech import NORMALIZE
from .support.speech_servers import OpenAiWhisperServer, WyomingServer
from .support.tap import Tap

SAID = "A red fox runs across the snowy field at dawn."


def runtime_of(app):
    return app.extensions["speech2image"]


def wer(said: str, heard: str) -> float:
    return jiwer.wer(said, heard, reference_transform=NORMALIZE, hypothesis_transform=NORMALIZE)


def transcribe(client, path):
    with open(path, "rb") as f:
        return client.post("/api/transcribe", data={"audio": (f, "clip.wav")})


def test_bad_speech_urls_are_refused_at_start_and_in_settings(make_app):
    for bad, words in [("ftp://x:1", "unknown scheme ftp://"), ("tcp://host", "needs a port"),
                       ("http://bad host/v1", "malformed host"), ("wyoming", "unknown scheme")]:
        with pytest.raises(ValueError, match=words):
            Settings(asr_url=bad)
        with pytest.raises(ValueError, match="SPEECH2IMAGE_TTS_URL"):
            make_app(tts_url=bad)
        answer = make_app().test_client().post("/api/settings", json={"asr_url": bad})
        assert answer.status_code == 400
        message = answer.json["error"]["message"]
        assert words in message and "tcp://" in message and bad in message
        if "port" not in words:  # the accepted forms, in full
            assert "tcp://host:port" in message and "http(s)://host:port/v1" in message and "local" in message


def test_wyoming_speech_and_transcription(make_app, wyoming_whisper, wyoming_piper, make_clip):
    app = make_app(asr_url=wyoming_whisper.url, tts_url=wyoming_piper.url, tts_engine="piper")
    client = app.test_client()
    spoken = client.post("/api/speak", json={"text": SAID})
    assert spoken.status_code == 200, spoken.json
    assert spoken.json["engine"] == "wyoming" and spoken.json["sample_rate"] == 22050
    assert wyoming_piper.url in spoken.json["voice"]
    wav = client.get(spoken.json["audio_url"]).data
    with wave.open(io.BytesIO(wav)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2) and w.getnframes() / 22050 > 1.5
    heard = client.post("/api/transcribe", data={"audio": (io.BytesIO(wav), "caption.wav")})
    assert heard.status_code == 200, heard.json
    assert wer(SAID, heard.json["text"]) <= 0.2, heard.json
    clip = transcribe(client, make_clip("Paint a castle on a hill under a purple sky.", fmt="webm"))
    assert wer("Paint a castle on a hill under a purple sky.", clip.json["text"]) <= 0.2, clip.json
    health = client.get("/api/health").json
    assert health["whisper"]["state"] == "ready" and health["tts"]["state"] == "ready"
    [asr] = health["whisper"]["servers"]
    assert asr["url"] == wyoming_whisper.url and asr["protocol"] == "wyoming" and asr["served"] == 2
    assert asr["models"] and "faster-whisper" in asr["program"] and asr["languages_total"] > 12  # shortened
    assert "en" in runtime_of(app).transcriber.pool.servers()[0]["languages"]
    assert "en_US-joe-medium" in runtime_of(app).voices.get().pool.servers()[0]["voices"]


def test_openai_compatible_transcription_and_speech(make_app, openai_audio, make_clip):
    openai_audio.behaviour.token = "s3cret"
    app = make_app(asr_url=openai_audio.url, tts_url=openai_audio.url, tts_engine="piper",
                   speech_api_key="s3cret", language="en")
    client = app.test_client()
    heard = transcribe(client, make_clip("A lighthouse on a cliff at sunset."))
    assert heard.status_code == 200 and heard.json["text"] == openai_audio.behaviour.text
    [sent] = [r for r in openai_audio.requests if r["path"] == "/v1/audio/transcriptions"]
    assert sent["headers"]["Authorization"] == "Bearer s3cret"
    assert sent["fields"] == {"model": "Systran/faster-whisper-tiny.en", "response_format": "json", "language": "en"}
    with wave.open(io.BytesIO(sent["file"]["data"])) as w:  # the recording as 16 kHz mono WAV
        assert (w.getframerate(), w.getnchannels()) == (16000, 1)
        assert abs(w.getnframes() / 16000 - heard.json["duration_s"]) < 0.01
    spoken = client.post("/api/speak", json={"text": "Here is your lighthouse."})
    assert spoken.status_code == 200 and spoken.json["sample_rate"] == 24000 and spoken.json["engine"] == "openai"
    [asked] = [r["json"] for r in openai_audio.requests if r["path"] == "/v1/audio/speech"]
    assert asked == {"model": "kokoro", "voice": "af_heart", "input": "Here is your lighthouse.",
                     "response_format": "wav"}
    client.post("/api/settings", json={"tts_server_voice": "am_adam"})
    client.post("/api/speak", json={"text": "Again."})
    assert openai_audio.requests[-1]["json"]["voice"] == "am_adam"


def test_openai_transcription_against_the_real_faster_whisper_server(make_app, openai_whisper, tmp_path, make_clip):
    """faster-whisper-server has no GET /v1/models (404) and reads only POST /v1/audio/transcriptions: it is
    still ready, used with the OpenAI default model name, and its FastAPI error shape is read."""
    app = make_app(asr_url=openai_whisper.url, language="en")
    client = app.test_client()
    heard = transcribe(client, make_clip(SAID))
    assert heard.status_code == 200, heard.json
    assert wer(SAID, heard.json["text"]) <= 0.2 and heard.json["text"] == heard.json["text"].strip()
    [server] = client.get("/api/health").json["whisper"]["servers"]
    assert server["state"] == "ready" and server["protocol"] == "openai" and server["served"] == 1, server
    assert server["models"] == []
    with OpenAiWhisperServer(tmp_path / "named", config_models=("tiny.en",)) as named:  # no model named whisper-1
        answer = transcribe(make_app(asr_url=named.url).test_client(), make_clip(SAID))
        assert answer.status_code == 503
        assert f"{named.url} answered HTTP 400: unknown model: whisper-1" in answer.json["error"]["message"]


def test_the_recognition_model_goes_only_to_the_servers_that_list_it(make_app, wyoming_whisper, openai_audio,
                                                                    make_clip):
    openai_audio.behaviour.models = ["big-whisper", "small-whisper"]
    clip = make_clip(SAID)
    with Tap(wyoming_whisper.url) as tap:
        wyoming_model = runtime_of(make_app(asr_url=tap.url)).transcriber.pool.servers()[0]["models"][0]
        for model, to_wyoming, to_openai in [("small-whisper", None, "small-whisper"),
                                             (wyoming_model, wyoming_model, "big-whisper")]:
            tap.clear()
            openai_audio.requests.clear()
            client = make_app(asr_url=f"{tap.url},{openai_audio.url}", asr_model=model).test_client()
            for _ in range(2):  # one each: ties go in turn
                assert transcribe(client, clip).status_code == 200
            [transcribe_event] = [e for c in tap.finished() for e in c.events() if e.type == "transcribe"]
            assert (transcribe_event.data or {}).get("name") == to_wyoming, transcribe_event.data
            [sent] = openai_audio.requests
            assert sent["fields"]["model"] == to_openai


def finished_job(client, answer, timeout=60.0) -> dict:
    assert answer.status_code == 202, answer.json
    deadline = time.monotonic() + timeout
    while (state := client.get(f"/api/jobs/{answer.json['job_id']}").json)["stage"] not in FINISHED_STAGES:
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    return state


def test_a_jobs_voice_engine_goes_to_the_servers_or_is_refused_with_why(make_app, wyoming_piper, openai_audio,
                                                                         comfy):
    app = make_app(tts_url=wyoming_piper.url, tts_engine="espeak", comfyui_url=comfy.url)
    client = app.test_client()
    servers = runtime_of(app).voices.servers.pool
    job = {"prompt": "a red fox", "caption": "Here is a red fox in the snow.", "session": "engines"}
    state = finished_job(client, client.post("/api/jobs", json={**job, "tts_engine": "piper"}))
    assert state["stage"] == "done" and state["audio_url"], state
    assert servers.servers()[0]["served"] == 1  # wyoming-piper spoke, not a Piper in the app
    spoken = client.post("/api/speak", json={"text": SAID, "engine": "piper"}).json
    assert spoken["engine"] == "wyoming" and wyoming_piper.url in spoken["voice"]
    for refused in (client.post("/api/jobs", json={**job, "tts_engine": "coqui"}),
                    client.post("/api/speak", json={"text": SAID, "engine": "coqui"})):
        assert refused.status_code == 400 and refused.json["error"]["code"] == "bad_tts_engine", refused.json
        assert f"no voice server speaks with coqui ({wyoming_piper.url} speaks with piper" in \
            refused.json["error"]["message"]
    state = finished_job(client, client.post("/api/jobs", json={**job, "tts_engine": "off"}))
    assert state["stage"] == "done" and state["audio_url"] is None
    assert servers.servers()[0]["served"] == 2
    # an OpenAI-compatible server with several engines: the chosen one is its model
    openai_audio.behaviour.models = ["kokoro", "speaches-ai/piper-en_US-joe-medium"]
    client = make_app(tts_url=openai_audio.url, tts_engine="espeak").test_client()
    assert client.post("/api/speak", json={"text": SAID, "engine": "piper"}).status_code == 200
    assert openai_audio.requests[-1]["json"]["model"] == "speaches-ai/piper-en_US-joe-medium"
    refused = client.post("/api/speak", json={"text": SAID, "engine": "coqui"}).json["error"]["message"]
    assert f"{openai_audio.url} speaks with kokoro, speaches-ai/piper-en_US-joe-medium" in refused


def test_pool_skips_a_dead_server_and_names_each_when_none_is_left(make_app, wyoming_whisper, make_clip):
    dead = f"tcp://127.0.0.1:{free_port()}"
    client = make_app(asr_url=f"{dead},{wyoming_whisper.url}").test_client()
    clip = make_clip(SAID)
    for _ in range(3):
        answer = transcribe(client, clip)
        assert answer.status_code == 200 and wer(SAID, answer.json["text"]) <= 0.2
    servers = {s["url"]: s for s in client.get("/api/health").json["whisper"]["servers"]}
    assert servers[dead]["state"] == "unreachable" and "refused the connection" in servers[dead]["error"]
    assert servers[wyoming_whisper.url]["served"] == 3

    other_dead = f"http://127.0.0.1:{free_port()}/v1"
    client = make_app(asr_url=f"{dead},{other_dead}").test_client()
    answer = transcribe(client, clip)
    assert answer.status_code == 503 and answer.json["error"]["code"] == "asr_unavailable"
    message = answer.json["error"]["message"]
    assert f"{dead} refused the connection" in message and f"{other_dead} refused the connection" in message
    health = client.get("/api/health").json["whisper"]
    assert health["state"] == "unreachable" and "wyoming_faster_whisper" in health["fix"]


def test_a_server_killed_mid_request_is_retried_on_the_other(make_app, tmp_path, make_clip):
    long_text = " ".join([SAID] * 6)
    clip = make_clip(long_text)
    with WyomingServer("whisper", tmp_path / "a") as a, WyomingServer("whisper", tmp_path / "b") as b:
        app = make_app(asr_url=f"{a.url},{b.url}")
        pool = runtime_of(app).transcriber.pool
        client = app.test_client()
        answer = {}
        worker = threading.Thread(target=lambda: answer.update(r=transcribe(client, clip)))
        worker.start()
        deadline = time.monotonic() + 30
        while not any(pool.busy().values()) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # the audio is on its way or being heard
        victim = a if pool.busy()[a.url] else b
        victim.kill()
        worker.join(60)
        assert answer["r"].status_code == 200, answer["r"].json
        assert wer(long_text, answer["r"].json["text"]) <= 0.2
        survivor = b if victim is a else a
        assert pool.busy() == {a.url: 0, b.url: 0}
        assert {s["url"]: s["served"] for s in pool.servers()} == {victim.url: 0, survivor.url: 1}

        alone = make_app(asr_url=survivor.url).test_client()
        worker = threading.Thread(target=lambda: answer.update(r=transcribe(alone, clip)))
        worker.start()
        time.sleep(0.5)
        survivor.kill()
        worker.join(60)
        assert answer["r"].status_code == 503
        assert f"{survivor.url} closed the connection mid-request" in answer["r"].json["error"]["message"]


def test_garbage_answers_are_reported_as_such(make_app, garbage_server, openai_audio, make_clip):
    openai_audio.behaviour.mode = "garbage"
    client = make_app(asr_url=garbage_server.url, tts_url=openai_audio.url, tts_engine="piper").test_client()
    answer = transcribe(client, make_clip(SAID))
    assert answer.status_code == 503
    assert f"{garbage_server.url} answered something that is not the Wyoming protocol" in answer.json["error"]["message"]
    spoken = client.post("/api/speak", json={"text": "Hello there."})
    assert spoken.status_code == 503 and "not JSON" in spoken.json["error"]["message"]
    health = client.get("/api/health").json
    assert health["whisper"]["servers"][0]["state"] == "garbage"
    assert health["tts"]["servers"][0]["state"] == "garbage"
    for mode, words in [("error", "answered HTTP 500: CUDA out of memory"), ("die", "closed the connection")]:
        openai_audio.behaviour.mode = mode
        spoken = client.post("/api/speak", json={"text": "Hello there."})
        assert spoken.status_code == 503 and words in spoken.json["error"]["message"], spoken.json


def test_settings_switch_between_local_and_remote_without_restart(make_app, wyoming_whisper, wyoming_piper,
                                                                  make_clip):
    app = make_app(tts_engine="piper")
    client = app.test_client()
    runtime = runtime_of(app)
    assert isinstance(runtime.transcriber, Transcriber)
    saved = client.post("/api/settings", json={"asr_url": wyoming_whisper.url, "tts_url": wyoming_piper.url})
    assert saved.status_code == 200, saved.json
    assert isinstance(runtime.transcriber, AsrPool) and isinstance(runtime.voices.get(), TtsPool)
    clip = make_clip(SAID)
    assert wer(SAID, transcribe(client, clip).json["text"]) <= 0.2
    assert client.post("/api/speak", json={"text": SAID}).json["engine"] == "wyoming"
    assert runtime.transcriber.pool.servers()[0]["served"] == 1
    client.post("/api/settings", json={"asr_url": f"local,{wyoming_whisper.url}"})
    assert [m.protocol for m in runtime.transcriber.pool.members] == ["local", "wyoming"]
    client.post("/api/settings", json={"asr_url": None, "tts_url": None})
    assert isinstance(runtime.transcriber, Transcriber) and isinstance(runtime.voices.get(), Speaker)
    assert wer(SAID, transcribe(client, clip).json["text"]) <= 0.2
    assert client.post("/api/speak", json={"text": SAID}).json["engine"] == "piper"


def test_the_pool_spreads_concurrent_requests(wyoming_whisper, tmp_path, make_clip):
    from speech2image.config import parse_speech_urls
    from speech2image.speech.asr import decode_audio

    with WyomingServer("whisper", tmp_path / "second") as second:
        settings = Settings(asr_url=f"{wyoming_whisper.url},{second.url}")
        pool = AsrPool(parse_speech_urls(settings.asr_url), settings, local=lambda: None)
        samples = decode_audio(make_clip(SAID).read_bytes(), 30)
        results = []
        threads = [threading.Thread(target=lambda: results.append(pool.transcribe_samples(samples).text))
                   for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(results) == 6 and all(wer(SAID, text) <= 0.2 for text in results)
        assert sorted(s["served"] for s in pool.pool.servers()) == [3, 3]


def held_libraries(pid: int) -> str:
    """What the process has mapped: the Whisper runtime (CTranslate2) and Piper's (ONNX Runtime) show here."""
    with open(f"/proc/{pid}/maps") as maps:
        return maps.read()


def spoken_job(app: AppProcess, clip) -> dict:
    return app.wait_finished(start_job(app, "speech-servers", audio=clip), timeout=120)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc/<pid>/maps (Linux)")
def test_a_whole_job_with_both_stages_remote_never_loads_the_models(tmp_path, comfy, wyoming_whisper,
                                                                   wyoming_piper, make_clip):
    clip = make_clip(SAID)
    with AppProcess(tmp_path / "remote", comfy.url, asr_url=wyoming_whisper.url, tts_url=wyoming_piper.url,
                    tts_engine="piper", preload="true") as app:
        state = spoken_job(app, clip)
        assert state["stage"] == "done" and state["audio_url"], state
        assert wer(SAID, state["transcript"]) <= 0.2
        assert requests.get(app.url + state["audio_url"], timeout=5).content[:4] == b"RIFF"
        maps = held_libraries(app.process.pid)
        assert "ctranslate2" not in maps and "onnxruntime" not in maps
    with AppProcess(tmp_path / "local", comfy.url, tts_engine="piper", preload="true") as app:  # the contrast
        assert spoken_job(app, clip)["stage"] == "done"
        maps = held_libraries(app.process.pid)
        assert "ctranslate2" in maps and "onnxruntime" in maps
