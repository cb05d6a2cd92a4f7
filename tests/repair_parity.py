"""Bit-for-bit parity of two jaxgrad checkouts where no domain repair is needed (issue 12 item 3).

Usage (each `dump` under the checkout it measures, then `diff`):

    PYTHONPATH=/path/to/main   JAX_ENABLE_X64=1 .venv/bin/python tests/repair_parity.py dump /tmp/main.npz
    PYTHONPATH=/path/to/branch JAX_ENABLE_X64=1 .venv/bin/python tests/repair_parity.py dump /tmp/branch.npz
    .venv/bin/python tests/repair_parity.py diff /tmp/main.npz /tmp/branch.npz

`dump` runs grad, batch_grad (with and without error; central, forward and Richardson; in one pass, in chunks
and in coordinate blocks), jacobian, hessian and compare's numbers on the built-in functions (jaxgrad.functions,
finite everywhere on their domains, so no repair runs), step=None and step="auto", float32 and float64, and saves
every output array. `diff` prints each output that is not bit-for-bit equal (NaNs equal): how many values differ,
the largest difference in ulps and relatively, and where; then a count of the programs that differ.
A report, not a test.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np

import jaxgrad as jg
from jaxgrad import functions

NAMES = ["sphere", "rosenbrock", "rastrigin", "ackley", "styblinski_tang", "beale", "himmelblau", "logsumexp"]
POINTS = 64
STEPS = {"default": None, "auto": "auto"}


def leaves(out) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(out)]


def cases(dtype: str):
    """(key, thunk) for every program of one dtype."""
    for name in NAMES:
        f = functions.get(name)
        dim = f.max_dim or 5
        points = jnp.asarray(f.sample(POINTS, dim=dim, seed=3), dtype)
        x = points[0]
        for label, step in STEPS.items():
            key = f"{dtype}/{name}/{label}"
            for error in (False, True):
                yield f"{key}/grad/err={error}", lambda f=f, s=step, e=error, x=x: jg.grad(f, step=s, with_error=e)(x)
                for method in ("central", "forward", "richardson"):
                    yield (f"{key}/batch_grad/{method}/err={error}",
                           lambda f=f, s=step, e=error, m=method, p=points: jg.batch_grad(f, p, method=m, step=s,
                                                                                         with_error=e))  # fmt: skip
                yield (f"{key}/batch_grad/chunked/err={error}",  # chunks of 11 to 32 points, planned
                       lambda f=f, s=step, e=error, p=points: jg.batch_grad(f, p, step=s, with_error=e,
                                                                         memory_budget=20_000))  # fmt: skip
            yield f"{key}/jacobian", lambda f=f, s=step, x=x: jg.jacobian(f.gradient, step=s, with_error=True)(x)
            yield f"{key}/hessian", lambda f=f, s=step, x=x: jg.hessian(f, step=s, with_error=True)(x)
            yield (f"{key}/compare",
                   lambda f=f, s=step, p=points: (lambda c: (c.numeric, c.tolerance, c.exact))(
                       jg.compare(f, p, grad_fn=f.gradient, reference=False, step=s)))  # fmt: skip
        # the coordinate-blocked path: one point too large for the budget, its coordinates in blocks
        if f.max_dim is None:
            big = jnp.asarray(f.sample(4, dim=40, seed=5), dtype)
            for label, step in STEPS.items():
                for error in (False, True):
                    yield (f"{dtype}/{name}/{label}/blocked/err={error}",
                           lambda f=f, s=step, e=error, p=big: jg.batch_grad(f, p, step=s, with_error=e,
                                                                             memory_budget=20_000))  # fmt: skip


def dump(path: str) -> None:
    out = {}
    dtypes = ["float32", "float64"] if jax.config.jax_enable_x64 else ["float32"]
    for dtype in dtypes:
        for key, thunk in cases(dtype):
            for i, leaf in enumerate(leaves(thunk())):
                out[f"{key}#{i}"] = leaf
    np.savez(path, **out)
    print(f"{len(out)} arrays from {jg.__file__} -> {path}")


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a − b| in units of the spacing at max(|a|, |b|) (float arrays), else 0/1."""
    if not np.issubdtype(a.dtype, np.floating):
        return (a != b).astype(float)
    big = np.maximum(np.abs(a), np.abs(b)).astype(a.dtype)
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(a) & np.isnan(b), 0.0, np.abs(a.astype(float) - b.astype(float)) / np.spacing(big))


def diff(path_a: str, path_b: str) -> int:
    a, b = np.load(path_a), np.load(path_b)
    keys = sorted(set(a) | set(b))
    programs = {k.split("#")[0] for k in keys}
    different = set()
    for key in keys:
        if key not in a or key not in b:
            print(f"{key}: only in {'A' if key in a else 'B'}")
            different.add(key.split("#")[0])
            continue
        x, y = a[key], b[key]
        if x.shape != y.shape or x.dtype != y.dtype:
            print(f"{key}: shape/dtype {x.shape} {x.dtype} vs {y.shape} {y.dtype}")
            different.add(key.split("#")[0])
            continue
        if np.array_equal(x, y, equal_nan=np.issubdtype(x.dtype, np.floating)):
            continue
        u = ulps(x, y)
        where = np.unravel_index(np.nanargmax(u), u.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.nanmax(np.abs(x.astype(float) - y.astype(float)) / np.maximum(np.abs(x), np.abs(y)))
        print(f"{key}: {int(np.sum(u > 0))} of {x.size} values differ, max {np.nanmax(u):.3g} ulp "
              f"(relative {rel:.2g}) at {tuple(int(i) for i in where)}: {x[where]!r} vs {y[where]!r}")  # fmt: skip
        different.add(key.split("#")[0])
    print(f"{len(different)} of {len(programs)} programs differ ({len(keys)} arrays)")
    return 1 if different else 0


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "dump":
        dump(*args)
    elif command == "diff":
        sys.exit(diff(*args))
    else:
        sys.exit(__doc__)
