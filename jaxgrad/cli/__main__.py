"""`python -m jaxgrad.cli` runs the command line, as `python -m jaxgrad` does."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
