"""The speech2image command: render, transcribe and doctor from a terminal, through the app itself."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import socket
import struct
import subprocess
import sys
import termios
import wave

import pytest
from PIL import Image

from .support.data import ROOT, SHIPPED
from .support.fake_comfy import FakeComfyUI, Knobs
from .support.fake_llm import dead_url


def speech2image(*args, env=None, timeout=180):
    """Run ``python -m speech2image ARGS`` as a person would, from the repository."""
    return subprocess.run([sys.executable, "-m", "speech2image", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture
def env(tmp_path):
    """The settings of a quiet, fast app in this test's data folder; no ComfyUI unless a test names one."""
    return {"SPEECH2IMAGE_DATA_DIR": str(tmp_path / "data"), "SPEECH2IMAGE_LLM_URL": "off",
            "SPEECH2IMAGE_COMFYUI_URL": dead_url(""), "SPEECH2IMAGE_PORT": dead_url("").rsplit(":", 1)[1]}


def test_render_prints_its_progress_and_saves_the_picture_with_its_metadata(env, tmp_path):
    out = tmp_path / "kite.png"
    with FakeComfyUI(Knobs(step_delay_s=0.02)) as comfy:
        result = speech2image("render", "a red kite over the sea", "--out", str(out), "--steps", "6", "--width", "64",
                              "--height", "64", "--seed", "42", env={**env, "SPEECH2IMAGE_COMFYUI_URL": comfy.url})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert "prompt (offline): a red kite over the sea" in result.stderr
    # captured, not a terminal: whole lines, one per step, no bar redrawn with carriage returns
    assert "rendering: step 6/6" in result.stderr and "\r" not in result.stderr
    assert all(line.startswith(("rendering: step", "transcript:", "prompt (", "note:", "writing", "sending",
                                "rendering", "saving")) for line in result.stderr.splitlines()), result.stderr
    image = Image.open(out)
    assert image.size == (64, 64)
    assert image.text["speech2image:transcript"] == "a red kite over the sea"
    assert image.text["speech2image:prompt"].startswith("a red kite over the sea")
    assert json.loads(image.text["speech2image:seed"]) == 42
    assert json.loads(image.text["prompt"])["3"]["inputs"]["steps"] == 6  # the graph, for ComfyUI to load
    assert comfy.posted[-1]["prompt"]["3"]["inputs"]["seed"] == 42


def test_render_in_a_terminal_draws_a_progress_bar(env, tmp_path):
    """stderr a terminal: tqdm's bar, redrawn in place."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    with FakeComfyUI(Knobs(step_delay_s=0.02)) as comfy:
        process = subprocess.Popen([sys.executable, "-m", "speech2image", "render", "a kite", "--steps", "6",
                                    "--out", str(tmp_path / "kite.png")], cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=secondary, env={**os.environ, **env, "SPEECH2IMAGE_COMFYUI_URL": comfy.url})
        os.close(secondary)
        shown = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            shown += chunk
        assert process.wait(timeout=60) == 0
    os.close(primary)
    text = shown.decode(errors="replace")
    assert "rendering: 100%" in text and "6/6" in text and "\r" in text, text


def test_render_speaks_the_caption_into_a_wav(env, tmp_path):
    spoken = tmp_path / "caption.wav"
    with FakeComfyUI(Knobs(step_delay_s=0.01)) as comfy:
        result = speech2image("render", "a lighthouse", "--prompt", "--speak", str(spoken), "--tts-engine", "espeak",
                              "--steps", "2", env={**env, "SPEECH2IMAGE_COMFYUI_URL": comfy.url})
    assert result.returncode == 0, result.stderr
    assert "caption spoken into" in result.stderr
    with wave.open(str(spoken)) as audio:
        assert audio.getnframes() / audio.getframerate() > 0.3
    assert comfy.posted[-1]["prompt"]["6"]["inputs"]["text"] == "a lighthouse"  # --prompt: used as it is


def test_render_fails_with_the_web_apps_words(env):
    with FakeComfyUI() as comfy:
        result = speech2image("render", "a kite", "--checkpoint", "nope.safetensors", "--steps", "2",
                              env={**env, "SPEECH2IMAGE_COMFYUI_URL": comfy.url})
    assert result.returncode == 1
    assert ("speech2image render: ComfyUI refused the workflow: checkpoint 'nope.safetensors' is not in ComfyUI; "
            "available: tiny-sd15-random.safetensors") in result.stderr


@pytest.mark.parametrize("args,words", [
    (("--steps", "0"), "'steps' must be from 1 to 200"),
    (("--tts-engine", "off", "--speak", "x.wav"), "the voice is off"),
])
def test_render_checks_its_options_like_the_api(env, args, words):
    result = speech2image("render", "a kite", *args, env=env)
    assert result.returncode == 2 and words in result.stderr


def test_render_without_comfyui_prints_the_prompt(env):
    result = speech2image("render", "a red fox", env=env)
    assert result.returncode == 3
    assert result.stdout.startswith("prompt: a red fox") and "caption: " in result.stdout
    assert "there is no ComfyUI to render it" in result.stderr


def test_render_from_a_recording(env, make_clip):
    clip = make_clip("a green apple on a wooden table", "piper", "webm")
    with FakeComfyUI(Knobs(step_delay_s=0.01)) as comfy:
        result = speech2image("render", "--audio", str(clip), "--steps", "2",
                              env={**env, "SPEECH2IMAGE_COMFYUI_URL": comfy.url})
    assert result.returncode == 0, result.stderr
    transcript = next(line for line in result.stderr.splitlines() if line.startswith("transcript: "))
    assert "green apple on a wooden table" in transcript.lower()
    assert Image.open(result.stdout.strip()).text["speech2image:transcript"] == transcript.removeprefix("transcript: ")


def test_transcribe_prints_each_file_and_says_which_failed(env, make_clip, tmp_path):
    clip = make_clip("a small boat on a lake", "piper", "wav")
    noise = tmp_path / "notes.txt"
    noise.write_text("not audio")
    result = speech2image("transcribe", str(clip), str(noise), str(tmp_path / "missing.wav"), env=env)
    assert result.returncode == 1
    printed = result.stdout.splitlines()
    assert len(printed) == 1 and printed[0].startswith(f"{clip}: ")  # one line per file that has words
    # Piper's voice varies run to run and tiny.en with it ("A small book on a lake." was heard in CI):
    # this test is about what the command prints, the transcription's quality has its own tests
    assert "on a lake" in printed[0].lower()
    assert f"{noise}: could not decode audio" in result.stderr
    assert f"{tmp_path / 'missing.wav'}: cannot be read (No such file or directory)" in result.stderr


def checks_of(result) -> dict:
    answer = json.loads(result.stdout)
    return {c["name"]: c for c in answer["checks"]} | {"ok": answer["ok"]}


def test_doctor_reports_what_it_finds(env, fake_llm):
    with FakeComfyUI() as comfy:
        result = speech2image("doctor", "--json", env={**env, "SPEECH2IMAGE_COMFYUI_URL": comfy.url,
                                                       "SPEECH2IMAGE_LLM_URL": fake_llm.url})
    assert result.returncode == 0, result.stdout + result.stderr
    checks = checks_of(result)
    assert checks["ok"] and all(c["ok"] for name, c in checks.items() if name != "ok")
    assert checks["whisper"]["details"]["state"] == "ready" and "speaks" in checks["voice"]["text"]
    assert checks["llm"]["details"] == {"server": fake_llm.url, "models": ["fake-model-7b", "fake-model-1b"]}
    comfyui = checks["comfyui"]["details"]
    assert comfyui["version"] == "0.3.64" and comfyui["device"] == "cpu" and comfyui["how"] == "configured"
    assert comfyui["preview_method"] == "auto" and comfyui["missing_nodes"] == []
    assert "tiny-sd15-random.safetensors" in comfyui["checkpoints"]
    assert checks["models"]["text"].startswith("2 model(s) in ComfyUI: 2 SD 1.5")  # by name, and one unknown


def test_doctor_says_what_to_fix(env, tmp_path):
    graph = {**SHIPPED, "99": {"class_type": "IPAdapterAdvanced", "inputs": {}}}  # a custom node it lacks
    (tmp_path / "data" / "workflows").mkdir(parents=True)
    (tmp_path / "data" / "workflows" / "custom.json").write_text(json.dumps(graph))
    knobs = Knobs(previews=False, diffusion_models=["flux1-dev.safetensors"], text_encoders=["clip_l.safetensors"])
    with FakeComfyUI(knobs) as comfy, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = speech2image("doctor", env={**env, "SPEECH2IMAGE_COMFYUI_URL": comfy.url,
                                             "SPEECH2IMAGE_WORKFLOW": "custom.json",
                                             "SPEECH2IMAGE_PORT": str(taken.getsockname()[1])})
    assert result.returncode == 1  # the port is taken: the app could not serve
    lines = result.stdout.splitlines()
    port = next(line for line in lines if "port" in line and "cannot be used" in line)
    assert port.startswith("✘") and "set SPEECH2IMAGE_PORT to a free port" in port
    comfyui = next(line for line in lines if "ComfyUI 0.3.64" in line)
    assert comfyui.startswith("✘") and "previews are off" in comfyui and "--preview-method auto" in comfyui
    assert "the workflow custom.json needs nodes it lacks: IPAdapterAdvanced" in comfyui
    models = next(line for line in lines if "model(s) in ComfyUI" in line)  # a Flux model without its companions
    assert models.startswith("✘") and "1 Flux.1" in models and "flux1-dev.safetensors is a Flux.1 diffusion model" in models
    assert "T5-XXL" in models and "ComfyUI/models/vae" in models and "clip_l" not in models.split("needs", 1)[1]
    assert lines[-1].startswith("not ready")


def test_doctor_while_the_app_runs_says_it_is_up(env, serve):
    """The natural moment to run doctor is with the app serving: its port is then this app, not a fault."""
    port = int(env["SPEECH2IMAGE_PORT"])
    serve(data_dir=env["SPEECH2IMAGE_DATA_DIR"], comfyui_url=env["SPEECH2IMAGE_COMFYUI_URL"], port=port)
    result = speech2image("doctor", "--json", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    port_check = checks_of(result)["port"]
    assert port_check["ok"], port_check
    assert port_check["text"].startswith(f"speech2image is already running at http://127.0.0.1:{port}: Whisper ")
    assert "ComfyUI unreachable" in port_check["text"] and "LLM off" in port_check["text"]


def test_doctor_checks_a_comfyui_folder_without_starting_it(env, tmp_path):
    result = speech2image("doctor", "--json", env={**env, "SPEECH2IMAGE_COMFYUI_URL": "",
                                                   "SPEECH2IMAGE_COMFYUI_DISCOVER": dead_url(""),
                                                   "SPEECH2IMAGE_COMFYUI_DIR": str(tmp_path)})
    checks = checks_of(result)
    assert result.returncode == 0  # no ComfyUI is not fatal: jobs stop at the prompt
    assert not checks["comfyui"]["ok"] and "nothing answered" in checks["comfyui"]["text"]
    assert not checks["comfyui_dir"]["ok"] and f"There is no main.py in {tmp_path}" in checks["comfyui_dir"]["text"]
    assert not (tmp_path / "data" / "comfyui.log").exists()  # nothing was started
