"""step="auto" against the fixed step: accuracy on the built-ins (with the best a single step per point can do) and
how well `with_error=True` covers the true error, per method.

Run: JAX_ENABLE_X64=1 python tests/auto_report.py [--points 300] [--part accuracy|coverage|both]

accuracy: median relative error |g − g*|/|g*| per point (g* = jax.grad in float64) of the fixed step and of auto,
  and "best": the median over points of the smallest error any step h = 2^k·max(|x|, 1) reaches at that point (a
  per-point oracle; for polynomials of degree ≤ p it reaches rounding, since no step has truncation there).
coverage: over the built-ins and the zoo of smooth functions, the share of coordinates whose true error is at most
  the estimate, "silent": coordinates whose true error exceeds 10× the estimate while the status is OK, and "OK":
  the share of points whose status is OK.
"""

import argparse
import sys

import jax
import jax.numpy as jnp
import numpy as np

import jaxgrad as jg
from jaxgrad import functions
from jaxgrad.bench import format_table

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import zoo

ORDERS = [("central", 2), ("central", 4), ("richardson", 6)]
COVERED = [("central", 2), ("central", 4), ("richardson", 6), ("forward", 1), ("complex", 2)]


def rel(a, b):
    return np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def errors(f, points, exact, method, order, step):
    g = jg.batch_grad(f, points, method=method, order=order, step=step)
    return rel(np.asarray(g, np.float64), exact)


def accuracy(n: int) -> str:
    rows = []
    for f in functions.BUILTINS.values():
        p64 = f.sample(n, f.default_dim, seed=41)
        exact = np.asarray(jax.vmap(jax.grad(f))(jnp.asarray(p64)))
        for dtype in ("float32", "float64"):
            points, row = jnp.asarray(p64.astype(dtype)), [f.name, dtype]
            eps = float(jnp.finfo(dtype).eps)
            for method, order in ORDERS:
                sweep = np.stack([errors(f, points, exact, method, order, jg.Relative(2.0**k))
                                  for k in range(-45, 3) if 2.0**k > 4 * eps])  # fmt: skip
                best = np.median(np.nanmin(np.where(np.isfinite(sweep), sweep, np.inf), axis=0))
                fixed = np.median(errors(f, points, exact, method, order, None))
                auto = np.median(errors(f, points, exact, method, order, "auto"))
                row += [f"{fixed:.1e}", f"{auto:.1e}", f"{best:.1e}", f"{auto / best:.1f}"]
            rows.append(row)
    headers = ["function", "dtype"] + [f"{m[:4]}{o} {c}" for m, o in ORDERS for c in ("fixed", "auto", "best", "a/b")]
    return format_table(headers, rows, title=f"median relative error, {n} points per function")


def coverage(n: int) -> str:
    cases = [(f.name, f, f.sample(n, f.default_dim, seed=7)) for f in functions.BUILTINS.values()]
    cases += [(k, f, zoo.sample(n, 6, "float64", seed=7)) for k, f in zoo.CORRECT.items()]
    rows = []
    for method, order in COVERED:
        for step in (None, "auto"):
            for dtype in ("float32", "float64"):
                total = covered = silent = points = ok = 0
                where = []
                for name, f, p64 in cases:
                    exact = np.asarray(jax.vmap(jax.grad(f))(jnp.asarray(p64)))
                    try:
                        e = jg.batch_grad(f, jnp.asarray(p64.astype(dtype)), method=method, order=order, step=step,
                                          with_error=True)  # fmt: skip
                    except (TypeError, ValueError):  # not complex-safe: refused with a message
                        continue
                    error = np.abs(np.asarray(e.value, np.float64) - exact)
                    estimate = np.asarray(e.error, np.float64)
                    quiet = (error > 10 * estimate) & (np.asarray(e.status) == 0)[:, None]
                    total, covered = total + error.size, covered + int(np.sum(error <= estimate))
                    silent += int(quiet.sum())
                    points, ok = points + len(error), ok + int(np.sum(np.asarray(e.status) == 0))
                    where += [f"{name}:{int(quiet.sum())}"] if quiet.any() else []
                rows.append([f"{method} {order}", str(step), dtype, f"{total:,}", f"{covered / total:.4f}", silent,
                             f"{ok / points:.3f}", " ".join(where[:5])])  # fmt: skip
    headers = ["method", "step", "dtype", "coordinates", "covered", "silent", "OK", "where silent"]
    return format_table(headers, rows, title=f"with_error coverage, {n} points per function")


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=300)
    parser.add_argument("--part", choices=("accuracy", "coverage", "both"), default="both")
    args = parser.parse_args()
    if args.part in ("accuracy", "both"):
        print(accuracy(args.points), flush=True)
    if args.part in ("coverage", "both"):
        print(coverage(args.points))
