"""Live transcription: the agreement logic on scripted passes, and recordings streamed over /ws/audio."""
from __future__ import annotations

import time
import uuid

import pytest

from speech2image.speech.stream import Agreement

from .support import speech
from .support.audio_stream import AudioStream, pcm16k
from .support.relay import Relay, finished, start_job
from .support.speech import word_error_rate


def passes(*hypotheses):
    agreement, seen = Agreement(), []
    for hypothesis in hypotheses:
        agreement.update(hypothesis.split())
        seen.append((" ".join(agreement.committed), " ".join(agreement.tentative)))
    return agreement, seen


def test_a_word_is_committed_once_two_passes_agree():
    agreement, seen = passes("a red", "a red fox", "a red fox sitting in", "a red fox sitting in snow")
    assert seen == [("", "a red"), ("a red", "fox"), ("a red fox", "sitting in"), ("a red fox sitting in", "snow")]
    assert agreement.text() == "a red fox sitting in snow"


def test_committed_text_never_shrinks_or_changes():
    # Whisper changes its mind about earlier words; what was committed stays as it was.
    script = ["Draw me a", "Draw me a light", "Draw me a lighthouse on", "Drew me the lighthouse on a rock",
              "Draw", "Draw me a lighthouse on a rocky coast.", "Draw me a lighthouse on a rocky coast."]
    agreement, seen = passes(*script)
    committed = [c for c, _ in seen]
    for before, after in zip(committed, committed[1:]):
        assert after.startswith(before)
    assert committed[2] == "Draw me a"
    assert committed[-1] == "Draw me a lighthouse on a rocky"  # the last word waits: the audio may cut it
    assert agreement.text() == "Draw me a lighthouse on a rocky coast."


def test_case_and_punctuation_do_not_block_agreement():
    _, seen = passes("A cat, in a", "a cat in a hat.")
    assert seen[-1] == ("a cat in a", "hat.")


def test_an_empty_pass_keeps_the_committed_words():
    agreement, seen = passes("a blue", "a blue boat", "")
    assert seen[-1] == ("a blue", "")
    assert agreement.text() == "a blue"


# --- over the socket, with the real model ------------------------------------------------

SAID = ("draw me a lighthouse on a rocky coast during a storm with huge waves and a small boat "
        "sailing toward it under a dark sky")
# The upload path's bound for Piper (tests/test_transcribe.py) + issue 16's margin: the final text is a
# pass over the whole recording with the upload's beam.
WER_BOUND = 0.10 + 0.02


def test_streamed_recording_shows_partials_and_starts_the_job(live_server, make_clip, clips_dir):
    wav = speech.pad_wav(make_clip(SAID), clips_dir / "live-said.wav", lead_s=0.3, tail_s=3.0)  # quiet before Stop, as people do
    relay = Relay(live_server)
    stream = AudioStream(live_server.url, relay.session, {"steps": 4})
    assert stream.until("ready")["type"] == "ready"
    stream.play(pcm16k(wav))
    spoke_for = speech.wav_seconds(wav)
    partials = stream.of("partial")
    assert partials, stream.frames  # words came while it was spoken
    assert any(p["committed"] or p["tentative"] for p in partials), partials
    committed = [p["committed"] for p in partials]
    for before, after in zip(committed, committed[1:]):
        assert after.startswith(before), committed
    stopped = time.monotonic()
    stream.send({"type": "stop"})
    final = stream.until("final")
    assert final["type"] == "final", final
    assert word_error_rate(SAID, final["text"]) <= WER_BOUND, final["text"]
    assert abs(final["duration_s"] - spoke_for) < 0.2
    assert final["pass_after_stop"] is False, final  # the end-of-speech pass had heard it all before Stop
    assert final["elapsed_s"] < time.monotonic() - stopped + 0.01
    job = stream.until("job")["snapshot"]
    # (the draft drawn at the pause may be under way already: the job took it over)
    assert job["stage"] in ("pending", "writing_prompt", "submitting", "queued", "rendering", "prompt_ready", "done")
    assert "asr" in job["timings"]
    end = relay.until(lambda e: finished(e) and e["job_id"] == job["job_id"])[-1]
    assert end["snapshot"]["stage"] == "done", end
    assert end["snapshot"]["transcript"] == final["text"]
    assert end["snapshot"]["render"]["steps"] == 4  # the start frame's job options apply
    # the total is what the person waited for, from Stop: the live transcript's part is inside it
    timings = end["snapshot"]["timings"]
    # (a job that took over the draft drawn at the pause waited for no prompt: it was written before Stop)
    assert ("prompt" in timings) != bool((end["snapshot"]["draft"] or {}).get("adopted")), end["snapshot"]
    parts = timings["asr"] + timings.get("prompt", 0.0) + timings["render"]
    assert timings["total"] >= parts - 0.002, timings  # (each is rounded to the millisecond)
    stream.close()
    relay.close()


def test_stop_right_after_the_last_word_reads_the_end_once_more(live_server, make_clip, clips_dir):
    said = "a red barn in a snowy field at sunset"
    wav = speech.pad_wav(make_clip(said), clips_dir / "live-no-pause.wav", lead_s=0.3, tail_s=0.0)
    stream = AudioStream(live_server.url, session(), {"steps": 4})
    assert stream.until("ready")["type"] == "ready"
    stream.play(pcm16k(wav), pace=4.0)  # faster than the passes' cadence: the last words come after every pass
    stream.send({"type": "stop"})  # and no pause before Stop
    final = stream.until("final")
    assert final["type"] == "final", final
    assert final["pass_after_stop"] is True, final
    assert word_error_rate(said, final["text"]) <= WER_BOUND, final["text"]
    stream.close()


def test_the_upload_of_a_recording_the_stream_already_started_answers_the_same_job(live_server, make_clip, clips_dir):
    """The page's socket dropped after the server started the job: its fallback upload carries the
    recording's request_id and gets that job back, not a second one."""
    wav = speech.pad_wav(make_clip("a cat wearing a red hat"), clips_dir / "live-twice.wav", lead_s=0.3, tail_s=1.0)
    tab, request_id = session(), uuid.uuid4().hex
    stream = AudioStream(live_server.url, tab, {"request_id": request_id})
    assert stream.until("ready")["type"] == "ready"
    stream.play(pcm16k(wav), pace=4.0)
    stream.send({"type": "stop"})
    started = stream.until("job")["snapshot"]
    stream.close()
    again = start_job(live_server, tab, audio=wav, request_id=request_id)  # accepted: 202
    assert again == started["job_id"]
    other = start_job(live_server, tab, audio=wav, request_id=uuid.uuid4().hex)  # another recording (another id)
    assert other != started["job_id"]  # is another job


def errored(stream, timeout=30.0) -> dict:
    message = stream.until("error", timeout)
    assert message["type"] == "error", message
    assert set(message) == {"type", "code", "message", "at"}
    return message


def session() -> str:
    return uuid.uuid4().hex


def test_silence_ends_with_no_speech(live_server, clips_dir):
    stream = AudioStream(live_server.url, session())
    stream.until("ready")
    stream.play(pcm16k(speech.silence_wav(clips_dir / "live-silence.wav", 1.5)), pace=4)
    stream.send({"type": "stop"})
    error = errored(stream)
    assert error["code"] == "no_speech"
    assert "no speech detected" in error["message"]
    assert not stream.of("partial")  # silence costs no pass


@pytest.mark.parametrize("start,code", [
    ({"sample_rate": 48000, "format": "s16le"}, "bad_audio_format"),
    ({"sample_rate": 16000, "format": "f32le"}, "bad_audio_format"),
    ({"steps": 99999}, "bad_steps"),
])
def test_a_wrong_start_is_refused_with_a_reason(live_server, start, code):
    stream = AudioStream(live_server.url, session(), send_start=False)
    stream.send({"type": "start", "sample_rate": 16000, "format": "s16le", **start})
    error = errored(stream)
    assert error["code"] == code, error
    if code == "bad_audio_format":
        assert "16000 Hz mono s16le" in error["message"]


@pytest.mark.parametrize("send", [
    lambda ws: ws.send("not json"),
    lambda ws: ws.send('{"type": "pause"}'),
    lambda ws: ws.send_binary(b"\x01\x02\x03"),  # half a sample
    lambda ws: ws.send_binary(b"\x00" * 64000),  # far more than a frame
])
def test_a_malformed_frame_closes_the_stream(live_server, send):
    stream = AudioStream(live_server.url, session())
    stream.until("ready")
    send(stream.ws)
    assert errored(stream)["code"] == "bad_frame"


def test_audio_before_start_is_a_malformed_frame(live_server):
    stream = AudioStream(live_server.url, session(), send_start=False)
    stream.ws.send_binary(b"\x00\x00" * 1600)
    error = errored(stream)
    assert error["code"] == "bad_frame"
    assert "got audio" in error["message"]


def test_a_stream_past_the_limit_is_cut_with_a_note(serve, make_clip):
    server = serve(max_audio_s=2.0)
    stream = AudioStream(server.url, session())
    stream.until("ready")
    stream.play(pcm16k(make_clip(SAID)), pace=3)
    stream.send({"type": "stop"})
    final = stream.until("final")
    assert final["type"] == "final", final
    assert final["duration_s"] == 2.0
    note, = stream.of("note")
    assert "limit of 2 seconds" in note["message"]
    assert "lighthouse" in final["text"].lower()
    assert "waves" not in final["text"].lower()


def test_an_idle_stream_is_closed(serve):
    server = serve(stream_idle_s=0.5)
    stream = AudioStream(server.url, session())
    stream.until("ready")
    stream.ws.send_binary(b"\x00\x00" * 1600)
    error = errored(stream, timeout=10)
    assert error["code"] == "stream_idle"
    assert "sent nothing for 0.5 s" in error["message"]
