"""Jacobians, Hessians and directional derivatives by finite differences, each one vmap of `fun` per point."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._evaluate import (
    adapted_steps,
    apply,
    as_working,
    evaluate,
    hashable,
    scouted_along,
    vanished,
    working_dtypes,
)
from ._grad import compiled_with
from ._schemes import Central, Mode, as_scheme
from ._steps import as_step_rule, raise_if_step_vanished


def _blocks(matrix, out_example, in_example):
    """Split a flat (m, d) derivative into jax.jacfwd's layout: for an array output and an array input, one array of
    shape out.shape + in.shape; for pytrees, the output's structure holding the input's structure of blocks."""
    out_leaves, out_def = jax.tree_util.tree_flatten(out_example)
    in_leaves, in_def = jax.tree_util.tree_flatten(in_example)
    rows = np.cumsum([0] + [np.size(leaf) for leaf in out_leaves])
    cols = np.cumsum([0] + [np.size(leaf) for leaf in in_leaves])
    nested = []
    for a, out_leaf in enumerate(out_leaves):
        row = [
            matrix[rows[a] : rows[a + 1], cols[b] : cols[b + 1]].reshape(np.shape(out_leaf) + np.shape(in_leaf))
            for b, in_leaf in enumerate(in_leaves)
        ]
        nested.append(in_def.unflatten(row))
    return out_def.unflatten(nested)


def _point_jacobian(fun, scheme, x, rule):
    x = as_working(x)
    out_example = jax.eval_shape(fun, x)

    def flat_fun(point):
        return ravel_pytree(fun(point))[0]

    e = evaluate(flat_fun, x, rule, scheme, scalar=False)
    columns = scheme.combine(e.values, e.h)  # (d, m): ∂f/∂x_i in row i
    return _blocks(columns.T, out_example, x), vanished(e.x, e.h, scheme)


_jacobian_program = jax.jit(_point_jacobian, static_argnums=(0, 1))


def jacobian(fun, *, method="central", order: int | None = None, step=None):
    """The Jacobian of a vector-valued `fun` by finite differences, laid out like `jax.jacfwd`.

    Same stencils, steps and cost as `grad` (central order 2: 2·d evaluations of `fun` per point, one vmap), for any
    output shape or pytree. For many points use `jax.vmap(jg.jacobian(fun))`.

    Args:
      fun: a JAX-traceable function of one argument (array or pytree) returning an array or a pytree of arrays.
      method, order, step: as in `grad`.

    Returns:
      A function x -> J: for array input and output, shape out.shape + x.shape; for pytrees, jax.jacfwd's nesting.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> print(jg.jacobian(lambda x: jnp.array([x[0] * x[1], x[0] + 2 * x[1]]))(jnp.array([3.0, 4.0])))
      [[4. 3.]
       [1. 2.]]
    """
    scheme = as_scheme(method, order)
    program = compiled_with(_jacobian_program, _point_jacobian, fun, scheme)
    return _transformation(program, fun, step, scheme.reach)


def _transformation(program, fun, step, reach: int):
    """x -> program(x, rule), with the step checked first and a vanished step reported (outside jit)."""
    rule = as_step_rule(step)

    @functools.wraps(fun, updated=())
    def transformed(x):
        rule.check(working_dtypes(x), reach)
        result, vanished_flag = program(x, rule)
        raise_if_step_vanished(vanished_flag, rule)
        return result

    return transformed


HESSIAN_STEP_EXPONENT = 0.25
"""Second differences: truncation h² against round-off eps/h², balanced at h ≈ eps^(1/4)."""


def _point_hessian(fun, x, rule):
    x = as_working(x)
    flat_x, unravel = ravel_pytree(x)
    d = flat_x.shape[0]
    h = ravel_pytree(rule.steps(x, HESSIAN_STEP_EXPONENT, reach=2))[0]
    h = adapted_steps(fun, unravel, x, h, rule, Central(), exponent=HESSIAN_STEP_EXPONENT)
    i, j = np.triu_indices(d, 1)  # pairs i < j, static
    eye = jnp.eye(d, dtype=flat_x.dtype)
    axis_steps = h[:, None] * eye  # row i: h_i e_i
    pair_signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.float64)
    pair_moves = (
        pair_signs[:, 0, None, None] * axis_steps[i][None] + pair_signs[:, 1, None, None] * axis_steps[j][None]
    )  # (4, pairs, d)
    rows = jnp.concatenate(
        [
            flat_x[None],
            flat_x[None] + axis_steps,
            flat_x[None] - axis_steps,
            (flat_x[None, None] + pair_moves).reshape(-1, d),
        ]
    )
    values = apply(fun, unravel, rows, Central())  # the real second differences read f as central ones do
    if values.ndim != 1:
        raise ValueError(f"`fun` must return a scalar for a Hessian, but it returned shape {values.shape[1:]}.")
    center, plus, minus = values[0], values[1 : d + 1], values[d + 1 : 2 * d + 1]
    corners = values[2 * d + 1 :].reshape(4, -1)
    diagonal = (plus - 2 * center + minus) / (h * h)
    off = (corners[0] - corners[1] - corners[2] + corners[3]) / (4 * h[i] * h[j])
    matrix = jnp.zeros((d, d), values.dtype).at[i, j].set(off).at[j, i].set(off)
    matrix = matrix.at[jnp.arange(d), jnp.arange(d)].set(diagonal).astype(flat_x.dtype)
    return _blocks(matrix, x, x), jnp.any(jnp.isfinite(flat_x) & (h == 0))


_hessian_program = jax.jit(_point_hessian, static_argnums=(0,))


def hessian(fun, *, step=None):
    """The Hessian of a scalar `fun` by second differences, symmetric by construction, laid out like `jax.hessian`.

    H_ii = (f(x + h_i e_i) − 2 f(x) + f(x − h_i e_i)) / h_i² and H_ij = (f(++) − f(+−) − f(−+) + f(−−)) / (4 h_i h_j)
    at x ± h_i e_i ± h_j e_j, evaluated once per pair i < j and mirrored. Cost: 2·d² + 1 evaluations per point, one
    vmap. Default step eps^(1/4)·max(|x|, 1), rounded to a power of two and representable: the truncation error is
    O(h²) and the round-off O(eps/h²), both ≈ eps^(1/2) (1e-8 in float64, 3e-4 in float32). For many points use
    `jax.vmap(jg.hessian(fun))`.

    Args:
      fun: a JAX-traceable scalar function of one argument (array or pytree).
      step: None for the default; an absolute positive scalar, or an array (pytree) shaped like the input; or a
        step rule (`jg.Absolute`, `jg.Relative`).

    Returns:
      A function x -> H: shape x.shape + x.shape for an array, jax.hessian's nesting for a pytree.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> print(jg.hessian(lambda x: x[0] ** 2 * x[1])(jnp.array([3.0, 4.0])))
      [[8. 6.]
       [6. 0.]]
    """
    return _transformation(compiled_with(_hessian_program, _point_hessian, fun), fun, step, reach=2)


@functools.partial(jax.jit, static_argnames=("fun", "scheme"))
def _directional(x, v, rule, *, fun, scheme):
    x = as_working(x)
    flat_x, unravel = ravel_pytree(x)
    flat_v = ravel_pytree(v)[0].astype(flat_x.dtype)
    scale = jnp.max(jnp.abs(flat_v), initial=0.0)
    moving = scale > 0  # along v = 0 the derivative is 0, as jax.jvp says: no step, no 0/0
    t = rule.along(flat_x, scheme.step_exponent, jnp.where(moving, scale, 1.0))
    if rule.adaptive and not scheme.imaginary:
        t = scouted_along(fun, unravel, flat_x, flat_v, jnp.where(moving, scale, 1.0), scheme)
    rows = scheme.along(flat_x, flat_v, t)
    derivative = scheme.combine_along(apply(fun, unravel, rows, scheme), t)
    stuck = moving & jnp.all(scheme.displacement(rows, flat_x) == 0) if not scheme.imaginary else jnp.zeros((), bool)
    return jnp.where(moving, derivative, jnp.zeros_like(derivative)), stuck


def jvp(fun, x, v, *, method="central", order: int | None = None, step=None):
    """The directional derivative of `fun` at x along v (a Jacobian-vector product) by finite differences.

    (f(x + t v) − f(x − t v)) / (2t) for central order 2: two evaluations of `fun`, whatever the dimension (p for
    central order p, p + 1 for one-sided). The default t is eps^(1/(p+1))·max(|x|_∞, 1) / |v|_∞, a power of two.
    Unlike `jax.jvp` it returns only the derivative, not f(x) (that would cost another evaluation). `fun` may return
    any array; the result has its shape.

    Args:
      fun: a JAX-traceable function of one argument (array or pytree).
      x: the point; v: the direction, like x.
      method, order: as in `grad` (the complex step too: Im f(x + i t v) / t).
      step: t, a positive scalar, or None.

    Returns:
      The derivative, shaped like fun's output; 0 along v = 0 (as `jax.jvp`).

    Raises:
      ValueError: a `step` t so small that x + t·v == x in every coordinate (the difference would be 0/0).

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> print(jg.jvp(lambda x: x[0] ** 2 + x[1] ** 2, jnp.array([3.0, 4.0]), jnp.array([1.0, 1.0])))
      14.0
    """
    scheme = as_scheme(method, order)
    scheme.require(Mode.DIRECTIONAL, "`jvp`")
    rule = as_step_rule(step)
    if step is not None and np.ndim(step) != 0:
        raise ValueError(f"`step` of `jvp` is one scalar t, got shape {np.shape(step)}.")
    if jax.tree_util.tree_structure(x) != jax.tree_util.tree_structure(v):
        raise ValueError(f"`v` must have the structure of `x`, {jax.tree_util.tree_structure(x)}.")
    shapes = [
        (np.shape(a), np.shape(b))
        for a, b in zip(jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(v), strict=True)
    ]
    if any(a != b for a, b in shapes):
        raise ValueError(f"`v` must have the shapes of `x`: got {[b for _, b in shapes]} for {[a for a, _ in shapes]}.")
    rule.check(working_dtypes(x), scheme.reach)
    derivative, stuck = _directional(x, v, rule, fun=hashable(fun), scheme=scheme)
    raise_if_step_vanished(stuck, rule)
    return derivative
