"""The cost of the domain repair (issue 12 item 3): compile time and time per call, two checkouts interleaved.

Usage:

    .venv/bin/python tests/repair_cost.py /path/to/main /path/to/branch [rounds]
    PYTHONPATH=/path/to/branch .venv/bin/python tests/repair_cost.py --paired

Each round runs one fresh process per checkout (alternating which goes first) with JAX_ENABLE_X64=1 and no
persistent compilation cache; the process times, for sphere and rosenbrock (d = 10, N = 10,000, float32 and
float64), `jg.batch_grad`'s first call (trace + compile + run) and the median of 20 later calls, and the same for
`jg.grad` at one point. Prints the medians over the rounds.

`--paired` measures the run time alone, in one process: the same programs traced with and without the repair
(`_evaluate.repairable` patched off for the second), called alternately, and the median of the ratios of each pair;
on a loaded machine this is far steadier than two processes. A benchmark that prints a table, not a test.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

CALLS = 20


def measure() -> dict:
    import jax
    import jax.numpy as jnp

    import jaxgrad as jg
    from jaxgrad import functions

    jax.config.update("jax_enable_compilation_cache", False)
    out = {}
    for name in ("sphere", "rosenbrock"):
        f = functions.get(name)
        for dtype in ("float32", "float64"):
            points = jnp.asarray(f.sample(10_000, dim=10, seed=0), dtype)
            for label, call in (("batch_grad", lambda p, f=f: jg.batch_grad(f, p)),
                                ("grad", lambda p, f=f: jg.grad(f)(p[0]))):  # fmt: skip
                start = time.perf_counter()
                jax.block_until_ready(call(points))
                first = time.perf_counter() - start
                times = []
                for i in range(CALLS):
                    p = points + (i + 1) * 1e-3
                    p.block_until_ready()
                    start = time.perf_counter()
                    jax.block_until_ready(call(p))
                    times.append(time.perf_counter() - start)
                out[f"{label} {name} {dtype}"] = (first, statistics.median(times))
    return out


def paired(calls: int = 300) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np

    import jaxgrad as jg
    from jaxgrad import _evaluate, functions

    jax.config.update("jax_enable_x64", True)
    repairable = _evaluate.repairable
    print(f"{'program':30} {'no repair':>10} {'repair':>10} {'ratio (median of pairs)':>24}")
    for name in ("sphere", "rosenbrock"):
        for dtype in ("float32", "float64"):
            f = functions.get(name)
            plain = lambda x, f=f: f(x)  # noqa: E731  another static fun: a program of its own
            points = jnp.asarray(f.sample(10_000, dim=10, seed=0), dtype)
            for label, call in (("batch_grad", lambda fun, p=points: jg.batch_grad(fun, p)),
                                ("grad", lambda fun, p=points: jg.grad(fun)(p[0]))):  # fmt: skip
                jax.block_until_ready(call(f))
                _evaluate.repairable = lambda scheme: False
                try:
                    jax.block_until_ready(call(plain))
                finally:
                    _evaluate.repairable = repairable
                a, b = [], []
                for _ in range(calls if label == "batch_grad" else 5 * calls):
                    start = time.perf_counter()
                    jax.block_until_ready(call(plain))
                    a.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    jax.block_until_ready(call(f))
                    b.append(time.perf_counter() - start)
                a, b = np.asarray(a), np.asarray(b)
                print(f"{label + ' ' + name + ' ' + dtype:30} {np.median(a) * 1e3:8.3f}ms {np.median(b) * 1e3:8.3f}ms "
                      f"{np.median(b / a):24.3f}")  # fmt: skip


def main(main_path: str, branch_path: str, rounds: int = 5) -> None:
    results: dict[str, dict[str, list]] = {"main": {}, "branch": {}}
    for r in range(rounds):
        order = [("main", main_path), ("branch", branch_path)]
        for label, path in order if r % 2 == 0 else order[::-1]:
            env = dict(os.environ, PYTHONPATH=path, JAX_ENABLE_X64="1")
            text = subprocess.run([sys.executable, __file__, "--measure"], env=env, check=True, capture_output=True,
                                  text=True).stdout  # fmt: skip
            for key, value in json.loads(text.splitlines()[-1]).items():
                results[label].setdefault(key, []).append(value)
        print(f"round {r + 1} of {rounds} done", file=sys.stderr)
    print(f"{'program':34} {'first call main':>15} {'branch':>9} {'per call main':>14} {'branch':>9} {'ratio':>6}")
    for key in results["main"]:
        (cm, rm), (cb, rb) = ([statistics.median(v[i] for v in results[s][key]) for i in (0, 1)]
                              for s in ("main", "branch"))  # fmt: skip
        print(f"{key:34} {cm:14.3f}s {cb:8.3f}s {rm * 1e3:12.3f}ms {rb * 1e3:7.3f}ms {rb / rm:6.2f}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--measure"]:
        print(json.dumps(measure()))
    elif sys.argv[1:] == ["--paired"]:
        paired()
    else:
        main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:]))
