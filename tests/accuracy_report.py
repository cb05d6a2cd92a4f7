"""Accuracy of every method, and how well `with_error=True` estimates its own error, on the built-in functions and
the zoo of smooth compositions, at 1,000 random points per function.

Run: python tests/accuracy_report.py [--points 1000]
Median relative error per point, |g - g*| / |g*| with g* = jax.grad in float64 at the same points.
"bounds": share of points whose estimated error (norm) is at least the actual error; "within 100x": share where it
is at most 100 times the actual error.
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

METHODS = [("central", 2), ("central", 4), ("central", 6), ("richardson", 6), ("complex", 2)]


def cases(num_points):
    for f in functions.BUILTINS.values():
        yield f.name, f, f.sample(num_points, f.default_dim, seed=41)
    for name, f in zoo.CORRECT.items():
        yield name, f, zoo.sample(num_points, 6, "float64", seed=41)


def rel(a, b):
    return np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def main(num_points):
    rows, estimate_rows = [], []
    summary = {}
    for name, f, points64 in cases(num_points):
        exact = np.asarray(jax.vmap(jax.grad(f))(jnp.asarray(points64)))
        row = [name]
        for dtype in ("float32", "float64"):
            points = jnp.asarray(points64.astype(dtype))
            for method, order in METHODS:
                try:
                    g = np.asarray(jg.batch_grad(f, points, method=method, order=order), np.float64)
                except (TypeError, ValueError):  # not complex-safe: jaxgrad refuses, with a message
                    row.append("n/a")
                    continue
                median = float(np.median(rel(g, exact)))
                summary.setdefault((dtype, method, order), []).append(median)
                row.append(f"{median:.1e}")
            est = jg.batch_grad(f, points, with_error=True)
            actual = np.linalg.norm(np.asarray(est.value, np.float64) - exact, axis=1)
            estimated = np.linalg.norm(np.asarray(est.error, np.float64), axis=1)
            status = np.asarray(est.status)
            bound, within = np.mean(estimated >= actual), np.mean(estimated <= 100 * actual)
            estimate_rows.append([name, dtype, f"{bound:.3f}", f"{within:.3f}", f"{np.mean(status == 0):.3f}"])
        rows.append(row)
    headers = ["function"] + [f"{d[-2:]} {m[:4]}{o}" for d in ("float32", "float64") for m, o in METHODS]
    print(format_table(headers, rows, title="median relative error vs jax.grad (float64)"))
    print()
    medians = [[f"{d} {m} {o}", f"{np.median(v):.2e}", f"{np.max(v):.2e}"] for (d, m, o), v in summary.items()]
    print(format_table(["dtype method order", "median over functions", "worst function"], medians))
    print()
    print(format_table(["function", "dtype", "bounds", "within 100x", "status OK"], estimate_rows,
                       title="central order 2 with_error=True"))  # fmt: skip
    print()
    derivative_rows = []
    for name, f, points64 in cases(num_points):
        x = jnp.asarray(points64)
        hess = np.asarray(jax.vmap(jg.hessian(f))(x))
        exact_hess = np.asarray(jax.vmap(jax.hessian(f))(x))
        jac = np.asarray(jax.vmap(jg.jacobian(jax.grad(f)))(x))  # the Jacobian of the gradient: also the Hessian
        exact_jac = np.asarray(jax.vmap(jax.jacfwd(jax.grad(f)))(x))

        def matrix_rel(a, b):
            a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
            return float(np.median(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)))

        derivative_rows.append([name, f"{matrix_rel(hess, exact_hess):.1e}", f"{matrix_rel(jac, exact_jac):.1e}"])
    print(format_table(["function", "hessian vs jax.hessian", "jacobian(grad) vs jax.jacfwd"], derivative_rows,
                       title="float64, median relative (Frobenius) error"))  # fmt: skip


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=1000)
    main(parser.parse_args().points)
