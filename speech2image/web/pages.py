from flask import Blueprint, Response, abort, render_template, send_file

from ..jobs import KINDS, page_table
from .context import current_runtime

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    runtime = current_runtime()
    return render_template("index.html", knobs=runtime.knobs(), settings=runtime.settings, table=page_table())


@bp.get("/outputs/<name>")
def output_file(name: str):
    """Results by job id only; the request never names a path."""
    job_id, _, kind = name.partition(".")
    try:
        path = current_runtime().store.path(job_id, kind)
    except FileNotFoundError:
        abort(404)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=KINDS[kind], max_age=3600)
    # No file name in the header: a browser prefers it to the page's download name (red-fox-in-snow-1a2b3c.png).
    response.headers.pop("Content-Disposition", None)
    return response


@bp.get("/metrics")
def metrics():
    """Prometheus text format: jobs by outcome, stage latency histograms, queue depth, ComfyUI up."""
    runtime = current_runtime()
    collected = runtime.metrics
    for server in runtime.comfy.status():
        collected.comfyui_up.labels(server["url"]).set(1 if server["state"] == "ready" else 0)
    return Response(collected.exposition(), mimetype=collected.content_type.split(";")[0],
                    headers={"Content-Type": collected.content_type})
