"""``python -m speech2image [serve|doctor|transcribe|render]``: the same as the ``speech2image`` command."""
import sys

from .cli import main

sys.exit(main())
