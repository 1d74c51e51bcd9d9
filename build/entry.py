"""PyInstaller entry script for ``dist/appliance``: the same ``appliance.cli:main`` as ``.venv/bin/appliance``."""

import sys

from appliance.cli import main

if __name__ == "__main__":
    sys.exit(main())
