"""What the tests and the benchmark scripts share: fake servers, a live app server, the
page's websocket, spoken clips and common inputs. Fixtures live in ``tests/conftest.py``;
test modules import only from here, never from each other.

- ``fake_comfy``: a fake ComfyUI (HTTP + websocket) replaying ``tests/comfyui_traces/``
- ``fake_llm``: a fake OpenAI-compatible server, and ``dead_url`` for a port nothing answers on
- ``live``: ``LiveServer``, the app on a free loopback port
- ``relay``: ``Relay``, a browser tab's websocket; ``finished``; ``run`` (one job, start to end)
- ``speech``: spoken clips made at test time, and ``NORMALIZE`` for word error rates
- ``data``: common inputs (the offline rewriter's transcripts, the shipped workflow)
- ``coqui``: ``tiny_vits``, a few-MB Coqui model built at test time
- ``comfy_standin``: a stand-in for ComfyUI's main.py (slow start, crash, deaf to SIGTERM)
- ``project``: copies of the project, and fresh environments that borrow this one's packages
"""
