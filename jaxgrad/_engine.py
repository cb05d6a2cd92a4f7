"""The engine: central/forward/backward difference gradients as one vmap of `fun` per point, batched and jitted."""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from ._errors import error_estimate, noise_estimate, status
from ._stencils import Stencil, make_stencil
from ._steps import check_step, default_step, representable_step, working_dtype


# ----------------------------------------------------------------------------------------------------------- one point
def _as_working_leaf(leaf):
    leaf = jnp.asarray(leaf)
    return leaf.astype(working_dtype(leaf.dtype))


def _leaf_steps(x, step, stencil: Stencil):
    """The step of every coordinate, as a pytree like `x`, each leaf in its own dtype.

    Real steps are made exactly representable, h = (x + h) − x; the complex step is imaginary and taken as is.
    """
    adjust = (lambda leaf, h: h) if stencil.is_complex else representable_step
    if step is None:
        return jax.tree_util.tree_map(
            lambda leaf: default_step(
                leaf, stencil.order, exponent=stencil.step_exponent, representable=not stencil.is_complex
            ),
            x,
        )
    if not isinstance(step, (list, tuple, dict)) and np.ndim(step) == 0:
        return jax.tree_util.tree_map(lambda leaf: adjust(leaf, jnp.full(leaf.shape, step, leaf.dtype)), x)
    x_def, step_def = jax.tree_util.tree_structure(x), jax.tree_util.tree_structure(step)
    if x_def != step_def:
        raise ValueError(f"`step` must be a scalar or have the structure of the input {x_def}, got {step_def}.")

    def leaf_step(leaf, h):
        h = jnp.asarray(h, leaf.dtype)
        if h.shape not in ((), leaf.shape):
            raise ValueError(
                f"`step` has shape {h.shape} where the input has shape {leaf.shape}; pass a scalar step or an "
                f"array of shape {leaf.shape}."
            )
        return adjust(leaf, jnp.broadcast_to(h, leaf.shape))

    return jax.tree_util.tree_map(leaf_step, x, step)


def _stencil_points(x, h, offsets, with_center: bool, imaginary: bool = False):
    """All points `fun` is evaluated at for one flat point x: shape (K·d [+ 1], d).

    Row k·d + i is x + offsets[k]·h[i]·e_i (times the imaginary unit for the complex step); `with_center` appends x
    itself. Coordinates other than i are copied unchanged, so each row differs from x in exactly one coordinate.
    """
    d = x.shape[0]
    delta = jnp.asarray(offsets, x.dtype)[:, None] * h[None, :]  # (K, d): offsets[k] * h[i]
    on_diagonal = jnp.eye(d, dtype=bool)[None]  # (1, d, d)
    if imaginary:
        x, delta = x.astype(jnp.result_type(x.dtype, jnp.complex64)), delta * 1j
    rows = x[None, None, :] + jnp.where(on_diagonal, delta[:, :, None], jnp.zeros((), x.dtype))
    rows = rows.reshape(len(offsets) * d, d)
    if with_center:
        rows = jnp.concatenate([rows, x[None, :]])
    return rows


def _describe(x) -> str:
    if isinstance(x, jax.Array):
        return f"of shape {x.shape}"
    shapes = jax.tree_util.tree_map(lambda leaf: leaf.shape, x)
    return f"with leaf shapes {shapes}"


def _check_output(values, x, scalar: bool):
    if not isinstance(values, jax.Array):
        raise TypeError(
            f"`fun` must return {'a scalar array' if scalar else 'an array'}, got {type(values).__name__}."
            + (" Return one number, e.g. jnp.sum(...)." if scalar else "")
        )
    if scalar and values.ndim != 1:
        raise ValueError(
            f"`fun` must return a scalar, but it returned shape {values.shape[1:]} for the input {_describe(x)}. "
            "Reduce it to one number (e.g. jnp.sum), or use jg.jacobian for vector outputs."
        )


NOT_TRACEABLE = (
    jax.errors.ConcretizationTypeError,  # float(x), int(x), Python `if` on a value (TracerBoolConversionError)
    jax.errors.TracerArrayConversionError,  # np.<function> on a traced array
    jax.errors.TracerIntegerConversionError,
)


def _not_traceable(error) -> TypeError:
    return TypeError(
        f"`fun` is not traceable by JAX ({type(error).__name__}): it converts a traced value to NumPy or Python "
        "(np.<function>(x), float(x), a Python `if` on a value). Pass traceable=False to evaluate it on the host "
        "with NumPy (batched when fun accepts a batch of points, else point by point; command line: --numpy), or "
        "write it with jax.numpy."
    )


def _note(error: Exception, text: str) -> None:
    if hasattr(error, "add_note"):  # Python 3.11+
        error.add_note(text)


def _apply(fun, unravel, rows, imaginary: bool):
    """`fun` at every row (one vmap); for the complex step, the imaginary parts, after checking they exist."""
    try:
        values = jax.vmap(lambda row: fun(unravel(row)))(rows)
    except NOT_TRACEABLE as error:
        raise _not_traceable(error) from error
    except Exception as error:
        if imaginary:
            raise TypeError(
                f"`fun` cannot take complex input, which method='complex' needs ({type(error).__name__}: {error}). "
                "Use method='central' or 'richardson', or write fun with complex-safe operations."
            ) from error
        _note(error, f"(raised by `fun` while jaxgrad evaluated it at {rows.shape[0]} stencil points)")
        raise
    if not imaginary:
        return values
    if not jnp.iscomplexobj(values):
        raise ValueError(
            "method='complex' needs `fun` to keep the imaginary part of its input, but it returned a real value "
            "(jnp.abs, .real, comparisons or a cast drop it): its gradient would come out 0. Use method='central'."
        )
    return jnp.imag(values)


def host_values(fun, unravel, rows, single_array: bool):
    """`fun` at every row, on the host with NumPy: one call on the whole (R, d) batch when fun maps it to R values
    that agree with row-by-row calls on the first and last rows, else one call per row."""
    rows = np.asarray(rows)
    dtype = rows.dtype

    def one(row):
        return np.asarray(fun(row if single_array else unravel(row)), dtype)

    if single_array and len(rows):
        try:
            batched = np.asarray(fun(rows), dtype)
        except Exception:  # fun takes one point only
            batched = None
        if batched is not None and batched.shape == (len(rows),):
            ends = np.stack([one(rows[0]), one(rows[-1])])
            if np.allclose(batched[[0, -1]], ends, rtol=64 * np.finfo(dtype).eps, atol=0, equal_nan=True):
                return batched
    values = [one(row) for row in rows]
    if values and values[0].shape != ():
        raise ValueError(f"`fun` must return a scalar, but it returned shape {values[0].shape} for one point.")
    return np.asarray(values, dtype).reshape(len(rows))


class _Evaluation(NamedTuple):
    """`fun` at the stencil points of one point: the values and what is needed to combine and unravel them."""

    values: Any  # (K·d [+ 1], ...): f at each row of `_stencil_points` (imaginary parts for the complex step)
    x: Any  # (d,) the flat point in its working dtype
    h: Any  # (d,) the step of each coordinate
    unravel: Any  # flat (d,) -> the input's pytree


def _evaluate(fun, x, step, stencil: Stencil, offsets, with_center: bool, scalar: bool = True) -> _Evaluation:
    """Evaluate `fun` at x + k·h_i·e_i for every offset k and coordinate i, as one vmap (no loop over coordinates)."""
    x = jax.tree_util.tree_map(_as_working_leaf, x)
    flat_x, unravel = ravel_pytree(x)
    flat_h, _ = ravel_pytree(_leaf_steps(x, step, stencil))
    rows = _stencil_points(flat_x, flat_h, offsets, with_center, stencil.is_complex)
    values = _apply(fun, unravel, rows, stencil.is_complex)
    _check_output(values, x, scalar)
    return _Evaluation(values, flat_x, flat_h, unravel)


def warn_if_low_precision(x) -> None:
    """A UserWarning when x has float16/bfloat16 leaves: they are computed, and returned, in float32."""
    low = {
        str(np.dtype(leaf.dtype))
        for leaf in jax.tree_util.tree_leaves(x)
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating) and jnp.finfo(leaf.dtype).bits < 32
    }
    if low:
        warnings.warn(
            f"jaxgrad computes {', '.join(sorted(low))} input in float32 (its own eps^(1/3) step of ~0.1 would make "
            "the difference meaningless) and returns the gradient in float32.",
            stacklevel=3,
        )


def _combine(values, h, weights, center_weight: float = 0.0):
    """(w_0 f(x) + sum_k w_k f(x + k h_i e_i)) / h_i for every coordinate i, from the rows of `_stencil_points`.

    `weights` are aligned with the offsets the rows were built from (zeros are skipped); values may carry trailing
    output axes (for Jacobians). The result has h's dtype and shape (d, *outputs).
    """
    d = h.shape[0]
    total = jnp.zeros((d, *values.shape[1:]), values.dtype)
    for k, weight in enumerate(weights):  # K ≤ 16 terms, unrolled at trace time: no loop over coordinates
        if weight:
            total = total + weight * values[k * d : (k + 1) * d]
    if center_weight:
        total = total + center_weight * values[-1]
    scale = h.astype(total.dtype).reshape(d, *([1] * (total.ndim - 1)))
    return (total / scale).astype(h.dtype)


def _vanished(e: _Evaluation):
    """Whether a real step vanished (x + h == x) at a finite coordinate: the difference there is 0/0."""
    return jnp.any(jnp.isfinite(e.x) & (e.h == 0))


def _is_empty(x) -> bool:
    return sum(jnp.size(leaf) for leaf in jax.tree_util.tree_leaves(x)) == 0


def _gradient_from(e: _Evaluation, stencil: Stencil):
    """The gradient (like the input) and whether a step vanished, from `fun`'s values at the stencil's points."""
    return e.unravel(_combine(e.values, e.h, stencil.weights, stencil.center_weight)), _vanished(e)


def _point_gradient(fun, stencil: Stencil, x, step):
    """Gradient of `fun` at one point `x` (a pytree), and whether a step vanished at a finite coordinate."""
    if _is_empty(x):
        return jax.tree_util.tree_map(_as_working_leaf, x), jnp.zeros((), bool)
    e = _evaluate(fun, x, step, stencil, stencil.offsets, stencil.uses_center)
    return _gradient_from(e, stencil)


def estimate_positions(stencil: Stencil) -> tuple[int, ...]:
    """The offsets one error estimate evaluates: the stencil at h and at 2h, and the point itself (for the noise
    and, with ±1 and ±2, the smoothness test)."""
    return tuple(sorted(set(stencil.offsets) | set(stencil.scaled(2).offsets) | {0}))


def _estimate_from(e: _Evaluation, stencil: Stencil):
    """g(h), g(2h), the noise of f, the error estimate, the status and whether a step vanished, from `fun`'s values
    at the nonzero `estimate_positions(stencil)` followed by the point itself."""
    double = stencil.scaled(2)
    positions = estimate_positions(stencil)
    offsets = tuple(k for k in positions if k)
    d = e.h.shape[0]
    by_offset = jnp.concatenate([e.values[:-1].reshape(len(offsets), d), jnp.broadcast_to(e.values[-1], (1, d))])
    line = by_offset[jnp.asarray([offsets.index(k) if k else len(offsets) for k in positions])]  # rows by position
    g = _combine(e.values, e.h, stencil.weights_at(offsets), stencil.center_weight)
    g_double = _combine(e.values, e.h, double.weights_at(offsets), double.center_weight)
    f_noise = noise_estimate(line, positions, e.h.dtype).astype(e.h.dtype)
    error = error_estimate(e.h, stencil.weight_sum, f_noise, g, g_double, stencil.order).astype(e.h.dtype)
    second = {}
    if {-2, -1, 1, 2} <= set(positions) and not stencil.is_complex:
        at = {k: line[positions.index(k)] for k in (-2, -1, 0, 1, 2)}
        second = {
            "second_h": at[1] - 2 * at[0] + at[-1],
            "second_2h": at[2] - 2 * at[0] + at[-2],
            "second_noise": jnp.sqrt(6.0) * f_noise,
        }
    return {
        "x": e.x,
        "h": e.h,
        "g": g,
        "g_double": g_double,
        "f_noise": f_noise,
        "error": error,
        "status": status(e.x, e.values, g, error, **second),
        "vanished": jnp.zeros((), bool) if stencil.is_complex else _vanished(e),
    }


def point_estimate(fun, stencil: Stencil, x, step):
    """`_estimate_from` at one point, from one vmap of `fun` over `estimate_positions(stencil)`."""
    offsets = tuple(k for k in estimate_positions(stencil) if k)
    e = _evaluate(fun, x, step, stencil, offsets, True)
    return {**_estimate_from(e, stencil), "unravel": e.unravel}


class Estimate(NamedTuple):
    """A numerical gradient with its estimated error (`grad(..., with_error=True)`); a pytree, so it crosses jit.

    Attributes:
      value: the gradient, like the input.
      error: the estimated absolute error of each coordinate, like the input (`jg.error_estimate`).
      status: an int8 `jg.Status` code per point: 0 OK, 1 NONFINITE, 2 NOT_SMOOTH, 3 IMPRECISE.
    """

    value: Any
    error: Any
    status: Any


def _estimate_result(parts, unravel):
    return Estimate(unravel(parts["g"]), unravel(parts["error"]), parts["status"]), parts["vanished"]


def _point_gradient_with_error(fun, stencil: Stencil, x, step):
    if _is_empty(x):
        x = jax.tree_util.tree_map(_as_working_leaf, x)
        return Estimate(x, x, jnp.zeros((), jnp.int8)), jnp.zeros((), bool)
    parts = point_estimate(fun, stencil, x, step)
    return _estimate_result(parts, parts["unravel"])


# ------------------------------------------------------------------------------------------------ host evaluation
@functools.partial(jax.jit, static_argnames=("stencil", "offsets", "with_center"))
def _host_rows(points, step, *, stencil: Stencil, offsets, with_center: bool):
    """The stencil points of every point (N, R, d) with the flat points and steps: the traceable half of the host
    path (fun itself is then called on the host)."""

    def one(x):
        x = jax.tree_util.tree_map(_as_working_leaf, x)
        flat_x, _ = ravel_pytree(x)
        flat_h, _ = ravel_pytree(_leaf_steps(x, step, stencil))
        return _stencil_points(flat_x, flat_h, offsets, with_center), flat_x, flat_h

    return jax.vmap(one)(points)


def host_evaluations(fun, stencil: Stencil, points, step, offsets, with_center: bool):
    """`fun` evaluated on the host (NumPy) at the stencil points of every point: (values (N, R), x, h, unravel).

    For functions written with NumPy (traceable=False): the steps, stencil points and combinations are the JAX ones,
    so results equal the JAX path's to rounding; only the calls of `fun` leave JAX.
    """
    if stencil.is_complex:
        raise ValueError("traceable=False takes real stencils; method='complex' needs a JAX-traceable `fun`.")
    rows, xs, hs = _host_rows(points, step, stencil=stencil, offsets=offsets, with_center=with_center)
    point0 = jax.tree_util.tree_map(lambda leaf: _as_working_leaf(leaf[0]), points)
    _, unravel = ravel_pytree(point0)
    n, r, d = rows.shape
    single = isinstance(points, jax.Array)
    flat_rows = np.asarray(rows).reshape(n * r, d)
    if single:
        flat_rows = flat_rows.reshape(n * r, *np.shape(point0))
    values = host_values(fun, unravel, flat_rows, single)
    return jnp.asarray(values.reshape(n, r)), xs, hs, unravel


@functools.partial(jax.jit, static_argnames=("stencil", "with_error"))
def _host_combine(values, xs, hs, *, stencil: Stencil, with_error: bool):
    """The flat gradients (and estimates) of every point from the values `fun` took on the host."""

    def one(v, x, h):
        e = _Evaluation(v, x, h, None)
        if with_error:
            parts = _estimate_from(e, stencil)
            return (parts["g"], parts["error"], parts["status"]), parts["vanished"]
        return _combine(v, h, stencil.weights, stencil.center_weight), _vanished(e)

    return jax.vmap(one)(values, xs, hs)


@functools.partial(jax.jit, static_argnames=("stencil",))
def _host_estimates(values, xs, hs, *, stencil: Stencil):
    return jax.vmap(lambda v, x, h: _estimate_from(_Evaluation(v, x, h, None), stencil))(values, xs, hs)


def host_estimate_parts(fun, stencil: Stencil, points, step):
    """`point_estimate`'s parts at every point (flat, one row per point), with `fun` called on the host."""
    offsets = tuple(k for k in estimate_positions(stencil) if k)
    values, xs, hs, _ = host_evaluations(fun, stencil, points, step, offsets, True)
    return _host_estimates(values, xs, hs, stencil=stencil)


def host_batch(fun, stencil: Stencil, points, step, with_error: bool):
    """batch_grad's result with `fun` called on the host: (gradients or Estimate, per-point vanished flags)."""
    if with_error:
        offsets, with_center = tuple(k for k in estimate_positions(stencil) if k), True
    else:
        offsets, with_center = stencil.offsets, stencil.uses_center
    values, xs, hs, unravel = host_evaluations(fun, stencil, points, step, offsets, with_center)
    flat, vanished = _host_combine(values, xs, hs, stencil=stencil, with_error=with_error)
    if with_error:
        g, error, codes = flat
        return Estimate(jax.vmap(unravel)(g), jax.vmap(unravel)(error), codes), vanished
    return jax.vmap(unravel)(flat), vanished


def _raise_if_step_vanished(vanished, step):
    if isinstance(vanished, jax.core.Tracer) or not bool(jnp.any(vanished)):
        return
    raise ValueError(
        f"`step`={step!r} is below the resolution of the input's dtype: x + step == x for some coordinate, so the "
        "difference is 0/0. Use a step larger than eps·|x| (jnp.finfo(dtype).eps), or step=None for the default."
    )


# ------------------------------------------------------------------------------------------------------- public: grad
@dataclasses.dataclass(frozen=True)
class _Bound:
    """`fun` seen as a function of its differentiated argument(s) only; hashable, so compiled programs are shared."""

    fun: Any
    argnums: Any
    has_aux: bool

    def _positions(self, count: int) -> list[int]:
        """The differentiated positions among `count` arguments, in `argnums` order, negatives counted from the end
        (as `jax.grad` does)."""
        numbers = [self.argnums] if isinstance(self.argnums, int) else list(self.argnums)
        positions = [i + count if i < 0 else i for i in numbers]
        if any(not 0 <= i < count for i in positions):
            raise ValueError(f"`argnums`={self.argnums!r} refers past the {count} arguments given.")
        if len(set(positions)) != len(positions):
            raise ValueError(f"`argnums`={self.argnums!r} names an argument twice.")
        return positions

    def arguments(self, x, rest):
        """fun's positional arguments: `x` at `argnums` (a tuple of them, in `argnums` order, for a tuple), `rest`
        in the other places, in order."""
        values = (x,) if isinstance(self.argnums, int) else tuple(x)
        count = len(rest) + len(values)
        placed = dict(zip(self._positions(count), values, strict=True))
        others = iter(rest)
        return [placed[i] if i in placed else next(others) for i in range(count)]

    def split(self, args):
        """(the differentiated argument(s), the others) from fun's positional arguments."""
        positions = self._positions(len(args))
        picked = args[positions[0]] if isinstance(self.argnums, int) else tuple(args[i] for i in positions)
        return picked, tuple(a for i, a in enumerate(args) if i not in positions)

    def value(self, x, rest):
        out = self.fun(*self.arguments(x, rest))
        if self.has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError(f"with has_aux=True `fun` must return a pair (value, aux), got {type(out).__name__}.")
            return out[0]
        return out

    def aux(self, x, rest):
        return self.fun(*self.arguments(x, rest))[1]


def _gradient_of_bound(bound: _Bound, stencil: Stencil, with_error: bool, x, step, rest):
    per_point = _point_gradient_with_error if with_error else _point_gradient
    result, vanished = per_point(lambda point: bound.value(point, rest), stencil, x, step)
    aux = bound.aux(jax.tree_util.tree_map(_as_working_leaf, x), rest) if bound.has_aux else None
    return result, vanished, aux


_gradient_program = jax.jit(_gradient_of_bound, static_argnums=(0, 1, 2))


def compiled_with(program, function, *static):
    """`program` (a function jitted with its leading arguments static) with `static` bound: one compiled program per
    function and options, however often the transformation is created. An unhashable `fun` gets a private jit of
    `function` instead."""
    try:
        hash(static)
    except TypeError:
        return jax.jit(functools.partial(function, *static))
    return functools.partial(program, *static)


def grad(
    fun,
    argnums: int | tuple[int, ...] = 0,
    *,
    method: str = "central",
    order: int | None = None,
    step=None,
    with_error: bool = False,
    has_aux: bool = False,
    traceable: bool = True,
):
    """Numerical gradient by finite differences, as a transformation like `jax.grad`.

    The stencil's evaluations at one point are one `jax.vmap` of `fun` over the perturbed points x + k·h_i·e_i (no
    Python loop over coordinates); the result is (sum_k w_k f(x + k h_i e_i)) / h_i per coordinate.

    Methods and their cost in evaluations of `fun` per point of d coordinates:
      * "central" order p (2, 4, 6, 8): p·d. The default, order 2: error ≈ eps^(2/3).
      * "forward" / "backward" order p: p·d + 1 (f(x) is shared); for points at the edge of f's domain.
      * "richardson" order 6 (or 4, 8): central differences at h, 2h, 4h extrapolated: 6·d; error ≈ eps^(6/7).
      * "complex": Im f(x + i h e_i) / h with h = eps²·max(|x|, 1): d evaluations, exact to rounding (≈ eps), but only
        for f real-analytic and written with complex-safe operations. It is wrong, silently, where f uses jnp.abs,
        max/min, comparisons or `where` on the real part, or .real/.imag; a real-valued output is refused.
    With `with_error=True` each evaluates the stencil at h and 2h plus f(x): central order 2 then costs 4·d + 1.

    Args:
      fun: a JAX-traceable function returning a scalar; the argument(s) `argnums` are differentiated (arrays of any
        shape, or pytrees of arrays), the others held fixed.
      argnums: which positional argument(s) to differentiate, an int or a tuple of ints, as in `jax.grad`.
      method: "central" (default), "forward", "backward", "richardson" or "complex".
      order: order p of the truncation error O(h^p); None: 2 central, 1 one-sided, 6 Richardson, 2 complex.
      step: None for the default eps^(1/(p+1))·max(|x|, 1) per coordinate (eps²·max(|x|, 1) for "complex"), rounded
        to a power of two; or an absolute step, a positive scalar or an array (pytree) of the input's shape. Real
        steps are made exactly representable, h = (x + h) - x.
      with_error: also return the error estimate and a status (an `Estimate`).
      has_aux: `fun` returns (value, aux); the gradient is returned with aux, as `jax.grad` does (one more
        evaluation, at x itself).
      traceable: False for a `fun` written with NumPy (or anything JAX cannot trace): the steps and stencil points
        are computed by JAX as usual, `fun` is called on the host on NumPy arrays (the whole stencil in one call when
        it accepts a batch of points, else row by row), and the results equal the JAX path's to rounding.

    Returns:
      A function of fun's arguments -> gradient with the structure and shapes of the differentiated argument(s) (an
      `Estimate(value, error, status)` with `with_error=True`; a pair (gradient, aux) with `has_aux=True`). Float
      inputs keep their dtype; integer inputs are promoted to the default float dtype, float16/bfloat16 to float32.
      It composes with `jax.jit` and `jax.vmap`.

    Raises:
      ValueError: bad `method`, `order` or `step`; `fun` returning a non-scalar; a user step so small that
        x + step == x (checked when called outside `jax.jit`; under jit such coordinates come out NaN).
      TypeError: method="complex" with a `fun` that cannot take complex input.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> def function_2(x): return x[0] ** 2 + x[1] ** 2
      >>> print(jg.grad(function_2)(jnp.array([3.0, 4.0])))
      [6. 8.]
      >>> g, err, status = jg.grad(jnp.sin, with_error=True)(jnp.array(0.5))
      >>> bool(abs(g - jnp.cos(0.5)) <= err), int(status)
      (True, 0)
    """
    stencil = make_stencil(method, order)
    if step is not None:
        check_step(step)
    if not (isinstance(argnums, int) or (isinstance(argnums, tuple) and all(isinstance(a, int) for a in argnums))):
        raise TypeError(f"`argnums` must be an int or a tuple of ints, got {argnums!r}.")
    bound = _Bound(fun, argnums, has_aux)
    program = compiled_with(_gradient_program, _gradient_of_bound, bound, stencil, with_error)

    def on_host(x, rest):
        batch = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[None], x)
        result, vanished = host_batch(lambda point: bound.value(point, rest), stencil, batch, step, with_error)
        aux = bound.aux(jax.tree_util.tree_map(_as_working_leaf, x), rest) if has_aux else None
        return jax.tree_util.tree_map(lambda leaf: leaf[0], result), vanished[0], aux

    @functools.wraps(fun, updated=())
    def gradient(*args):
        x, rest = bound.split(args)
        if not isinstance(x, jax.core.Tracer):
            warn_if_low_precision(x)
        result, vanished, aux = program(x, step, rest) if traceable else on_host(x, rest)
        if step is not None:
            _raise_if_step_vanished(vanished, step)
        return (result, aux) if has_aux else result

    return gradient


# ------------------------------------------------------------------------------------------------- public: batch_grad
CPU_MEMORY_BUDGET = 8 * 2**20
"""Default budget on CPU (8 MiB): temporaries about the size of a cache run faster than one pass through RAM."""
ACCELERATOR_MEMORY_BUDGET = 2**30
"""Default budget on GPU/TPU (1 GiB)."""


def default_memory_budget(platform: str | None = None) -> int:
    """The default `memory_budget` of `batch_grad` on a platform ("cpu", "gpu", "tpu"; None: the default device's)."""
    platform = platform or jax.devices()[0].platform
    return CPU_MEMORY_BUDGET if platform == "cpu" else ACCELERATOR_MEMORY_BUDGET


def map_points(per_point, points, step, chunk: int):
    """`per_point(x, step)` at every point (leading axis of `points`), inside a traced program.

    One vmap if chunk ≥ N; else a loop over chunks of `chunk` points whose outputs are written into buffers of N
    rows. The last chunk starts at N - chunk (it overlaps the one before and recomputes a few points identically), so
    the points are never padded or copied and `per_point` is traced once.
    """
    batched = jax.vmap(per_point, in_axes=(0, None))
    n = jax.tree_util.tree_leaves(points)[0].shape[0]
    if chunk >= n:
        return batched(points, step)

    def take(tree, start):
        return jax.tree_util.tree_map(lambda leaf: lax.dynamic_slice_in_dim(leaf, start, chunk), tree)

    shapes = jax.eval_shape(batched, take(points, 0), step)
    out = jax.tree_util.tree_map(lambda s: jnp.zeros((n, *s.shape[1:]), s.dtype), shapes)

    def body(i, out):
        start = jnp.minimum(i * chunk, n - chunk)
        results = batched(take(points, start), step)
        return jax.tree_util.tree_map(lambda o, r: lax.dynamic_update_slice_in_dim(o, r, start, 0), out, results)

    return lax.fori_loop(0, -(-n // chunk), body, out)


@functools.partial(jax.jit, static_argnames=("fun", "stencil", "chunk", "with_error"))
def _batch_gradient(points, step, *, fun, stencil: Stencil, chunk: int, with_error: bool = False):
    """Gradients (or `Estimate`s) and per-point "step vanished" flags at all points, in one program."""
    per_point = _point_gradient_with_error if with_error else _point_gradient
    return map_points(functools.partial(per_point, fun, stencil), points, step, chunk)


class _Plan(NamedTuple):
    chunk: int
    one_pass: Any  # the compiled single-pass program when chunk == N, else None
    temp_bytes: int  # XLA's temporary memory for a single pass


_PLANS: collections.OrderedDict = collections.OrderedDict()
_MAX_PLANS = 128


def _aval_key(tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple(
        (type(leaf), np.shape(leaf), getattr(leaf, "dtype", None), getattr(leaf, "sharding", None)) for leaf in leaves
    )


def _estimated_temp_bytes(points, num_points: int, stencil: Stencil | None) -> int:
    """Fallback when XLA gives no memory analysis: twice the stencil points of `num_points` points."""
    leaves = jax.tree_util.tree_leaves(points)
    dim = sum(math.prod(leaf.shape[1:]) for leaf in leaves)
    itemsize = max(working_dtype(leaf.dtype).itemsize for leaf in leaves)
    return 2 * num_points * (stencil or make_stencil()).evaluations(dim) * max(dim, 1) * itemsize


def plan(program, points, step, budget: int, **static) -> _Plan:
    """Choose the chunk for `program(points, step, chunk=..., **static)` (a jitted `map_points` program).

    One pass if XLA's plan for it needs at most `budget` bytes of temporaries, else chunks of about
    budget / (temporaries per point) points. The single-pass program is compiled once to ask XLA
    (`memory_analysis`) and reused when it is chosen; plans are cached per shapes and options.
    """
    n = jax.tree_util.tree_leaves(points)[0].shape[0]
    key = (program, tuple(sorted(static.items())), _aval_key(points), _aval_key(step), budget)
    try:
        cached = _PLANS.get(key)
    except TypeError:  # an unhashable `fun`: no caching; jit raises its own clear error below
        cached, key = None, None
    if cached is not None:
        _PLANS.move_to_end(key)
        return cached
    compiled = program.lower(points, step, chunk=n, **static).compile()
    temp = getattr(compiled.memory_analysis(), "temp_size_in_bytes", None)
    if temp is None:
        temp = _estimated_temp_bytes(points, n, static.get("stencil"))
    chunk = n if temp <= budget else max(1, n * budget // temp)
    result = _Plan(chunk, compiled if chunk == n else None, temp)
    if key is not None:
        _PLANS[key] = result
        if len(_PLANS) > _MAX_PLANS:
            _PLANS.popitem(last=False)
    return result


def run_program(program, points, step, *, chunk_size, memory_budget, **static):
    """Run a jitted `map_points` program with the chunk the caller gave, or the planned one."""
    n = jax.tree_util.tree_leaves(points)[0].shape[0]
    if chunk_size is not None:
        return program(points, step, chunk=min(chunk_size, n), **static)
    budget = memory_budget or default_memory_budget()
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(points)):
        per_point = _estimated_temp_bytes(points, 1, static.get("stencil"))  # under an outer jit: estimate
        return program(points, step, chunk=min(n, max(1, budget // per_point)), **static)
    chosen = plan(program, points, step, budget, **static)
    if chosen.one_pass is not None:
        return chosen.one_pass(points, step)
    return program(points, step, chunk=chosen.chunk, **static)


def check_batch_arguments(step, chunk_size, memory_budget):
    """Validate the knobs shared by the batched entry points."""
    if step is not None:
        check_step(step)
    for name, value in (("chunk_size", chunk_size), ("memory_budget", memory_budget)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"`{name}` must be a positive integer or None, got {value!r}.")


def as_points(points):
    """`points` with every leaf a JAX array. Nested lists or tuples of numbers are one array (as NumPy reads them),
    not a pytree of scalars; any other pytree keeps its structure."""

    def numbers_only(value):
        if isinstance(value, (list, tuple)):
            return all(numbers_only(v) for v in value)
        return isinstance(value, (int, float, np.number, np.bool_))

    if isinstance(points, (list, tuple)) and numbers_only(points):
        return jnp.asarray(np.asarray(points))
    return jax.tree_util.tree_map(jnp.asarray, points)


def leading_size(points) -> int:
    """N, the leading (batch) size shared by every leaf of `points`, with a clear error when there is none."""
    leaves = jax.tree_util.tree_leaves(points)
    if not leaves:
        raise ValueError("`points` has no arrays; pass an array of shape (N, ...) with one point per row.")
    if any(leaf.ndim == 0 for leaf in leaves):
        raise ValueError(
            "`points` needs a leading batch axis, got a scalar. For one point use jg.grad(fun)(x); for a batch of "
            "N scalars pass shape (N,)."
        )
    sizes = {leaf.shape[0] for leaf in leaves}
    if len(sizes) > 1:
        raise ValueError(f"Every leaf of `points` must have the same leading (batch) size, got sizes {sorted(sizes)}.")
    return sizes.pop()


def raise_if_missing_batch_axis(fun, points, error: Exception) -> None:
    """Explain a failure on a 1-D `points` whose rows `fun` cannot take but whose whole array it can: one point
    passed where a batch was expected."""
    if not isinstance(points, jax.Array) or points.ndim != 1:
        return
    try:
        out = jax.eval_shape(fun, points)
    except Exception:  # any failure means the whole array is no valid point either
        return
    if getattr(out, "shape", None) == ():
        n = points.shape[0]
        raise ValueError(
            f"`points` has shape {points.shape}, which is read as {n} points of shape (), but `fun` takes the "
            f"whole array as one point. Add the batch axis: points[None] (shape (1, {n})), or use jg.grad(fun)(x) "
            "for a single point."
        ) from error


def batch_grad(
    fun,
    points,
    *,
    method: str = "central",
    order: int | None = None,
    step=None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    with_error: bool = False,
    sharding=None,
    traceable: bool = True,
):
    """Numerical gradients of `fun` at N points in one compiled call: `grad` vmapped over the leading axis.

    Compiles once per shape, dtype and options; later calls with the same ones reuse the program. When one pass over
    all N points would need more temporary memory than `memory_budget` (as XLA's own memory analysis of the compiled
    program reports; the naive stencil of N points holds N · evaluations(d) · d values), the points are processed in
    chunks by a loop inside the same program. The result equals one big call up to the rounding of f: XLA may fuse
    (and contract into FMAs) the operations of `fun` differently in the two programs.

    Args:
      fun: a JAX-traceable function of one point (array or pytree) returning a scalar.
      points: an array of shape (N, ...) or a pytree whose leaves all have leading size N; row n is one point.
      method, order, step: as in `grad`; a step is a scalar or has the shape of one point, shared by all points.
      chunk_size: points per chunk; None picks it from `memory_budget`.
      memory_budget: bytes of temporary memory one pass may use; None means 8 MiB on CPU (cache-sized temporaries
        are faster there) and 1 GiB on GPU/TPU.
      with_error: return an `Estimate(value, error, status)` with the error of every coordinate and a status (N,)
        per point, as in `grad`.
      sharding: None (the points stay where they are), "auto" (split the points over all of `jax.devices()`), a
        `jax.sharding.Mesh` or a `NamedSharding` splitting the leading axis. N need not divide by the device count
        (the points are padded and the padding dropped); each device runs the chunked program on its shard. The
        result stays split over the devices when N divides by their count; otherwise dropping the padding gathers
        it onto every device (JAX arrays cannot be split unevenly), so pick such an N for results that fill a
        device. See `jaxgrad._scale` for several GPUs and several hosts.
      traceable: False for a `fun` written with NumPy: it is called on the host on NumPy arrays, as in `grad`
        (all points' stencils in one call when fun accepts a batch, else row by row).

    Returns:
      Gradients with the structure and shapes of `points`. A NaN or Inf in one point makes only that point's
      gradient non-finite. An empty batch gives an empty result.

    Raises:
      ValueError: as `grad`; also `points` without a batch axis (with the fix), `chunk_size` or `memory_budget` < 1.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> points = jnp.array([[3.0, 4.0], [0.0, 2.0], [3.0, 0.0]])
      >>> print(jg.batch_grad(lambda x: x[0] ** 2 + x[1] ** 2, points))
      [[6. 8.]
       [0. 4.]
       [6. 0.]]
    """
    stencil = make_stencil(method, order)
    check_batch_arguments(step, chunk_size, memory_budget)
    points = as_points(points)
    n = leading_size(points)
    if n == 0:
        empty = jax.tree_util.tree_map(lambda leaf: jnp.zeros(leaf.shape, working_dtype(leaf.dtype)), points)
        return Estimate(empty, empty, jnp.zeros((0,), jnp.int8)) if with_error else empty
    warn_if_low_precision(points)
    if not traceable and sharding is not None:
        raise ValueError("traceable=False evaluates `fun` on the host: it cannot be combined with `sharding`.")
    try:
        if not traceable:
            result, vanished = host_batch(fun, stencil, points, step, with_error)
        elif sharding is not None:
            from ._scale import run_sharded

            result, vanished = run_sharded(fun, stencil, with_error, points, step, sharding, chunk_size=chunk_size,
                                           memory_budget=memory_budget)  # fmt: skip
        else:
            result, vanished = run_program(
                _batch_gradient, points, step, chunk_size=chunk_size, memory_budget=memory_budget, fun=fun,
                stencil=stencil, with_error=with_error,
            )  # fmt: skip
    except Exception as error:
        raise_if_missing_batch_axis(fun, points, error)
        raise
    if step is not None:
        _raise_if_step_vanished(vanished, step)
    return result


def num_evaluations(dim: int, *, method: str = "central", order: int | None = None, with_error: bool = False) -> int:
    """Evaluations of `fun` per point of `dim` coordinates for a method and order (2d for central order 2); with
    the error estimate, the stencil at h and 2h plus f(x).

    Example:
      >>> num_evaluations(8), num_evaluations(8, with_error=True), num_evaluations(8, method="complex")
      (16, 33, 8)
    """
    stencil = make_stencil(method, order)
    if not with_error:
        return stencil.evaluations(dim)
    return (len(estimate_positions(stencil)) - 1) * dim + 1
