"""Start speech2image: ``python app.py`` (settings from SPEECH2IMAGE_* variables)."""
import logging
import sys

from speech2image import create_app
from speech2image.config import Settings
from speech2image.serve import choose_server, serve
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
        server = choose_server(settings)
        app = create_app()
    except (ValueError, UnsafeBind) as exc:
        sys.exit(f"speech2image: {exc}")
    serve(app, settings, server)


if __name__ == "__main__":
    main()
