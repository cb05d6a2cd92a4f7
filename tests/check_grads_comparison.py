"""jaxgrad.compare vs jax.test_util.check_grads on the same points: false alarms and misses, side by side.

Run: python tests/check_grads_comparison.py [--points 500]
False alarms: points flagged although the gradient is right (built-in functions and the zoo of correct ones).
Misses: points where a planted bug is present (the wrong gradient differs from the true one) but not flagged.
"""

import argparse
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

import jaxgrad as jg
from jaxgrad import functions
from jaxgrad.bench import format_table

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import zoo


def check_grads_flags(fun, points) -> np.ndarray:
    flags = []
    for x in points:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                check_grads(fun, (jnp.asarray(x),), order=1)
            flags.append(False)
        except AssertionError:
            flags.append(True)
    return np.asarray(flags)


def true_gradient(bug_name, x):
    """The right gradient, by the same formulas as the planted ones, in the same dtype (so "present" is exact)."""
    x = jnp.asarray(x)
    g = jax.vmap(zoo.base_grad)(x)
    if bug_name == "missing small term":
        g = g.at[:, 4].add(3 * zoo.SMALL[x.dtype.name] * x[:, 4] ** 2)
    return np.asarray(g)


STEP = "auto"
"""compare's step in every table (--step)."""


def main(num_points: int) -> None:
    rows = []
    for dtype in ("float32", "float64"):
        alarms_ours = alarms_theirs = total = 0
        start = time.perf_counter()
        cases = [(f, f.sample(num_points, f.default_dim, seed=31, dtype=dtype)) for f in functions.BUILTINS.values()]
        cases += [(f, zoo.sample(num_points, 6, dtype, seed=31)) for f in zoo.CORRECT.values()]
        for fun, points in cases:
            alarms_ours += int((~jg.compare(fun, points, reference=False, step=STEP).passed).sum())
            alarms_theirs += int(check_grads_flags(fun, points).sum())
            total += len(points)
        rows.append(["correct gradients", dtype, f"{total:,}", "-", "false alarms", alarms_ours, alarms_theirs])
        for bug in zoo.bugs(dtype):
            points = zoo.sample(64, 6, dtype, seed=9)
            wrong = np.asarray(jax.vmap(jax.grad(bug.fun))(jnp.asarray(points)))
            present = np.any(wrong != true_gradient(bug.name, points), axis=1)
            ours = ~jg.compare(bug.fun, points, reference=False, step=STEP).passed
            theirs = check_grads_flags(bug.fun, points)
            rows.append([bug.name, dtype, 64, int(present.sum()), "missed points", int((present & ~ours).sum()),
                         int((present & ~theirs).sum())])  # fmt: skip
        print(f"{dtype}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print(format_table(["case", "dtype", "points", "bug present at", "counted", "jaxgrad.compare",
                        "jax check_grads"], rows))  # fmt: skip
    print()
    print(taylor_slopes())
    print()
    print(false_alarm_margins())


def false_alarm_margins(num_points: int = 10_000) -> str:
    """jaxgrad alone, at 10,000 points per function and dtype: failures and the largest error/tolerance (< 1)."""
    rows = []
    cases = [(f.name, f, lambda dt, f=f: f.sample(num_points, f.default_dim, seed=5, dtype=dt))
             for f in functions.BUILTINS.values()]  # fmt: skip
    cases += [(n, f, lambda dt: zoo.sample(num_points, 6, dt, seed=5)) for n, f in zoo.CORRECT.items()]
    cases.append(("mlp_loss", zoo.mlp_loss, lambda dt: zoo.sample_mlp(num_points, dt, seed=5)))
    for name, fun, sample in cases:
        row = [name]
        for dtype in ("float32", "float64"):
            rep = jg.compare(fun, sample(dtype), reference_points=100, step=STEP)
            row += [int((~rep.passed).sum()), f"{max(p.max_ratio for p in rep.pairs):.3f}", rep.verdict]
        rows.append(row)
    headers = ["function", "f32 failures", "f32 max err/tol", "f32 verdict", "f64 failures", "f64 max err/tol",
               "f64 verdict"]  # fmt: skip
    return format_table(
        headers, rows, title=f"correct gradients at {num_points:,} points (all pairs, reference on 100)"
    )


def taylor_slopes() -> str:
    """Taylor-test slopes: correct zoo functions along a random direction at 3 points; each planted bug along its
    coordinate at the point where compare found it worst."""
    rows = []
    for dtype in ("float32", "float64"):
        for name, f in zoo.CORRECT.items():
            slopes = [
                jg.taylor_test(f, jnp.asarray(zoo.sample(1, 6, dtype, seed=s)[0]), seed=s).slope for s in range(3)
            ]
            rows.append([name, dtype, "correct", " ".join(f"{v:.3f}" for v in slopes)])
        for bug in zoo.bugs(dtype):
            points = zoo.sample(64, 6, dtype, seed=9)
            worst = jg.compare(bug.fun, points, reference=False, step=STEP).worst
            axis = jnp.zeros(6, dtype).at[worst.coordinate].set(1)
            result = jg.taylor_test(bug.fun, jnp.asarray(points[worst.point]), direction=axis)
            rows.append([bug.name, dtype, f"bug, along {worst.name}", f"{result.slope:.3f}"])
    return format_table(["function", "dtype", "gradient", "taylor_test slope(s)"], rows)


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=500, help="points per correct function")
    parser.add_argument("--step", default="auto", help="compare's step: auto (default) or fixed")
    args = parser.parse_args()
    STEP = None if args.step == "fixed" else args.step
    main(args.points)
