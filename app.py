"""Start speech2image: ``python app.py`` (settings from SPEECH2IMAGE_* variables).

The same as ``speech2image serve`` and ``python -m speech2image``; the program is ``speech2image.cli``.
"""
import sys

from speech2image.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
