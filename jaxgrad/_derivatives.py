"""Jacobians, Hessians and directional derivatives by finite differences, each one vmap of `fun` per point."""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from . import _auto
from . import _validate as validate
from ._batching import Batching, fit_point
from ._compile import program
from ._estimate import (
    Estimate,
    SecondDifferences,
    error_noise,
    line_second_differences,
    merge_status,
    status,
    straddled,
)
from ._evaluate import (
    adapted_steps,
    adapts,
    apply,
    as_working,
    at_coords,
    blockable,
    blocked_steps,
    by_blocks,
    check_output,
    direction_step,
    evaluate,
    hashable,
    scouted_along,
    settled,
    vanished,
    working_dtypes,
)
from ._grad import compiled_with
from ._schemes import Central, Mode, Scheme, as_scheme, axis_points
from ._steps import as_step_rule, raise_if_step_vanished
from .numerics import error_estimate, finite_difference_weights, noise_estimate, noise_floor, norm


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


def _dim(x) -> int:
    """The number of coordinates of the pytree x."""
    return sum(math.prod(np.shape(leaf)) for leaf in jax.tree_util.tree_leaves(x))


_FIX = "differentiate fewer coordinates at once (jg.jvp along chosen directions)"


def _point_jacobian(fun, scheme, with_error, x, rule, block: int | None = None):
    """The Jacobian (its `Estimate`) at x and whether a step vanished; `block` coordinates at a time (`by_blocks`;
    None: the whole stencil in one vmap)."""
    x = as_working(x)
    out_example = jax.eval_shape(fun, x)

    def flat_fun(point):
        return ravel_pytree(fun(point))[0]

    if block is not None and blockable(scheme):
        return _blocked_jacobian(flat_fun, scheme, with_error, x, rule, block, out_example)
    e = evaluate(flat_fun, x, rule, scheme, with_error=with_error, scalar=False)
    if not with_error:
        columns, h = settled(e.values, e.h, scheme, e.fallback, functools.partial(_combine_columns, scheme))  # (d, m)
        return _blocks(columns.T, out_example, x), vanished(e.x, h, scheme)
    # the scheme's estimate reads one output at a time: (R,) values per output column -> (m, d) fields, (m,) codes
    each = jax.vmap(lambda column: scheme.estimate(column, e.x, e.h), in_axes=1)(e.values)
    code = merge_status([each.status], each.error, each.g)
    estimate = Estimate(_blocks(each.g, out_example, x), _blocks(each.error, out_example, x), code)
    return estimate, vanished(e.x, e.h, scheme)


def _combine_columns(scheme, values, h):
    """The scheme's derivatives (d, m) from its values (R, m), one output column at a time (f(x)'s row is then a
    scalar per column, added to each coordinate's sum as it is for a gradient)."""
    return jax.vmap(lambda column: scheme.combine(column, h), in_axes=1, out_axes=1)(values)


def _blocked_jacobian(flat_fun, scheme, with_error, x, rule, block: int, out_example):
    """`_point_jacobian` with the coordinates evaluated `block` at a time by a loop inside the program."""
    flat_x, unravel, chosen = blocked_steps(flat_fun, x, rule, scheme, block, with_error)
    flat_h = chosen.h

    def values_at(coords, rows):
        values = apply(flat_fun, unravel, rows, scheme)
        check_output(values, x, scalar=False)
        return values, at_coords(flat_h, coords)

    if not with_error:

        def columns_of(coords):  # (block, m): ∂f/∂x_i in row i, and the settled steps
            values, h = values_at(coords, _auto.trial_points(scheme, flat_x, flat_h, coords, chosen.fallback))
            combine = functools.partial(_combine_columns, scheme)
            return settled(values, h, scheme, at_coords(chosen.fallback, coords), combine), ()

        columns, h = by_blocks(columns_of, flat_x.shape[0], block)[0]
        return _blocks(columns.T, out_example, x), vanished(flat_x, h, scheme)

    def estimated_of(coords):
        values, h = values_at(coords, scheme.estimate_points(flat_x, flat_h, coords))
        each = jax.vmap(lambda column: scheme.estimate(column, flat_x, h), in_axes=1)(values)
        return (each.g.T, each.error.T), each.status

    (g, error), codes = by_blocks(estimated_of, flat_x.shape[0], block)
    code = merge_status([codes], error, g)
    estimate = Estimate(_blocks(g.T, out_example, x), _blocks(error.T, out_example, x), code)
    return estimate, vanished(flat_x, flat_h, scheme)


def _jacobian_of(fun, scheme, with_error: bool, batching: Batching, x, rule):
    per_point = functools.partial(_point_jacobian, fun, scheme, with_error)
    fitted = fit_point(per_point, x, rule, batching, units=_dim(x) if blockable(scheme) else 1, fix=_FIX)
    return fitted(x, rule)


_jacobian_program = program(_jacobian_of, static_argnums=(0, 1, 2, 3))


def jacobian(
    fun,
    *,
    method="central",
    order: int | None = None,
    step=None,
    with_error: bool = False,
    memory_budget: int | None = None,
):
    """The Jacobian of a vector-valued `fun` by finite differences, laid out like `jax.jacfwd`.

    Same stencils, steps and cost as `grad` (central order 2: 2·d evaluations of `fun` per point, one vmap; with
    `with_error`, the stencil at h and 2h plus f(x): 4·d + 1), for any output shape or pytree: `jg.num_evaluations`
    counts them. For many points use `jax.vmap(jg.jacobian(fun))`.

    Memory is bounded in d: when the stencil's 2·d rows of d values (and `fun`'s temporaries on them) do not fit
    `memory_budget`, the coordinates are evaluated in blocks by a loop inside the same compiled program, so that
    its temporaries stay within the budget (plus the m·d outputs) for any d. The block is read from the traced
    program, nothing is compiled twice; the results equal the whole stencil's up to the rounding of f.

    With `with_error=True` every output is estimated as `grad` estimates a gradient (the measured noise of that
    output over the step plus a Richardson truncation estimate from steps h and 2h), entry by entry. The status is
    one code for the point: NONFINITE or NOT_SMOOTH where any output is, else IMPRECISE where the whole error
    estimate (Frobenius norm) exceeds the whole Jacobian, else OK.

    Args:
      fun: a JAX-traceable function of one argument (array or pytree) returning an array or a pytree of arrays.
      method, order, step: as in `grad`.
      with_error: return an `Estimate(value, error, status)`: the Jacobian, the estimated absolute error of each
        entry (in the same layout) and an int8 `jg.Status`.
      memory_budget: bytes of temporaries the program may use beyond its outputs; None: 32 MiB on CPU, 1 GiB on
        GPU/TPU (`jg.default_memory_budget`).

    Returns:
      A function x -> J: for array input and output, shape out.shape + x.shape; for pytrees, jax.jacfwd's nesting.

    Raises:
      ValueError: `memory_budget` below what one coordinate's stencil needs (naming both), when called.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> f = lambda x: jnp.array([x[0] * x[1], x[0] + 2 * x[1]])
      >>> print(jg.jacobian(f)(jnp.array([3.0, 4.0])))
      [[4. 3.]
       [1. 2.]]
      >>> J, error, status = jg.jacobian(f, with_error=True)(jnp.array([3.0, 4.0]))
      >>> error.shape, bool(jnp.all(jnp.abs(J - jnp.array([[4.0, 3.0], [1.0, 2.0]])) <= error)), int(status)
      ((2, 2), True, 0)
    """
    scheme = as_scheme(method, order)
    with_error = validate.boolean("with_error", with_error)
    if with_error:
        scheme.require(Mode.WITH_ERROR, "`jacobian` with `with_error=True`")
    batching = Batching(memory_budget=memory_budget)
    program = compiled_with(_jacobian_program, _jacobian_of, fun, scheme, with_error, batching)
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


# ---------------------------------------------------------------------------------------------------------- Hessian
_CORNERS = ((1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0))
"""The four sign pairs of a mixed stencil's points x ± a·h_i e_i ± b·h_j e_j, in the order the corners combine."""


@dataclasses.dataclass(frozen=True)
class SecondDifference:
    """The Hessian's central second differences of order p (2 or 4), and their error estimate at steps h and 2h.

    Diagonal: H_ii = sum_k w_k f(x + k h_i e_i) / h_i², the central weights of the second derivative on −p/2..p/2
    (order 2: 1, −2, 1; order 4: (−1, 16, −30, 16, −1)/12), combined as sum_{k>0} w_k·(f(x + k h) − 2 f(x) +
    f(x − k h)), so a direction along which f is constant gives exactly 0. Mixed (i < j, mirrored): the product of
    the first-derivative weights u of central order p on the grid {±1..±p/2}², H_ij = sum_{a,b>0} u_a u_b·(f(++) −
    f(+−) − f(−+) + f(−−)) / (h_i h_j) at x ± a h_i e_i ± b h_j e_j: exactly 0 where f is even in x_i or x_j.
    Truncation O(h^p), round-off O(eps/h²): balanced at h ≈ eps^(1/(p+2)).
    """

    order: int = 2

    @property
    def exponent(self) -> float:
        """eps's exponent of the default step, 1/(p + 2): 1/4 for order 2, 1/6 for order 4."""
        return 1.0 / (self.order + 2)

    @property
    def reach(self) -> int:
        """The farthest stencil point in steps, the 2h stencil included: p (the steps are the same with and without
        the error estimate)."""
        return self.order

    @property
    def _offsets(self) -> tuple[int, ...]:
        return tuple(range(-self.order // 2, self.order // 2 + 1))

    def _weights(self, derivative: int, factor: int) -> dict[int, float]:
        offsets = self._offsets
        weights = finite_difference_weights(offsets, derivative=derivative)
        return {factor * k: w / factor**derivative for k, w in zip(offsets, weights, strict=True) if k > 0}

    def _factors(self, with_error: bool) -> tuple[int, ...]:
        return (1, 2) if with_error else (1,)

    def axis_offsets(self, with_error: bool) -> tuple[int, ...]:
        """The positive offsets evaluated along each axis (each with its negative; f(x) once)."""
        return tuple(sorted({k for f in self._factors(with_error) for k in self._weights(2, f)}))

    def grid(self, with_error: bool) -> tuple[tuple[int, int], ...]:
        """The positive offset pairs (a, b) of the mixed stencils (each with its four sign pairs)."""
        pairs = {(a, b) for f in self._factors(with_error) for a in self._weights(1, f) for b in self._weights(1, f)}
        return tuple(sorted(pairs))

    def evaluations(self, dim: int, with_error: bool = False) -> int:
        """f(x), 2 per axis offset and coordinate, 4 per grid pair and pair of coordinates: order 2: 2·d² + 1 (with
        the error estimate 4·d² + 1); order 4: 8·d² − 4·d + 1 (14·d² − 8·d + 1)."""
        pairs = dim * (dim - 1) // 2
        return 1 + 2 * len(self.axis_offsets(with_error)) * dim + 4 * len(self.grid(with_error)) * pairs

    def rows(self, x, h, with_error: bool):
        """f(x) first, then per axis offset k the blocks x + k h_i e_i and x − k h_i e_i (d rows each), then per grid
        pair (a, b) and sign pair (s, t) the block x + s a h_i e_i + t b h_j e_j over the pairs i < j."""
        d = x.shape[0]
        i, j = np.triu_indices(d, 1)  # pairs i < j, static
        axis_steps = h[:, None] * jnp.eye(d, dtype=x.dtype)  # row i: h_i e_i
        blocks = [x[None]]
        for k in self.axis_offsets(with_error):
            blocks += [x[None] + k * axis_steps, x[None] - k * axis_steps]
        for a, b in self.grid(with_error):
            for s, t in _CORNERS:
                blocks.append(x[None] + (s * a * axis_steps[i] + t * b * axis_steps[j]))
        return jnp.concatenate(blocks)

    def _reader(self, values, d: int, with_error: bool):
        axis, grid, pairs = self.axis_offsets(with_error), self.grid(with_error), d * (d - 1) // 2
        base = 1 + 2 * len(axis) * d

        def on_axis(k):  # f(x + k h_i e_i) for every i
            start = 1 + (2 * axis.index(abs(k)) + (k < 0)) * d
            return values[start : start + d]

        def corners(a, b):  # f at the four corners (±a, ±b) of every pair
            start = base + 4 * grid.index((a, b)) * pairs
            return [values[start + c * pairs : start + (c + 1) * pairs] for c in range(4)]

        return on_axis, corners

    def _second_differences(self, on_axis, center, factor: int):
        """h²·H_ii of the stencil at step factor·h, in units of h² (sum_k w_k·(f(x + k h) − 2 f(x) + f(x − k h)) at
        the offsets k·factor): k²h²·f'' + O(h^(p+2)) for a smooth f."""
        terms = [w * (on_axis(factor * k) - 2 * center + on_axis(-factor * k)) for k, w in self._weights(2, 1).items()]
        return functools.reduce(operator.add, terms)

    def combine(self, values, h, with_error: bool, factor: int = 1):
        """The Hessian (d, d) from f at `rows`, for the stencil at step factor·h."""
        d = h.shape[0]
        i, j = np.triu_indices(d, 1)
        on_axis, corners = self._reader(values, d, with_error)
        diagonal = self._second_differences(on_axis, values[0], factor) / factor**2
        off = self._mixed(corners, h[i], h[j], factor)
        matrix = jnp.zeros((d, d), values.dtype).at[i, j].set(off).at[j, i].set(off)
        return matrix.at[jnp.arange(d), jnp.arange(d)].set(diagonal / (h * h)).astype(h.dtype)

    def _mixed(self, corners, h_i, h_j, factor: int = 1):
        """H_ij of the pairs whose four corner values `corners(a, b)` gives, for the stencil at step factor·h."""
        first = self._weights(1, factor)
        terms = []
        for a, u in first.items():
            for b, v in first.items():
                pp, pm, mp, mm = corners(a, b)
                terms.append(u * v * (pp - pm - mp + mm))
        return functools.reduce(operator.add, terms) / (h_i * h_j)

    def _axis_estimate(self, on_axis, center, x, h):
        """From f along the axes through the flat point x: the noise of f per axis (d,), and the smoothness test's
        second differences."""
        axis = self.axis_offsets(True)
        positions = (*(-k for k in reversed(axis)), 0, *axis)
        line = jnp.stack([jnp.broadcast_to(center, h.shape) if k == 0 else on_axis(k) for k in positions])
        f_noise = self.noise(line, positions, h.dtype, x).astype(h.dtype)  # (d,)
        # the smoothness test of `status` on the order-p second differences at h and 2h, which grow ×4 for a smooth f
        # up to O(h^p), significant above the noise that `noise_estimate`'s odd difference reads: it cancels the even
        # part of f around x, so a kink at x itself is not taken for noise (the even difference above would)
        norm = float(np.linalg.norm(finite_difference_weights(self._offsets, derivative=2)))
        at_h, at_2h = (self._second_differences(on_axis, center, factor) for factor in (1, 2))
        second_noise = norm * noise_estimate(line, positions, h.dtype, x, odd_only=True).astype(h.dtype)
        return f_noise, SecondDifferences(at_h, at_2h, second_noise)

    @property
    def _weight_sums(self) -> tuple[float, float]:
        """sum |w| of the diagonal's and of a mixed entry's stencil (the round-off's factor)."""
        diagonal_sum = sum(abs(w) for w in finite_difference_weights(self._offsets, derivative=2))
        return diagonal_sum, (2 * sum(abs(w) for w in self._weights(1, 1).values())) ** 2

    def _floor(self, grid_values, dtype):
        """The least noise of a mixed entry: ROUNDING·eps·max|f| over its corners (the leading axis)."""
        return noise_floor(grid_values, dtype)

    @staticmethod
    def noise(line, positions, dtype, x):
        """The noise of one evaluation of f from each axis' line (K, d) at `positions`, as `noise_estimate` measures
        it but from the line's highest difference, of order K − 1 = p + 2: pooled over the axes (root mean square)
        and at least `noise_floor` per line: ROUNDING·eps·max|f| and the `granularity` of f's values at the flat
        point `x` (f rounded on a coarse grid, as 1 − cos x at small x: one difference there is often exactly 0).

        The step makes h^(p+2) ≈ eps, so that difference's polynomial part h^(p+2)·f^(p+2) stays at the rounding level
        where f's derivatives are of its size; the odd difference of order p + 1 that `noise_estimate` takes would
        read h^(p+1)·f^(p+1), about eps^(−1/(p+2)) times more, as noise (in float64 an error estimate ~10⁴ times the
        error). An even difference reads a kink at x as noise, which only enlarges the estimate.
        """
        weights = jnp.asarray(finite_difference_weights(positions, derivative=len(positions) - 1), line.dtype)
        per_line = jnp.abs(weights @ line) / jnp.linalg.norm(weights)
        pooled = norm(per_line, mean=True)
        return jnp.maximum(noise_floor(line, dtype, x), pooled)

    def estimate(self, values, x, h):
        """(H at h, its error estimate (d, d), the status code) from f at `rows(x, h, with_error=True)`.

        The error of each entry is the round-off f_noise·sum|w| / (h_i h_j) (f_noise: `noise` on the axes' lines, on
        a mixed stencil at least ROUNDING·eps·|f| there) plus the Richardson truncation estimate
        |H(h) − H(2h)| / (2^p − 1). The status: NONFINITE, NOT_SMOOTH (the second differences along an axis at h and
        2h do not grow like h²) or IMPRECISE (the whole error estimate exceeds the whole Hessian), as `grad` says.
        """
        d = h.shape[0]
        i, j = np.triu_indices(d, 1)
        hessian, double = self.combine(values, h, True), self.combine(values, h, True, factor=2)
        on_axis, corners = self._reader(values, d, True)
        f_noise, second = self._axis_estimate(on_axis, values[0], x, h)
        floor = self._floor(jnp.stack([c for a, b in self.grid(True) for c in corners(a, b)]), h.dtype)
        off_noise = jnp.maximum(jnp.maximum(f_noise[i], f_noise[j]), floor.astype(h.dtype))
        noise = jnp.diag(f_noise).at[i, j].set(off_noise).at[j, i].set(off_noise)
        diagonal_sum, mixed_sum = self._weight_sums
        weight_sums = jnp.where(jnp.eye(d, dtype=bool), diagonal_sum, mixed_sum).astype(h.dtype)
        error = error_estimate(jnp.outer(h, h), weight_sums, noise, hessian, double, self.order).astype(h.dtype)
        return hessian, error, status(x, values, hessian, error, second)

    def blocked(self, fun, unravel, x, h, with_error: bool, block: int):
        """(H, its error estimate or None, the status code or None) as `combine` and `estimate` give them, with the
        stencil evaluated `block` coordinate pairs at a time inside the program (`pair_blocks`) and the axes
        min(block, d) coordinates at a time (`by_blocks`): the temporaries hold the stencil rows of one block,
        about 4·len(grid)·block·d values, instead of all O(d²) rows of d. Each pair is evaluated once, as (i, j)
        with i < j at the same points as the whole stencil, and written to H_ij and H_ji."""
        d, dtype = x.shape[0], h.dtype
        center = apply(fun, unravel, x[None], Central())
        if center.ndim != 1:
            raise ValueError(f"`fun` must return a scalar for a Hessian, but it returned shape {center.shape[1:]}.")
        center = center[0]
        signed = tuple(s * k for k in self.axis_offsets(with_error) for s in (1, -1))

        def along_axes(coords):  # f(x + k h_i e_i) for the block's coordinates i: (block, offsets)
            values = apply(fun, unravel, axis_points(x, h, signed, coords), Central())
            return values.reshape(len(signed), -1).T, ()

        table = by_blocks(along_axes, d, min(block, d))[0]

        def on_axis(k):
            return table[:, signed.index(k)]

        grid, factors = self.grid(with_error), self._factors(with_error)
        diagonals = [self._second_differences(on_axis, center, f) / f**2 / (h * h) for f in factors]
        f_noise, second = self._axis_estimate(on_axis, center, x, h) if with_error else (None, None)
        diagonal_sum, mixed_sum = self._weight_sums

        def pairs_of(i, j):  # the pairs' entries at h (and 2h), their error, whether f was finite at their corners
            columns = jnp.arange(d)
            e_i, e_j = ((c[:, None] == columns[None]).astype(x.dtype) for c in (i, j))  # fused, never a (d, d) eye
            rows = [x[None] + (s * a * h[i])[:, None] * e_i + (t * b * h[j])[:, None] * e_j
                    for a, b in grid for s, t in _CORNERS]  # fmt: skip
            values = apply(fun, unravel, jnp.concatenate(rows), Central()).reshape(len(grid), 4, -1)

            def corners(a, b):
                return list(values[grid.index((a, b))])

            entries = [self._mixed(corners, h[i], h[j], f) for f in factors]
            finite = jnp.all(jnp.isfinite(values))
            if not with_error:
                return entries[0], None, finite
            floor = self._floor(values.reshape(4 * len(grid), -1), dtype).astype(dtype)
            noise = jnp.maximum(jnp.maximum(f_noise[i], f_noise[j]), floor)
            error = error_estimate(h[i] * h[j], mixed_sum, noise, *(e.astype(dtype) for e in entries), self.order)
            return entries[0], error.astype(dtype), finite

        out_dtype = jnp.result_type(center.dtype)
        hessian, error, finite = pair_blocks(pairs_of, d, block, out_dtype, dtype if with_error else None)
        on_diagonal = jnp.arange(d)
        hessian = hessian.at[on_diagonal, on_diagonal].set(diagonals[0]).astype(dtype)
        if not with_error:
            return hessian, None, None
        diagonal_error = error_estimate(h * h, diagonal_sum, f_noise, *diagonals, self.order).astype(dtype)
        error = error.at[on_diagonal, on_diagonal].set(diagonal_error)
        seen = jnp.concatenate([center[None], table.ravel(), jnp.where(finite, 0.0, jnp.nan)[None].astype(out_dtype)])
        return hessian, error, status(x, seen, hessian, error, second)


def pair_count(dim: int) -> int:
    """The pairs i < j of `dim` coordinates: dim·(dim − 1)/2."""
    return dim * (dim - 1) // 2


def pair_indices(q, dim: int):
    """The pairs (i, j), i < j, numbered q = 0..pair_count(dim) − 1 (traced), by integer arithmetic: pair q·K + k − 1
    is row r = q // K with its k-th neighbour (r + k) mod dim, K = (dim − 1) // 2 (a round robin: each row owns K
    pairs); for even dim the dim/2 pairs (r, r + dim/2), r < dim/2, come last. Consecutive q share rows."""
    per_row = (dim - 1) // 2
    main = dim * per_row
    r = q // max(per_row, 1)
    c = (r + q % max(per_row, 1) + 1) % dim
    extra = q - main
    r, c = jnp.where(q < main, r, extra), jnp.where(q < main, c, extra + dim // 2)
    return jnp.minimum(r, c), jnp.maximum(r, c)


def pair_blocks(pairs_of, dim: int, block: int, dtype, error_dtype=None):
    """The (dim, dim) matrix of `pairs_of(i, j)` (entries, their errors or None, all-finite flag) over every pair
    i < j, mirrored, `block` pairs at a time by a loop inside the program (the last block ends at the last pair,
    overlapping the one before, recomputed identically); the diagonal is left 0 for the caller."""
    total = pair_count(dim)
    block = min(block, total)
    matrix = jnp.zeros((dim, dim), dtype)
    out = (matrix, None if error_dtype is None else jnp.zeros((dim, dim), error_dtype), jnp.ones((), bool))
    if total == 0:
        return out

    def body(n, out):
        i, j = pair_indices(jnp.minimum(n * block, total - block) + jnp.arange(block), dim)
        entries, errors, finite = pairs_of(i, j)
        matrix, error, all_finite = out
        matrix = matrix.at[i, j].set(entries.astype(dtype)).at[j, i].set(entries.astype(dtype))
        if error is not None:
            error = error.at[i, j].set(errors).at[j, i].set(errors)
        return matrix, error, all_finite & finite

    return lax.fori_loop(0, -(-total // block), body, out)


def _hessian_stencil(method, order) -> SecondDifference:
    """The Hessian's stencil for `method=` and `order=`: central differences of order 2 or 4 only."""
    supported = "method='central' with order=2 (the default) or order=4, or jg.Central(2) / jg.Central(4)"
    if isinstance(method, str) and method == "central":
        if order is not None and (isinstance(order, (bool, np.bool_)) or order not in (2, 4)):
            raise ValueError(f"`order`={order!r} is not available for `hessian`: it supports {supported}.")
    elif not isinstance(method, Central):
        raise ValueError(
            f"`method`={method!r} is not available for `hessian`, which uses central second differences: it "
            f"supports {supported}."
        )
    scheme = as_scheme(method, order)
    if scheme.order not in (2, 4):
        raise ValueError(f"`method`={scheme!r} is not available for `hessian`: it supports {supported}.")
    return SecondDifference(scheme.order)


def _point_hessian(fun, stencil: SecondDifference, with_error: bool, x, rule, block: int | None = None):
    """The Hessian (its `Estimate`) at x and whether a step vanished; `block` coordinate pairs at a time (None: the
    whole stencil in one vmap)."""
    x = as_working(x)
    flat_x, unravel = ravel_pytree(x)
    h = ravel_pytree(rule.steps(x, stencil.exponent, reach=stencil.reach))[0]
    scout_block = None if block is None else min(block, flat_x.shape[0])
    h = adapted_steps(fun, unravel, x, h, rule, Central(), exponent=stencil.exponent, block=scout_block).h
    stuck = jnp.any(jnp.isfinite(flat_x) & (h == 0))
    if block is not None:
        matrix, error, code = stencil.blocked(fun, unravel, flat_x, h, with_error, block)
        if not with_error:
            return _blocks(matrix, x, x), stuck
        return Estimate(_blocks(matrix, x, x), _blocks(error, x, x), code), stuck
    values = apply(fun, unravel, stencil.rows(flat_x, h, with_error), Central())
    if values.ndim != 1:
        raise ValueError(f"`fun` must return a scalar for a Hessian, but it returned shape {values.shape[1:]}.")
    if not with_error:
        return _blocks(stencil.combine(values, h, False), x, x), stuck
    matrix, error, code = stencil.estimate(values, flat_x, h)
    return Estimate(_blocks(matrix, x, x), _blocks(error, x, x), code), stuck


def _hessian_of(fun, stencil: SecondDifference, with_error: bool, batching: Batching, x, rule):
    per_point = functools.partial(_point_hessian, fun, stencil, with_error)
    pairs = pair_count(_dim(x))
    fitted = fit_point(per_point, x, rule, batching, units=pairs, unit="coordinate pair", fix=_FIX)
    return fitted(x, rule)


_hessian_program = program(_hessian_of, static_argnums=(0, 1, 2, 3))


def hessian(
    fun,
    *,
    method="central",
    order: int | None = None,
    step=None,
    with_error: bool = False,
    memory_budget: int | None = None,
):
    """The Hessian of a scalar `fun` by central second differences, symmetric by construction, laid out like
    `jax.hessian`.

    Order 2 (the default): H_ii = (f(x + h_i e_i) − 2 f(x) + f(x − h_i e_i)) / h_i² and H_ij = (f(++) − f(+−) −
    f(−+) + f(−−)) / (4 h_i h_j) at x ± h_i e_i ± h_j e_j, evaluated once per pair i < j and mirrored. Default step
    eps^(1/4)·max(|x|, 1), rounded to a power of two and representable: truncation O(h²) and round-off O(eps/h²),
    both ≈ eps^(1/2) (1e-8 in float64, 3e-4 in float32). Order 4: the five-point diagonal (−f(x+2h) + 16 f(x+h) −
    30 f(x) + 16 f(x−h) − f(x−2h)) / (12 h²) and the product of the fourth-order first-difference weights on the
    grid {−2, −1, 1, 2}² for the mixed entries; step eps^(1/6)·max(|x|, 1), error ≈ eps^(2/3) (1e-11 in float64).
    Evaluations of `fun` per point of d coordinates, one vmap:

      * order 2: 2·d² + 1; with `with_error`: 4·d² + 1 (the stencil at h and 2h, f(x) shared);
      * order 4: 8·d² − 4·d + 1; with `with_error`: 14·d² − 8·d + 1;
      * `step="auto"`: 4·d + 1 more (the scout lines).

    (`jg.num_evaluations` counts first-derivative transformations only.) For many points use
    `jax.vmap(jg.hessian(fun))`.

    Memory is bounded in d: when the O(d²) stencil rows of d values (d = 1,500: 4.5 million rows, 54 GB) do not fit
    `memory_budget`, the program evaluates f(x) once, the axes a block of coordinates at a time and the mixed
    stencils a block of coordinate pairs (i < j, each once, written to H_ij and H_ji) at a time, by loops inside the
    same compiled program: its temporaries stay within the budget plus the d² outputs, and the evaluations are the
    ones counted above plus the last blocks' overlaps. The results equal the whole stencil's up to the rounding of f.

    Args:
      fun: a JAX-traceable scalar function of one argument (array or pytree).
      method: "central" or `jg.Central(order)`; other methods have no second-difference stencil here.
      order: 2 (None, the default) or 4.
      step: None for the default; "auto"; an absolute positive scalar, or an array (pytree) shaped like the input;
        or a step rule (`jg.Absolute`, `jg.Relative`).
      with_error: return an `Estimate(value, error, status)`: the Hessian, the estimated absolute error of each
        entry (round-off f_noise·sum|w| / (h_i h_j) from the measured noise of f, plus the Richardson truncation
        estimate |H(h) − H(2h)| / (2^p − 1)), in the same layout, and an int8 `jg.Status` for the point.
      memory_budget: bytes of temporaries the program may use beyond its outputs; None: 32 MiB on CPU, 1 GiB on
        GPU/TPU (`jg.default_memory_budget`).

    Returns:
      A function x -> H: shape x.shape + x.shape for an array, jax.hessian's nesting for a pytree.

    Raises:
      ValueError: a method other than central, an order other than 2 or 4, a `fun` that does not return a scalar;
        `memory_budget` below what one pair's stencil needs (naming both), when called.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> print(jg.hessian(lambda x: x[0] ** 2 * x[1])(jnp.array([3.0, 4.0])))
      [[8. 6.]
       [6. 0.]]
      >>> H, error, status = jg.hessian(jnp.sin, order=4, with_error=True)(jnp.array(0.5))
      >>> bool(abs(H + jnp.sin(0.5)) <= error), jg.Status(int(status)).name
      (True, 'OK')
      >>> H = jg.hessian(lambda x: jnp.sum(x) ** 2, memory_budget=20_000)(jnp.ones(40))  # 780 pairs, in blocks
      >>> H.shape, bool(jnp.allclose(H, 2.0, atol=1e-3))
      ((40, 40), True)
    """
    stencil = _hessian_stencil(method, order)
    with_error = validate.boolean("with_error", with_error)
    batching = Batching(memory_budget=memory_budget)
    program = compiled_with(_hessian_program, _hessian_of, fun, stencil, with_error, batching)
    return _transformation(program, fun, step, reach=stencil.reach)


# -------------------------------------------------------------------------------------------------------------- JVP
@dataclasses.dataclass(frozen=True)
class Spread:
    """`fun(*args)` as a function of the tuple `args` (jvp's primals); hashable, so compiled programs are shared."""

    fun: Any

    def __call__(self, args):
        return self.fun(*args)


def _output_unravel(fun, x):
    """The function that turns a flat (m,) vector into the structure, shapes and dtypes of fun's output at x."""
    example = jax.eval_shape(fun, x)
    return ravel_pytree(jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), example))[1]


def _uses_center(scheme: Scheme, with_error: bool) -> bool:
    """Whether the directional stencil reads f(x) at the real point x (one-sided stencils, every error estimate)."""
    return not scheme.imaginary and (with_error or scheme.uses_center)


@functools.partial(program, static_argnames=("fun", "scheme", "with_error"))
def _directional(x, v, rule, center, *, fun, scheme: Scheme, with_error: bool):
    """The derivative along v (its `Estimate` with `with_error`) and whether the step vanished. `center` is f(x),
    flat, where the stencil reads it (evaluated by the caller, who returns it too), else None."""
    x = as_working(x)
    flat_x, unravel = ravel_pytree(x)
    flat_v = ravel_pytree(v)[0].astype(flat_x.dtype)
    unravel_out = _output_unravel(fun, x)

    def flat_fun(point):
        return ravel_pytree(fun(point))[0]

    scale = jnp.max(jnp.abs(flat_v), initial=0.0)
    moving = scale != 0  # along v = 0 the derivative is 0, as jax.jvp says: no step, no 0/0 (a NaN in v moves: NaN)
    scale = jnp.where(moving, scale, 1.0)
    t = direction_step(rule, x, flat_x, scheme.step_exponent, scale)
    if adapts(rule, scheme, x):
        t = scouted_along(flat_fun, unravel, flat_x, flat_v, scale, scheme)
    if with_error:
        positions = scheme.estimate_offsets  # the stencil at t and 2t, and x itself
    else:
        positions = scheme.offsets + ((0,) if scheme.uses_center else ())
    evaluated = tuple(k for k in positions if k or center is None)
    rows = scheme.along(flat_x, flat_v, t, evaluated)
    values = apply(flat_fun, unravel, rows, scheme)  # (R, m), read
    if center is not None:  # f(x) in its place among the positions
        at = positions.index(0)
        values = jnp.concatenate([values[:at], center.astype(values.dtype)[None], values[at:]])
    derivative = jnp.where(moving, scheme.combine_along(values, t, positions), 0)
    stuck = moving & jnp.all(scheme.displacement(rows, flat_x) == 0) if not scheme.imaginary else jnp.zeros((), bool)
    if not with_error:
        return unravel_out(derivative), stuck
    double = scheme.combine_along(values, t, positions, factor=2)
    odd, both = (jax.vmap(lambda line, o=o: noise_estimate(line[:, None], positions, t.dtype, flat_x, odd_only=o)[0],
                          in_axes=1)(values).astype(t.dtype) for o in (True, False))  # fmt: skip
    second = None if scheme.imaginary else line_second_differences(values, positions, odd)
    error = error_estimate(t, scheme.weight_sum, error_noise(second, odd, both), derivative, double, scheme.order)
    error = jnp.where(moving, error, 0).astype(derivative.dtype)
    if second is not None:  # central: a kink inside the stencil is not left to the Richardson estimate
        error = jnp.maximum(error, jnp.where(moving, straddled(values, positions, second, t), 0).astype(error.dtype))
    code = status(flat_x, values, derivative, error, second)
    return Estimate(unravel_out(derivative), unravel_out(error), code), stuck


def _in_working_dtypes(x) -> bool:
    """Whether every leaf of `x` already has its working dtype, so f at x as given is f at the working point."""
    return all(jnp.asarray(leaf).dtype == leaf_w.dtype for leaf, leaf_w in
               zip(jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(as_working(x)), strict=True))  # fmt: skip


def jvp(fun, primals, tangents, *, method="central", order: int | None = None, step=None, with_error: bool = False):
    """A Jacobian-vector product by finite differences, like `jax.jvp`: (fun(*primals), the derivative of fun at
    primals along tangents).

    The derivative is (f(x + t v) − f(x − t v)) / (2t) for central order 2, whatever the dimension; the default t is
    eps^(1/(p+1))·max(|x|_∞, 1) / |v|_∞, a power of two. f(x) is evaluated once, as `fun(*primals)` where the call
    is made (so it equals that call's output bit for bit; `jax.jvp`'s primal, computed in another program, agrees to
    f's rounding: bit for bit on a CPU, within 1 ulp in float32 on an H200), and the stencil reuses it where it
    reads f(x).
    Evaluations of `fun`, the stencil in one vmap: central order p: p + 1 (3 for the default); one-sided order p:
    p + 1; the complex step: 2; with `with_error`, the stencil at t and 2t and f(x) (central order 2: 5; complex
    step: 4); `step="auto"` adds 5 (the scout line). `fun` may return any array or pytree of arrays.

    The call `jg.jvp(fun, x, v)` with `x`, `v` arrays or pytrees (not tuples or lists) is the old form: it returns
    only the derivative (and does not evaluate f(x) where the stencil does not need it) and is deprecated: write
    `jg.jvp(fun, (x,), (v,))[1]`; it goes in the next release. As in `jax.jvp`, a tuple or list `primals` holds one
    entry per positional argument of `fun`.

    Args:
      fun: a JAX-traceable function of positional arguments (arrays or pytrees) returning an array or pytree.
      primals: a tuple (or list) of the arguments of `fun`: the point.
      tangents: a tuple (or list) like `primals`, with the same structure and shapes: the direction.
      method, order: as in `grad` (the complex step too: Im f(x + i t v) / t).
      step: t, a positive scalar; None; "auto"; or a step rule.
      with_error: the tangent output is an `Estimate(value, error, status)`: the derivative, its estimated absolute
        error (noise of f over t plus the Richardson truncation estimate from t and 2t), like the output, and an
        int8 `jg.Status`.

    Returns:
      (primal_out, tangent_out): fun(*primals), and the derivative shaped like it (0 along a zero direction, as
      `jax.jvp`; NaN in every entry where a tangent holds a NaN or an infinity, as the stencil moves along all of
      it: its step t is then 0 or NaN; `jax.jvp` gives ±inf for an infinity), or its `Estimate` (status NONFINITE
      there).

    Raises:
      ValueError: `tangents` unlike `primals`; a `step` t so small that x + t·v == x in every coordinate (the
        difference would be 0/0).

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> y, dy = jg.jvp(lambda x: x[0] ** 2 + x[1] ** 2, (jnp.array([3.0, 4.0]),), (jnp.array([1.0, 1.0]),))
      >>> print(y, dy)
      25.0 14.0
      >>> y, (dy, error, status) = jg.jvp(lambda a, b: a * jnp.sin(b), (2.0, 0.5), (1.0, 0.0), with_error=True)
      >>> bool(abs(dy - jnp.sin(0.5)) <= error), jg.Status(int(status)).name
      (True, 'OK')
    """
    scheme = as_scheme(method, order)
    scheme.require(Mode.DIRECTIONAL, "`jvp`")
    with_error = validate.boolean("with_error", with_error)
    if with_error:
        scheme.require(Mode.WITH_ERROR, "`jvp` with `with_error=True`")
    primal = isinstance(primals, (tuple, list))
    if primal:
        if not isinstance(tangents, (tuple, list)) or len(tangents) != len(primals):
            kind = type(tangents).__name__
            got = f"a {kind} of {len(tangents)}" if isinstance(tangents, (tuple, list)) else f"a {kind}, not a tuple"
            raise ValueError(
                f"`tangents` must be a tuple with one entry per entry of `primals` ({len(primals)}), as in jax.jvp; "
                f"got {got}."
            )
        x, v, f, names = tuple(primals), tuple(tangents), Spread(hashable(fun)), ("`tangents`", "`primals`")
    else:
        warnings.warn(
            "jg.jvp(fun, x, v) is deprecated and goes in the next release: write jg.jvp(fun, (x,), (v,)), which "
            "returns (fun(x), derivative) like jax.jvp (jg.jvp(fun, (x,), (v,))[1] is the derivative alone).",
            DeprecationWarning,
            stacklevel=2,
        )
        x, v, f, names = primals, tangents, hashable(fun), ("`v`", "`x`")
    rule = as_step_rule(step)
    if step is not None and not isinstance(step, str) and np.ndim(step) != 0:
        raise ValueError(f"`step` of `jvp` is one scalar t, got shape {np.shape(step)}.")
    if jax.tree_util.tree_structure(x) != jax.tree_util.tree_structure(v):
        raise ValueError(f"{names[0]} must have the structure of {names[1]}, {jax.tree_util.tree_structure(x)}.")
    shapes = [
        (np.shape(a), np.shape(b))
        for a, b in zip(jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(v), strict=True)
    ]
    if any(a != b for a, b in shapes):
        raise ValueError(
            f"{names[0]} must have the shapes of {names[1]}: got {[b for _, b in shapes]} for {[a for a, _ in shapes]}."
        )
    rule.check(working_dtypes(x), scheme.reach)
    # f(x) where the call is made, as jax.jvp evaluates it (a compiled program may round f differently by an ulp)
    primal_out = f(x) if primal else None
    center = None
    if _uses_center(scheme, with_error):
        reusable = primal_out is not None and _in_working_dtypes(x)
        center = ravel_pytree(primal_out if reusable else f(as_working(x)))[0]
    tangent, stuck = _directional(x, v, rule, center, fun=f, scheme=scheme, with_error=with_error)
    raise_if_step_vanished(stuck, rule)
    return (primal_out, tangent) if primal else tangent
