"""Where batch_grad's time goes on the device, beside the hand-written B (ci/gpu's step 4; runs on a CPU too).

For a few configurations of `jaxgrad bench --compare`, interleaved, medians of per-round times in ms:
  A        jg.batch_grad(f, x), its defaults
  P        A's compiled program alone (`_batching.gradient_program`, the chunk plan A makes), no host-side work
  P+read   P, then its gradients read back and checked on the host: what A does on a CPU to decide whether the
           domain repair must run (`_evaluate.lazily_repaired`)
  Pr       the program with the domain repair built in (its branch under lax.cond), which needs no read: what A
           runs off the CPU
  B, D     as in `jaxgrad bench --compare`
and the plan (chunk of points, block of coordinates) and the kernels in each optimised program's entry computation
(fusions, custom calls, loops, conditionals: roughly the kernels launched per call, a loop's body once).

Usage: python ci/gpu_breakdown.py [--quick | --rows K]   (the first K configurations; float64 rows need
JAX_ENABLE_X64=1)
"""

import re
import statistics
import sys

import jax
import numpy as np

import jaxgrad as jg
from jaxgrad import bench
from jaxgrad._batching import Batching, gradient_program, plan
from jaxgrad._schemes import Central
from jaxgrad._steps import as_step_rule
from jaxgrad._table import format_table

CONFIGS = [("sphere", 2, 10), ("rosenbrock", 2, 100_000), ("sphere", 10, 1_000_000), ("sphere", 2, 10_000),
           ("rosenbrock", 10, 1_000_000), ("mlp", 10, 1_000_000), ("sphere", 100, 100_000)]  # fmt: skip
QUICK = [("sphere", 2, 10), ("rosenbrock", 10, 1_000)]
KERNEL = re.compile(r"=\s*\S+\s+(fusion|custom-call|while|conditional|copy|all-reduce)\(")


def kernels(jitted, *args) -> int:
    """Kernel-launching instructions in the entry computation of the optimised program."""
    text = jitted.lower(*args).compile().as_text()
    entry = text[text.index("ENTRY") :]
    entry = entry[: entry.index("\n}")]
    return len(KERNEL.findall(entry))


def row(name, dim, n, dtype="float32", rounds=15):
    fun = bench._function(name, dim)
    x = jax.device_put(fun.sample(n, dim, seed=0, dtype=dtype))
    rule, scheme = as_step_rule(None), Central(2)
    budget = Batching().budget(jax.devices()[0].platform)
    chosen = plan(x, rule, budget, fun=fun, scheme=scheme)
    static = dict(fun=fun, scheme=scheme, chunk=Batching())

    def program(repair=False):
        return gradient_program(x, rule, **static, repair=repair)

    def read():
        return bool(np.isfinite(np.asarray(program()[0])).all())

    hand, floor = bench.hand_written(fun), jax.jit(jax.vmap(fun))
    rows = jax.block_until_ready(bench.stencil_rows(x))
    calls = {"A": lambda: jg.batch_grad(fun, x), "P": program, "P+read": read,
             "Pr": lambda: program(repair=True), "B": lambda: hand(x), "D": lambda: floor(rows)}  # fmt: skip
    for call in calls.values():
        jax.block_until_ready(call())
    fastest = min(bench._first_call(call) for call in calls.values())
    inner = min(100, max(1, round(bench.TIMING_S / max(fastest, 1e-6))))
    times = bench._interleaved(calls, rounds, budget_s=3.0, inner=inner)
    ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    k_p, k_b = kernels(jax.jit(lambda x: gradient_program(x, rule, **static, repair=False)), x), kernels(hand, x)
    cells = [name, dim, f"{n:,}", dtype, chosen.chunk, chosen.block or "-"] + [f"{ms[k]:.3f}" for k in calls]
    return [*cells, f"{ms['A'] / ms['B']:.2f}", f"{ms['P'] / ms['B']:.2f}", k_p, k_b, len(times["A"])]


def main(argv):
    configs = QUICK if "--quick" in argv else CONFIGS[: int(argv[1])] if argv[:1] == ["--rows"] else CONFIGS
    dtypes = ["float32"] + (["float64"] if jax.config.jax_enable_x64 else [])
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}")
    headers = ["fun", "d", "N", "dtype", "chunk", "block", "A ms", "P ms", "P+read ms", "Pr ms", "B ms",
               "D ms", "A/B", "P/B", "kernels P", "kernels B", "rounds"]  # fmt: skip
    body = []
    for name, dim, n in configs:
        for dtype in dtypes:
            body.append(row(name, dim, n, dtype))
            print(" ".join(map(str, body[-1])), flush=True)
    print(format_table(headers, body, title="where batch_grad's time goes (medians over interleaved rounds)"))


if __name__ == "__main__":
    main(sys.argv[1:])
