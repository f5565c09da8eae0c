"""Start speech2image: ``python app.py`` (settings from SPEECH2IMAGE_* variables)."""
from speech2image import create_app


def main() -> None:
    app = create_app()
    settings = app.config["SETTINGS"]
    app.logger.info("speech2image on http://%s:%s", settings.host, settings.port)
    app.run(host=settings.host, port=settings.port, debug=settings.debug, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
