"""`python -m jaxgrad` runs the command line."""

import os
import sys

if sys.path and sys.path[0] in ("", os.getcwd()):  # `python -m` puts the working directory first: ./json.py would
    sys.path.append(sys.path.pop(0))  # shadow the real module; module:attr still finds ./mypkg, after installed ones

from .cli import run

if __name__ == "__main__":
    run()
