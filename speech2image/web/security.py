"""Safe to leave running and to share on a LAN.

- Bound to anything but loopback, the app needs ``SPEECH2IMAGE_TOKEN`` and asks for it on
  every HTTP and websocket request (a login page sets an HttpOnly cookie; scripts may send
  ``Authorization: Bearer <token>``).
- State-changing requests and websockets from another site are refused (Origin /
  Sec-Fetch-Site), so a page elsewhere cannot drive this one through the user's browser.
- Every answer carries a Content-Security-Policy: scripts, styles and connections only from here.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
from urllib.parse import urlparse

from flask import (
    Blueprint,
    Flask,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from .context import current_runtime
from .errors import is_api_request, json_error

log = logging.getLogger(__name__)
bp = Blueprint("security", __name__)

COOKIE = "s2i_token"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
OPEN_PATHS = ("/login", "/static/")
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class UnsafeBind(ValueError):
    """Asked to serve a network without a token."""


def check_bind(host: str, token: str) -> None:
    """Refuse to serve a network without a token: anyone on it could use the GPU and read the gallery."""
    if not is_loopback(host) and not token:
        raise UnsafeBind(
            f"speech2image will not listen on {host} without an access token: set SPEECH2IMAGE_TOKEN to a long "
            "random secret (for example `python -c 'import secrets; print(secrets.token_urlsafe(24))'`), "
            "or bind to 127.0.0.1."
        )


def same_origin(origin: str) -> bool:
    parsed = urlparse(origin)
    return bool(parsed.netloc) and parsed.netloc.lower() == request.host.lower()


def presented_token() -> str:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE, "")


def init_app(app: Flask) -> None:
    @app.before_request
    def guard():
        token = current_runtime().settings.token
        origin = request.headers.get("Origin")
        is_websocket = request.headers.get("Upgrade", "").lower() == "websocket"
        if request.method in UNSAFE_METHODS or is_websocket:
            cross_site = (origin and origin != "null" and not same_origin(origin)) or origin == "null" \
                or request.headers.get("Sec-Fetch-Site") == "cross-site"
            if cross_site:
                log.warning("refused a cross-site %s %s from %s", request.method, request.path, origin)
                return _deny(403, "cross_site", "requests from other sites are not accepted")
        if token and not request.path.startswith(OPEN_PATHS):
            if not hmac.compare_digest(presented_token().encode(), token.encode()):
                if request.path.startswith("/api/") or request.path in ("/ws", "/ws/audio", "/metrics") or is_websocket:
                    return _deny(401, "unauthorized", "log in first: open the page and enter the access token")
                if request.path.startswith("/outputs/"):
                    return _deny(401, "unauthorized", "log in first")
                return redirect(url_for("security.login", next=request.path))
        return None

    @app.after_request
    def headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    app.register_blueprint(bp)


def _deny(status: int, code: str, message: str):
    if is_api_request():
        return json_error(status, code, message)
    return make_response(message, status)


@bp.route("/login", methods=["GET", "POST"])
def login():
    token = current_runtime().settings.token
    target = request.args.get("next") or "/"
    if not target.startswith("/") or target.startswith("//"):
        target = "/"  # never an open redirect
    error = None
    if request.method == "POST":
        given = request.form.get("token", "")
        if token and hmac.compare_digest(given.encode(), token.encode()):
            response = redirect(target)
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=request.is_secure,
                                max_age=30 * 24 * 3600)
            return response
        error = "That token is not right."
        log.warning("failed login from %s", request.remote_addr)
    return render_template("login.html", error=error, needed=bool(token)), (401 if error else 200)
