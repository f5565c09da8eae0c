"""A live recording with recognition on servers: its audio goes to one Wyoming server once, as it is
spoken, and the final text is that server's read of it; the passes while speaking read only the phrase
being spoken; a server lost mid-recording hands everything heard so far to another. Real
wyoming-faster-whisper servers (and the real faster-whisper-server), with a loopback tap that reads
what each connection carried."""
from __future__ import annotations

import uuid

import jiwer

from speech2image.config import Settings, parse_speech_urls
from speech2image.speech import AsrPool, LiveTranscriber

from .support.audio_stream import AudioStream, spoken
from .support.live import LiveServer
from .support.speech import NORMALIZE
from .support.speech_servers import WyomingServer
from .support.tap import Tap

SENTENCES = ["A red fox runs across the snowy field at dawn.", "The sun rises slowly over the quiet hills.",
             "A small wooden boat drifts on the calm lake.", "Tall pine trees stand along the rocky shore.",
             "Birds fly south under a pale grey sky."]
SAID = " ".join(SENTENCES)
WER_BOUND = 0.15  # tiny.en on Piper's voice reading the whole recording, as an upload does
FRAME = 3200  # 100 ms of 16 kHz s16le, as the page sends it


def wer(said: str, heard: str) -> float:
    return jiwer.wer(said, heard, reference_transform=NORMALIZE, hypothesis_transform=NORMALIZE)


def audio_sent(connection) -> int:
    return sum(len(e.payload or b"") for e in connection.events() if e.type == "audio-chunk")


def record(server, pcm: bytes, pace: float = 2.0) -> tuple[dict, list[dict]]:
    stream = AudioStream(server.url, uuid.uuid4().hex, {"steps": 4})
    assert stream.until("ready")["type"] == "ready"
    stream.play(pcm, pace=pace)
    stream.send({"type": "stop"})
    final = stream.until("final")
    stream.close()
    assert final["type"] == "final", final
    return final, stream.of("partial")


def test_a_live_recording_goes_to_the_server_once_and_each_pass_reads_one_phrase(make_app, wyoming_whisper,
                                                                                 make_clip):
    pcm = spoken([make_clip(s) for s in SENTENCES])
    with Tap(wyoming_whisper.url) as tap:
        app = make_app(asr_url=tap.url)
        with LiveServer(app) as server:
            final, partials = record(server, pcm)
        connections = tap.finished()
    assert wer(SAID, final["text"]) <= WER_BOUND, final
    audio = sorted(audio_sent(c) for c in connections)
    assert audio[-1] == len(pcm), audio  # one stream carried the recording, once, as it was spoken
    window = int(app.extensions["speech2image"].live.window_s * 16000) * 2
    passes = audio[:-1]
    assert len(passes) >= len(SENTENCES) and max(passes) <= window, audio  # each pass read one phrase at most
    preview = [f"{p['committed']} {p['tentative']}".lower() for p in partials]
    assert any("fox" in text and "boat" in text for text in preview), preview  # earlier phrases stay in view


def test_a_server_lost_mid_recording_hands_what_it_heard_to_another(tmp_path, make_clip):
    pcm = spoken([make_clip(s) for s in SENTENCES])
    frames = [pcm[i:i + FRAME] for i in range(0, len(pcm), FRAME)]
    with WyomingServer("whisper", tmp_path / "a") as a, WyomingServer("whisper", tmp_path / "b") as b:
        settings = Settings(asr_url=f"{a.url},{b.url}")
        pool = AsrPool(parse_speech_urls(settings.asr_url), settings, local=lambda: None)
        stream = LiveTranscriber(lambda: pool).open(lambda message: None, 60)
        for frame in frames[:len(frames) // 2]:
            stream.feed(frame)
        first = stream.upstream.url
        (a if first == a.url else b).kill()  # mid-sentence, with half the recording on it
        for frame in frames[len(frames) // 2:]:
            stream.feed(frame)
        final = stream.finish()
        stream.close()
    assert stream.upstream.switches == 1 and stream.upstream.url not in (None, first)
    assert wer(SAID, final.text) <= WER_BOUND, final.text  # the words heard before the switch too


def test_a_live_recording_on_the_real_openai_compatible_server(make_app, openai_whisper, make_clip):
    """faster-whisper-server takes only whole recordings: the passes send the phrase, Stop sends it all once."""
    pcm = spoken([make_clip(s) for s in SENTENCES[:2]])
    with LiveServer(make_app(asr_url=openai_whisper.url, language="en")) as server:
        final, partials = record(server, pcm)
    assert wer(" ".join(SENTENCES[:2]), final["text"]) <= WER_BOUND, final
    assert partials
