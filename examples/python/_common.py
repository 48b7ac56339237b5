"""What every example shares: the server address and an error exit scripts can read."""

import os
import sys

from atelier import AtelierError

ADDR = os.environ.get("ATELIER_ADDR", "localhost:8500")


def run(main):
    """Runs main(), printing an AtelierError as "CODE: details" on stderr with exit 1."""
    try:
        main()
    except AtelierError as e:
        print(f"{os.path.basename(sys.argv[0])}: {e}", file=sys.stderr)
        sys.exit(1)
