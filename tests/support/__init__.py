"""What the tests and the benchmark scripts share: fake servers, a live app server, the
page's websocket and job helpers, stand-in pipeline stages, spoken clips and common inputs.
Fixtures live in ``tests/conftest.py`` (``serve(**config)`` serves an app until the test ends);
test modules import only from here, never from each other.

- ``fake_comfy``: a fake ComfyUI (HTTP + websocket) replaying ``tests/comfyui_traces/``
- ``fake_llm``: a fake OpenAI-compatible server, and ``dead_url`` for a port nothing answers on
- ``live``: ``LiveServer``, the app on a free loopback port (``start``/``stop``, or ``with``)
- ``relay``: ``Relay``, a browser tab's websocket (``with Relay(server) as relay:`` closes it);
  ``start_job`` (a job accepted, not waited for); ``run`` (one job, start to end: snapshot, events); ``finished``
- ``stages``: stand-ins for the pipeline's transcriber, prompt writer and voices, and ``WatchedHub``
  (the job's durable rows as each event is published), to run ``jobs.Pipeline`` without models
- ``speech``: spoken clips made at test time, and ``NORMALIZE`` for word error rates
- ``data``: common inputs (the offline rewriter's transcripts, the shipped workflow)
- ``coqui``: ``tiny_vits``, a few-MB Coqui model built at test time
- ``real_comfy``: a real ComfyUI seen from outside (its queue watched, its history's outcomes and render
  times) for the tests that run against one, and ``real_only``, their skip mark
- ``comfy_standin``: a stand-in for ComfyUI's main.py (slow start, crash, deaf to SIGTERM)
- ``project``: copies of the project, and fresh environments that borrow this one's packages
"""
