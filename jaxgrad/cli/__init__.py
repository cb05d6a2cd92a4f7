"""The command line: `jaxgrad compare | study | plot | grad | functions | bench` (also `python -m jaxgrad`).

One module per subcommand, each with `add_parser(commands)` and `run(args)`; the argument groups they share are
declared once in `_args`, progress, interruption and files in `_output`.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import os
import signal
import sys

import jax

from .. import __version__
from . import _args, bench, compare, functions, grad, plot, study
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


INTERRUPTED = 130
"""The exit code after Ctrl-C, as shells report it."""
DEBUG = "JAXGRAD_DEBUG"
"""Set this environment variable to 1 to see the traceback of an error instead of its one line."""


CACHE = "JAXGRAD_CACHE_DIR"
"""Where the command keeps XLA's compiled programs between runs; "off" keeps none."""


def use_compilation_cache() -> str | None:
    """Turn on JAX's persistent compilation cache for this process, so that a command run again with the same
    functions, shapes and options compiles nothing (XLA's compiles are most of `jaxgrad compare`'s time): in
    $JAXGRAD_CACHE_DIR, else $XDG_CACHE_HOME/jaxgrad/xla or ~/.cache/jaxgrad/xla. JAXGRAD_CACHE_DIR=off turns it off;
    a cache already configured for JAX (JAX_COMPILATION_CACHE_DIR) is left as it is; `jaxgrad bench`, which times
    compiles, never uses it. Returns the directory, or None."""
    chosen = os.environ.get(CACHE, "")
    if chosen.lower() in ("off", "0", "none") or jax.config.jax_compilation_cache_dir:
        return None
    if not chosen:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        chosen = os.path.join(base, "jaxgrad", "xla")
    try:
        os.makedirs(chosen, exist_ok=True)
    except OSError:  # a read-only home: run without a cache
        return None
    jax.config.update("jax_compilation_cache_dir", chosen)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # ours take ~0.4 s each: keep them all
    return chosen


def main(argv=None) -> int:
    """Entry point of the `jaxgrad` command; returns the exit code: 0 done, 1 a gradient mismatch, 2 an error (one
    line on stderr), 130 interrupted (Ctrl-C; finished results are kept)."""
    args = build_parser().parse_args(join_negative_numbers(sys.argv[1:] if argv is None else argv))
    if args.command != "bench":  # bench measures XLA's compiles: a cache would hide them
        use_compilation_cache()
    _args.users_x64 = bool(jax.config.jax_enable_x64)  # their modules import under it
    try:
        with jax.enable_x64(True):  # so --dtype float64 is float64; float32 input stays float32
            return args.run(args)
    except KeyboardInterrupt:
        print(f"jaxgrad {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as error:  # every failure is one line and exit 2; JAXGRAD_DEBUG=1 shows the traceback
        if os.environ.get(DEBUG, "") not in ("", "0"):
            raise
        print(f"jaxgrad {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2


def run() -> None:
    """The `jaxgrad` console script and `python -m jaxgrad`: `main()`, then exit. After Ctrl-C (exit 130, every
    finished result already written and closed) the process ends at once (os._exit, after flushing): a compiled
    call abandoned in flight would abort the interpreter's finalization ("terminate called ...", SIGABRT). Once
    main() has returned, its work is done and written: a Ctrl-C then ends the process at once with main's exit code,
    where it would interrupt the interpreter's exit (a KeyboardInterrupt traceback from JAX's atexit callback, or
    death by SIGINT) or, for a module that left a thread running, could not stop it."""
    try:
        code = main()
    except KeyboardInterrupt:  # as main() returned
        code = INTERRUPTED
    signal.signal(signal.SIGINT, functools.partial(_exit_at_once, code))
    if code == INTERRUPTED:
        _exit_at_once(code)
    # from the atexit callbacks on (after the interpreter has joined every thread), Ctrl-C is ignored: Python resets
    # a handler to the default late in its finalization, where a Ctrl-C would kill the process by SIGINT
    atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)  # registered last, so run first
    sys.exit(code)


def _exit_at_once(code: int, *_signal) -> None:
    """Flush standard output and error, and end the process with `code` (os._exit: no finalization)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _one_line(error: BaseException) -> str:
    """The error as one line: its message, with the type where the message alone would not say what happened."""
    if isinstance(error, OSError) and error.strerror:
        where = f" {error.filename!r}" if error.filename else ""
        return f"{error.strerror}:{where}"
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, (ValueError, TypeError, ImportError, OSError)):
        return text
    return f"{type(error).__name__}: {text} (run with {DEBUG}=1 for the traceback)"
