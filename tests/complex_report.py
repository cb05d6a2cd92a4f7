"""`compare(method="complex")` on smooth complex-safe functions that stress the exact gradient's own rounding
(sigmoid and tanh near saturation, steep, cancelling terms, large |x|), and two that are not complex-safe: the
verdict, false mismatches, points refused (not complex-safe here), unresolved points, the largest error/tolerance,
the median resolution, the NumPy reference's pass rate, and the share of points where a planted error is caught (the
whole gradient off by 1e-3 in float32 or 1e-6 in float64 relative, and one coordinate off by that much of |g|).

Run: JAX_ENABLE_X64=1 python tests/complex_report.py [--points 2000] [CASE ...]
(JAX_ENABLE_X64=0: float32 only, without the float64 gradient that compare reads float32's rounding from.)
"""

import argparse

import jax
import jax.numpy as jnp
import numpy as np

import jaxgrad as jg
from jaxgrad.bench import format_table

sigmoid = jax.nn.sigmoid
A = jnp.asarray(np.random.default_rng(0).normal(size=(4, 4)) * np.logspace(0, 4, 4))
CASES = {  # name: (f, d, domain)
    "sigmoid": (lambda x: jnp.sum(sigmoid(x)), 2, (-10, 10)),
    "sigmoid_wide": (lambda x: jnp.sum(sigmoid(x)), 2, (-30, 30)),
    "sigmoid_steep": (lambda x: jnp.sum(sigmoid(100 * x)), 2, (-0.1, 0.1)),
    "sigmoid_1000": (lambda x: jnp.sum(sigmoid(1000 * x)), 2, (-0.01, 0.01)),
    "tanh": (lambda x: jnp.sum(jnp.tanh(x)), 2, (-10, 10)),
    "tanh_steep": (lambda x: jnp.sum(jnp.tanh(50 * x)), 3, (-0.2, 0.2)),
    "log1p_sq": (lambda x: jnp.log(1 + jnp.sum(x**2)), 4, (-5, 5)),
    "sum_log": (lambda x: jnp.sum(jnp.log(x)), 4, (1e-3, 10)),
    "exp": (lambda x: jnp.sum(jnp.exp(x)), 3, (-20, 20)),
    "sin_far": (lambda x: jnp.sum(jnp.sin(x)), 3, (-1e3, 1e3)),
    "offset": (lambda x: jnp.sum(x**2) + 1000, 3, (-1, 1)),
    "logsumexp": (lambda x: jax.nn.logsumexp(x), 6, (-30, 30)),
    "prod": (lambda x: jnp.prod(x), 6, (-2, 2)),
    "reciprocal": (lambda x: jnp.sum(1 / x), 3, (0.1, 10)),
    "sqrt": (lambda x: jnp.sum(jnp.sqrt(x)), 3, (1e-4, 10)),
    "ill_quadratic": (lambda x: x @ A @ x, 4, (-1, 1)),
    "rosenbrock_min": (lambda x: jg.functions.rosenbrock(x), 4, (0.999, 1.001)),
    "gauss": (lambda x: jnp.exp(-jnp.sum(x**2)), 3, (-4, 4)),
    "softplus (not complex-safe)": (lambda x: jnp.sum(jax.nn.softplus(x)), 2, (-5, 5)),
    "max (not complex-safe)": (lambda x: jnp.sum(jnp.maximum(x.real, 0) * x**2), 2, (-5, 5)),
}


def row(name, f, dim, domain, dtype, n):
    points = jnp.asarray(np.random.default_rng(1).uniform(*domain, size=(n, dim)), dtype)
    rep = jg.compare(f, points, method="complex")
    relative = 1e-3 if dtype == "float32" else 1e-6
    grad = jax.grad(f)
    scaled = jg.compare(f, points, method="complex", grad_fn=lambda x: grad(x) * (1 + relative), reference=False)
    one = jg.compare(f, points, method="complex", reference=False,
                     grad_fn=lambda x: grad(x).at[0].add(relative * jnp.linalg.norm(grad(x))))  # fmt: skip
    reference = rep.pairs[1].pass_rate if len(rep.pairs) > 1 else float("nan")
    return [name, dtype, rep.verdict.value, int(rep.mismatched.sum()), int(rep.kinked.sum()), rep.unresolved,
            f"{rep.pairs[0].max_ratio:.3g}", f"{np.nanmedian(rep.resolution):.2g}", f"{reference:.0%}",
            f"{scaled.mismatched.mean():.1%}", f"{one.mismatched.mean():.1%}"]  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("cases", nargs="*", help="names of CASES (default: all)")
    args = parser.parse_args()
    dtypes = ["float32", "float64"] if jax.config.jax_enable_x64 else ["float32"]
    rows = [row(name, *CASES[name], dtype, args.points) for name in args.cases or CASES for dtype in dtypes]
    headers = ["case", "dtype", "verdict", "mismatched", "not complex-safe", "unresolved", "max err/tol",
               "median resolution", "ref pass", "caught: all off", "caught: one coordinate off"]  # fmt: skip
    print(format_table(headers, rows, title=f"compare(method='complex'), {args.points:,} points per run"))


if __name__ == "__main__":
    main()
