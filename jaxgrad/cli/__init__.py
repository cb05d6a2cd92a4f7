"""The command line: `jaxgrad compare | study | plot | grad | functions | bench` (also `python -m jaxgrad`).

One module per subcommand, each with `add_parser(commands)` and `run(args)`; the argument groups they share are
declared once in `_args`, progress, interruption and files in `_output`.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax

from .. import __version__
from . import bench, compare, functions, grad, plot, study
from ._args import join_negative_numbers

SUBCOMMANDS = (compare, grad, study, plot, functions, bench)


def build_parser() -> argparse.ArgumentParser:
    """The `jaxgrad` parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="jaxgrad", description="Numerical gradients at scale on JAX.")
    parser.add_argument("--version", action="version", version=f"jaxgrad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        command.add_parser(commands)
    return parser


def main(argv=None) -> int:
    """Entry point of the `jaxgrad` command; returns the exit code."""
    args = build_parser().parse_args(join_negative_numbers(sys.argv[1:] if argv is None else argv))
    if "" not in sys.path and os.getcwd() not in sys.path:  # as under `python -m`: module:attr finds ./mypkg
        sys.path.insert(0, os.getcwd())
    try:
        with jax.enable_x64(True):  # so --dtype float64 is float64; float32 input stays float32
            return args.run(args)
    except (ValueError, TypeError, ImportError) as error:
        print(f"jaxgrad {args.command}: error: {error}", file=sys.stderr)
        return 2
