"""Count XLA compiles of a `jaxgrad` command, per program name, and the wall time.

Usage (any `jaxgrad` arguments after the script's name; none: `compare` on its built-in defaults):

    .venv/bin/python tests/compile_count.py
    .venv/bin/python tests/compile_count.py compare --json /tmp/r.json --csv /tmp/r.csv

Counts JAX's backend-compile events ("/jax/core/compile/backend_compile_duration", which carry the program's name)
with a `jax.monitoring` listener, and prints a table: program name, compiles, seconds of backend compile; then the
total and the command's wall time. A benchmark that prints a table, not a test.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import time

import jax.monitoring

EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def counting_compiles():
    """Count the XLA compiles inside the block: yields (counts, seconds), Counters keyed by program name ("jit(f)")."""
    counts: collections.Counter = collections.Counter()
    seconds: collections.Counter = collections.Counter()

    def listener(event, duration, **kwargs):
        if event == EVENT:
            name = str(kwargs.get("fun_name", "?"))
            counts[name] += 1
            seconds[name] += duration

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield counts, seconds
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def main(argv: list[str]) -> int:
    from jaxgrad.cli import main as jaxgrad_main

    with counting_compiles() as (counts, seconds):
        start = time.perf_counter()
        code = jaxgrad_main(argv or ["compare"])
        wall = time.perf_counter() - start
    width = max([len(name) for name in counts] + [7])
    print(f"\n{'program':<{width}}  compiles  backend s", file=sys.stderr)
    for name, count in counts.most_common():
        print(f"{name:<{width}}  {count:>8}  {seconds[name]:>9.2f}", file=sys.stderr)
    total = sum(counts.values())
    print(f"{'total':<{width}}  {total:>8}  {sum(seconds.values()):>9.2f}", file=sys.stderr)
    print(f"wall time of `jaxgrad {' '.join(argv or ['compare'])}`: {wall:.2f} s (exit code {code})", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
