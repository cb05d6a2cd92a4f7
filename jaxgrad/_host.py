"""traceable=False: `fun` written with NumPy, called on the host; the steps, rows and combinations stay JAX's own."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._batching import tick
from ._compile import program
from ._estimate import Estimate
from ._evaluate import as_working, check_output_dtype, flat_steps, parts_of, vanished
from ._schemes import Mode, Scheme


def host_values(fun, unravel, rows, single_array: bool, scheme: Scheme, progress=None, rows_per_point: int = 1):
    """`fun` at every row, on the host with NumPy: one call on the whole (R, d) batch when fun maps it to R values
    that agree with row-by-row calls on the first and last rows, else one call per row. Outputs are checked as on
    the JAX path (`check_output_dtype`). With `progress` (a bar id), the bar ticks once per `rows_per_point` rows
    called (one point), or by every point at once after a batched call."""
    rows = np.asarray(rows)
    dtype = rows.dtype

    def read(value):
        value = np.asarray(value)
        check_output_dtype(value, scheme)
        return value.astype(dtype)

    def one(row):
        return read(fun(row if single_array else unravel(row)))

    if single_array and len(rows):
        try:
            batched = np.asarray(fun(rows))
        except Exception:  # fun takes one point only
            batched = None
        batched = None if batched is None or batched.dtype == object else read(batched)
        if batched is not None and batched.shape == (len(rows),):
            ends = np.stack([one(rows[0]), one(rows[-1])])
            if np.allclose(batched[[0, -1]], ends, rtol=64 * np.finfo(dtype).eps, atol=0, equal_nan=True):
                if progress is not None:
                    tick(progress, len(rows) // rows_per_point)
                return batched
    values = []
    for i, row in enumerate(rows):
        values.append(one(row))
        if progress is not None and (i + 1) % rows_per_point == 0:
            tick(progress, 1)
    if values and values[0].shape != ():
        raise ValueError(f"`fun` must return a scalar, but it returned shape {values[0].shape} for one point.")
    return np.asarray(values, dtype).reshape(len(rows))


@functools.partial(program, static_argnames=("scheme", "with_error"))
def _rows(points, rule, *, scheme: Scheme, with_error: bool):
    """The stencil rows of every point (N, R, d) with the flat points and steps: the traceable half of the host path
    (fun itself is then called on the host)."""

    def one(x):
        x = as_working(x)
        flat_x, _ = ravel_pytree(x)
        flat_h = flat_steps(x, rule, scheme)
        rows = scheme.estimate_points(flat_x, flat_h) if with_error else scheme.points(flat_x, flat_h)
        return rows, flat_x, flat_h

    return jax.vmap(one)(points)


@functools.partial(program, static_argnames=("scheme", "with_error"))
def _combine(values, xs, hs, *, scheme: Scheme, with_error: bool):
    """The flat gradients (or estimate parts) of every point from the values `fun` took on the host."""

    def one(v, x, h):
        return parts_of(v, x, h, scheme) if with_error else (scheme.combine(v, h), vanished(x, h, scheme))

    return jax.vmap(one)(values, xs, hs)


def host_parts(fun, scheme: Scheme, points, rule, with_error: bool, progress=None):
    """`fun` on the host at the stencil points of every point, combined by JAX: the estimate `Parts` of every point
    (with `with_error`), else (flat gradients, vanished flags); and the unravel function of one point. `progress`:
    a bar id (`progress_bar`) ticked per point done, or None."""
    scheme.require(Mode.HOST, "traceable=False")
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(points)):
        raise TypeError(
            "traceable=False calls `fun` on the host with NumPy values, which cannot happen inside jax.jit, vmap or "
            "grad: call it outside the transformation (or write fun with jax.numpy and keep traceable=True)."
        )
    rows, xs, hs = _rows(points, rule, scheme=scheme, with_error=with_error)
    point0 = as_working(jax.tree_util.tree_map(lambda leaf: leaf[0], points))
    _, unravel = ravel_pytree(point0)
    n, r, d = rows.shape
    single = isinstance(points, jax.Array)
    flat_rows = np.asarray(rows).reshape(n * r, d)
    if single:
        flat_rows = flat_rows.reshape(n * r, *np.shape(point0))
    values = jnp.asarray(host_values(fun, unravel, flat_rows, single, scheme, progress, r).reshape(n, r))
    return _combine(values, xs, hs, scheme=scheme, with_error=with_error), unravel


def host_batch(fun, scheme: Scheme, points, rule, with_error: bool, progress=None):
    """batch_grad's result with `fun` called on the host: (gradients or Estimate, per-point vanished flags);
    `progress` as in `host_parts`."""
    result, unravel = host_parts(fun, scheme, points, rule, with_error, progress)
    if with_error:
        return Estimate(jax.vmap(unravel)(result.g), jax.vmap(unravel)(result.error), result.status), result.vanished
    flat, vanished_flags = result
    return jax.vmap(unravel)(flat), vanished_flags
