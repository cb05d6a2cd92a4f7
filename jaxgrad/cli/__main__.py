"""`python -m jaxgrad.cli` runs the command line, as `python -m jaxgrad` does."""

from . import run

if __name__ == "__main__":
    run()
