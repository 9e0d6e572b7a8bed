"""``python -m fourd_hub ...`` runs the ``fourd-hub`` command line (see :mod:`fourd_hub.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
