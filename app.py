"""Start speech2image: ``python app.py`` (settings from SPEECH2IMAGE_* variables)."""
import logging
import sys

from speech2image import create_app
from speech2image.config import Settings
from speech2image.shutdown import stop_gracefully_on_signals
from speech2image.web.security import UnsafeBind


def main() -> None:
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        sys.exit(f"speech2image: {exc}")
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(level)  # it sets INFO on itself otherwise
    try:
        app = create_app()
    except UnsafeBind as exc:
        sys.exit(str(exc))
    app.logger.info("speech2image on http://%s:%s", settings.host, settings.port)
    stop_gracefully_on_signals(app)
    app.run(host=settings.host, port=settings.port, debug=settings.debug, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
