"""Low-level numerics: stencil weights, the default step, the noise of f, the error estimate, the comparison tolerance,
relative errors.

These are the rules the transformations and the verification layer are built on, each written once here with its
reason. They work on NumPy and JAX arrays (and tracers) alike, unless a docstring says otherwise.

Example:
  >>> from jaxgrad import numerics
  >>> numerics.finite_difference_weights((-1, 1))
  (-0.5, 0.5)
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _validate as validate
from ._steps import default_step as default_step
from ._steps import round_to_power_of_two as round_to_power_of_two

ROUNDING = 2.0
"""Roundings of |f| assumed at least in one evaluation of f (a few operations, each rounding by eps/2)."""
SAFETY = 16.0
"""Margin of `tolerance` on the estimated error, for the spread of rounding errors and estimates across points."""


def finite_difference_weights(offsets, derivative=1):
    """Weights w such that f^(m)(x) ≈ sum_k w_k f(x + k h) / h^m, exact for polynomials of degree < len(offsets).

    Solves the Vandermonde system sum_k w_k k^j = m! [j == m], j = 0..K-1, in exact rational arithmetic, so the
    weights are the exact rationals of the textbook tables (central order 2: -1/2, 1/2; order 4: 1/12, -2/3, 2/3,
    -1/12) before the final rounding to float. Results are cached: a stencil is solved once per process.

    Args:
      offsets: distinct integers (multiples of the step h) at which f is evaluated.
      derivative: the order m of the derivative.

    Returns:
      A tuple of floats, one weight per offset.

    Example:
      >>> finite_difference_weights((-1, 1))
      (-0.5, 0.5)
      >>> finite_difference_weights((0, 1, 2))
      (-1.5, 2.0, -0.5)
    """
    offsets = tuple(np.ravel(offsets).tolist()) if np.ndim(offsets) else (offsets,)
    if not all(isinstance(k, int) and not isinstance(k, bool) for k in offsets):
        raise TypeError(f"`offsets` must be integers (multiples of the step), got {offsets!r}.")
    derivative = validate.integer("derivative", derivative, minimum=0)
    return _weights(offsets, derivative)


@functools.cache
def _weights(offsets: tuple, derivative: int) -> tuple[float, ...]:
    offsets = [Fraction(k) for k in offsets]
    if len(set(offsets)) != len(offsets):
        raise ValueError(f"`offsets` must be distinct, got {offsets}.")
    size = len(offsets)
    if not 0 <= derivative < size:
        raise ValueError(f"`derivative`={derivative} needs at least {derivative + 1} offsets, got {size}.")
    # Augmented matrix [A | b] with A[j][k] = offsets[k]**j, b[j] = m! [j == m]; Gauss-Jordan with exact fractions.
    factorial = math.factorial(derivative)
    rows = [[k**j for k in offsets] + [Fraction(factorial if j == derivative else 0)] for j in range(size)]
    for col in range(size):
        pivot = next(r for r in range(col, size) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        lead = rows[col][col]
        rows[col] = [v / lead for v in rows[col]]
        for r in range(size):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [v - factor * p for v, p in zip(rows[r], rows[col], strict=True)]
    return tuple(float(rows[k][size]) for k in range(size))


def noise_differences(positions, odd_only: bool = False) -> tuple[int, ...]:
    """The orders of the differences `noise_estimate` takes over `positions`: for a symmetric set (2m + 1 points) the
    highest odd one, 2m − 1, and the highest, 2m (`odd_only`: the odd one alone); else the highest one, len − 1."""
    symmetric = set(positions) == {-k for k in positions}
    if symmetric and len(positions) >= 3:
        return (len(positions) - 2,) if odd_only else (len(positions) - 2, len(positions) - 1)
    return (len(positions) - 1,)


def noise_estimate(values, positions, dtype, x=None, *, odd_only: bool = False):
    """The error of one evaluation of f, from f at equally spaced points along each line (one column per line).

    A difference of order m cancels every polynomial of degree < m, so what remains of sum_k c_k f(x + k h) is
    rounding noise (plus h^m·f^(m), which only makes the estimate safer); for independent errors of size σ its size
    is σ·‖c‖₂. This is the idea of Moré & Wild's ECnoise with one sample per line and difference. On a symmetric set
    of points two differences carry the noise, the highest odd one and the highest (even) one, independent samples of
    it: a rounding that leaves one of them exactly 0 (exp(x) − 1 − x in float32 rounds on ulp(1)'s grid, where the
    third difference at the default step often is) rarely leaves both. The samples of one point's lines are pooled
    (root mean square), never below the odd ones' pool alone (where the odd difference reads h^m·f^(m) too, the even
    one's smaller share would lower the estimate). The result is never below ROUNDING·eps·|f|, the rounding of the
    values themselves, nor below the smallest normal number: values and differences below it flush to zero on XLA's
    CPU, so an f that is 0 on the stencil may be one too tiny to see (its gradient then reads IMPRECISE, not OK).
    It catches what |f| alone misses: f summing terms that cancel, or an f computed through large intermediate values,
    where their rounding shows in the differences. An f that subtracts nearly equal values (1 − cos x at small x)
    rounds on the coarse grid of ulp(1): given the point `x`, the noise is also never below that grid's spacing where
    the values show it (`granularity`).

    Args:
      values: (len(positions), lines) array of f values, row k at offset positions[k].
      positions: the offsets, in units of the step.
      dtype: the dtype f was evaluated in.
      x: the point (flat), or None: no `granularity` floor.
      odd_only: the odd difference alone, the smoothness test's noise (`line_second_differences`): its weights are
        antisymmetric, so it cancels the even part of f around x, and a kink at x itself (|x|, max(x, 0)) does not
        pass for noise, as it does for the even one (which only enlarges the error estimate there).

    Returns:
      (lines,) the noise per line: max(ROUNDING·eps·max_k |f_k|, the smallest normal number, pooled estimate, and
      with `x` its `granularity`).

    Example:
      >>> import numpy as np
      >>> float(noise_estimate(np.full((5, 1), 100.0, np.float32), (-2, -1, 0, 1, 2), "float32")[0])  # 2·eps·100
      2.384185791015625e-05
    """
    samples = []
    for order in noise_differences(positions, odd_only):
        weights = jnp.asarray(finite_difference_weights(positions, derivative=order), values.dtype)
        samples.append(jnp.abs(weights @ values) / jnp.linalg.norm(weights))
    pooled = functools.reduce(jnp.maximum, [norm(samples[0], mean=True), norm(jnp.stack(samples), mean=True)])
    floor = noise_floor(values, dtype, x, positions)
    return jnp.maximum(jnp.maximum(floor, float(jnp.finfo(dtype).tiny)), pooled)


def noise_floor(values, dtype, x=None, positions=None):
    """The least noise of one evaluation of f per line (column) of `values`, whatever its differences read:
    ROUNDING·eps·max_k |f_k|, the rounding of the values themselves, and given the flat point `x` f's `granularity`
    (values rounded on a coarse grid; given the rows' `positions` on the lines, also one that f(x) hides:
    `hidden_granularity`). `noise_estimate` and the Hessian's noise both take it.

    Example:
      >>> import numpy as np
      >>> float(noise_floor(np.full((5, 1), 100.0, np.float32), "float32")[0])  # 2·eps·100
      2.384185791015625e-05
    """
    floor = ROUNDING * float(jnp.finfo(dtype).eps) * jnp.max(jnp.abs(values), axis=0, initial=0.0)
    if x is not None:
        floor = jnp.maximum(floor, granularity(values, x, positions).astype(floor.dtype))
    return floor


COARSE_GRID = 64
"""f's values count as rounded on a coarse grid when a power of two this many times their own ulp divides them all."""

RESOLVED_GRID = 16
"""A grid that f(x) hides counts where f's differences from it span at least this many of its steps: at a kink they
are exact multiples of the step's own h/2^j, spanning 2^(j+1) of them, and read as rounding that grid hid the kink
from the smoothness test (relu at 0)."""


def granularity(values, x, positions=None):
    """G/√12, the standard deviation of rounding on a grid of spacing G, where f's values at a point's stencil vary and
    are all multiples of a power of two G at least COARSE_GRID times the ulp of the largest of them while some
    coordinate of the point x carries a full mantissa, else 0.

    Such values were rounded on G's grid before their last, exact, operations: f subtracted nearly equal values
    (1 − cos x at x = 5e-3: cos x ≈ 1 rounds on ulp(1)'s grid, and 1 − cos x ≈ 1.3e-5 is exact on it), and its
    noise is that rounding, far above eps·|f|. Computed exactly from such a point, f's values have full mantissas
    too; at a point whose coordinates all have few significant bits (3.0, 0.5, 0: the notes' [3, 4]), an exact
    polynomial of it is coarse by itself and is left alone. (An f of only such coordinates of a point that also has
    full ones reads as coarse: its noise is then overstated, never understated.)

    Given the rows' `positions` on lines through x (0 among them), the same test also reads the differences
    f(x + kh) − f(x) (`hidden_granularity`): exp(x) − 1 − x rounds on ulp(1)'s grid (exp(x) ≈ 1), which the fine
    bits of f(x) hide from the values themselves but not from their differences (x + kh − x is exact). The rounding
    of a smooth function on a grid is not independent from point to point: a third difference of such values was
    exactly 0 on about 40% of the lines, so `noise_estimate` alone missed the grid at 15% of the points of 2
    coordinates and the error estimate was up to 1,537 times below the actual error.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([0.005123, 0.007731], jnp.float32)
      >>> f = lambda x: jnp.sum(1 - jnp.cos(x))
      >>> values = jnp.stack([f(x + k * 2.0**-8 * jnp.eye(2, dtype=jnp.float32)[0]) for k in (-2, -1, 0, 1, 2)])
      >>> grid = 2.0**-24  # ulp(cos x) for cos x just below 1
      >>> round(float(granularity(values, x)) * 12**0.5 / grid, 6), float(granularity(values, jnp.array([3.0, 4.0])))
      (1.0, 0.0)
    """
    spread = _grid_spread(values, x)
    if positions is not None and 0 in positions and len(positions) > 1:
        values = jnp.asarray(values)
        center = values[list(positions).index(0)]
        moved = jnp.stack([values[i] - center for i, k in enumerate(positions) if k])
        spread = jnp.maximum(spread, hidden_granularity(moved, x))
    return spread


def hidden_granularity(differences, x):
    """`granularity` of f's `differences` f(x + kh) − f(x) along lines through the point x (rows), where they span at
    least RESOLVED_GRID steps of their grid, else 0: a grid the fine bits of f(x) hid from f's values, not the exact
    multiples of the step that a kink gives.

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([0.005123, 0.007731], jnp.float32)
      >>> f = lambda x: jnp.sum(jnp.exp(x) - 1 - x)  # exp(x) rounds on ulp(1)'s grid, 2^-23 above 1
      >>> moved = jnp.stack([f(x + k * 2.0**-12 * jnp.eye(2, dtype=jnp.float32)[0]) - f(x) for k in (-2, -1, 1, 2)])
      >>> round(float(hidden_granularity(moved, x)) * 12**0.5 / 2.0**-23, 6)  # the values alone show x's 2^-31
      1.0
      >>> relu = jnp.array([0.0, 0.0, 2.0**-10, 2.0**-9])  # at its kink: exact multiples of h = 2^-10
      >>> float(hidden_granularity(relu, jnp.array([0.7, 0.0])))
      0.0
    """
    return _grid_spread(differences, x, resolved=True)


def _grid_spread(values, x, resolved: bool = False):
    """`granularity` of the values themselves (`resolved`: only where they span RESOLVED_GRID of its steps)."""
    values = jnp.asarray(values)
    info = jnp.finfo(values.dtype)
    unsigned = jnp.uint64 if values.dtype == jnp.float64 else jnp.uint32
    magnitude = jnp.where(jnp.isfinite(values), jnp.abs(values), 0)
    largest = jnp.max(magnitude)
    exponent = (lax.bitcast_convert_type(largest, unsigned) >> info.nmant).astype(jnp.int32)  # biased; sign is 0
    place = lax.bitcast_convert_type(
        jnp.maximum(exponent - info.nmant, 1).astype(unsigned) << info.nmant, largest.dtype
    )
    counts = magnitude / place  # exact; whole numbers below 2^digits where every value is a multiple of the last place
    whole = jnp.all(counts == jnp.round(counts))
    common = jnp.bitwise_or.reduce(jnp.where(whole, counts, 0).astype(unsigned))  # the lowest bit set in any count
    lowest = common & (~common + unsigned(1))
    varies = largest > jnp.min(magnitude)  # a constant f (a step function's flat part) shows no grid
    coarse = whole & varies & (lowest >= COARSE_GRID) & (exponent > info.nmant)
    if resolved:  # the largest count is at least 2^nmant: G is at least RESOLVED_GRID times below it
        coarse = coarse & (jnp.max(counts) >= RESOLVED_GRID * lowest.astype(counts.dtype))
    bits = lax.bitcast_convert_type(jnp.ravel(jnp.asarray(x)).astype(values.dtype), unsigned)
    full = jnp.any(bits & unsigned((1 << (info.nmant - (info.nmant + 1) // 2)) - 1) != 0)  # not all 0 or short
    spread = place * lowest.astype(values.dtype) / math.sqrt(12.0)  # the standard deviation of rounding on the grid
    return jnp.where(full & coarse, spread, 0).astype(values.dtype)


def _xp(*arrays):
    return np if all(isinstance(a, (np.ndarray, np.generic, float, int, list, tuple)) for a in arrays) else jnp


def error_estimate(step, weight_sum, f_noise, g_step, g_double_step, order):
    """The estimated error of a finite-difference gradient g(h), per coordinate: round-off plus truncation.

      * round-off: each f value carries an error of about `f_noise` (`noise_estimate`), and the weighted sum divides
        them by h: f_noise·sum|w_k| / h. It does not shrink with the gradient.
      * truncation: g(h) − g* ≈ C h^p, so g(2h) − g(h) ≈ (2^p − 1) C h^p, and |g(2h) − g(h)| / (2^p − 1) estimates the
        truncation error of g(h) from the data (Richardson). It never involves an exact gradient.

    Works on NumPy arrays (returns NumPy) and on JAX arrays or tracers.

    Args:
      step: h per coordinate (or a scalar).
      weight_sum: sum |w_k| of the stencil, center weight included.
      f_noise: the error of one evaluation of f near the point.
      g_step, g_double_step: the numeric gradient at steps h and 2h.
      order: p, the stencil's order.

    Example:
      >>> round(float(error_estimate(1e-5, 1.0, 1e-15, 2.0, 2.0 + 3e-6, 2)), 12)  # 1e-10 round-off + 1e-6 truncation
      1.0001e-06
    """
    xp = _xp(step, f_noise, g_step, g_double_step)
    return f_noise * weight_sum / step + xp.abs(g_step - g_double_step) / (2**order - 1)


def tolerance(
    dtype, step, weight_sum, f_noise, g_step, g_double_step, order, exact, *, rtol=0.0, atol=0.0, exact_scale=0.0
):
    """The largest |numeric − exact| a correct gradient can show, per point and coordinate.

    It is SAFETY times [the numeric gradient's own error estimate, `error_estimate` (round-off from the measured
    noise of f, plus a Richardson truncation estimate from steps h and 2h), plus the exact gradient's own rounding
    ROUNDING·eps·max(|exact|, exact_scale)], plus the user's atol + rtol·|exact|. An exact gradient near 0 computed
    from large terms rounds like those terms, not like its result: Rosenbrock's 200·(x₃ − x₂²) 1e-6 from its
    minimum is off by 2e-14 in float64 while the finite difference is right to 1e-17; `compare` passes
    exact_scale = |f''|·|x| per coordinate, the size of such terms. The round-off part does not shrink with the
    gradient, which keeps gradients near zero from false alarms; the truncation part never involves the exact
    gradient, so a wrong gradient cannot inflate its own tolerance. SAFETY = 16 leaves a margin of 3 over the
    largest ratio of error to (unscaled) estimate seen on 16 functions × 10,000 points × 2 dtypes
    (tests/test_verify.py).

    Its limit: a wave much shorter than the step (sin x at |x| ≈ 1400 in float32, order 4: h = 32) is aliased alike
    at h and 2h, so the estimate cannot see the error; `check_grad`'s Taylor hint then calls the mismatch
    inconclusive. Use float64 or a step shorter than the wave.

    Args:
      dtype: the dtype the numeric gradient was computed in.
      step: h per coordinate (or a scalar).
      weight_sum: sum |w_k| of the stencil, center weight included.
      f_noise: the error of one evaluation of f near the point (`noise_estimate`).
      g_step, g_double_step: the numeric gradient at steps h and 2h.
      order: p, the stencil's order.
      exact: the gradient being checked.
      rtol, atol: added by the user.
      exact_scale: the size of the terms the exact gradient is computed from (0: |exact| itself).

    Returns:
      An array of tolerances (float64), broadcast from the arguments.

    Example:
      >>> bool(tolerance("float64", 1e-5, 1.0, 1e-15, 2.0, 2.0, 2, 3.0) < 1e-8)
      True
    """
    eps = float(jnp.finfo(dtype).eps)
    step, f_noise, exact, g_step, g_double_step, exact_scale = (
        np.asarray(a, np.float64) for a in (step, f_noise, exact, g_step, g_double_step, exact_scale)
    )
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN points and vanished steps are reported, not warned
        estimate = error_estimate(step, weight_sum, f_noise, g_step, g_double_step, order)
        rounding = ROUNDING * eps * np.maximum(np.abs(exact), np.nan_to_num(exact_scale))
        return SAFETY * (estimate + rounding) + atol + rtol * np.abs(exact)


def norm(a, axis=None, *, mean: bool = False):
    """The 2-norm of `a` along `axis` (None: all of it), or with `mean` its root mean square, computed on a / max|a|:
    neither overflows where the values near the dtype's largest (1e170² in float64) nor underflows to 0 near its
    smallest, as sqrt(sum(a²)) does (numpy's and jax.numpy's `norm` alike). inf where a value is, NaN where one is.
    NumPy in, NumPy out; JAX arrays and tracers in, JAX out.

    Example:
      >>> round(float(norm(np.array([3e200, 4e200]))) / 1e200, 12)  # np.linalg.norm: inf
      5.0
    """
    xp = _xp(a)
    with np.errstate(invalid="ignore", over="ignore"):
        magnitude = xp.abs(xp.asarray(a))
        scale = xp.max(magnitude, axis=axis, keepdims=True, initial=0)  # 0 for no values: their norm is 0
        scale = xp.where((scale > 0) & (scale < xp.inf), scale, 1)  # 0, inf, NaN: their own sums say it
        squares = (magnitude / scale) ** 2
        total = xp.mean(squares, axis=axis, keepdims=True) if mean else xp.sum(squares, axis=axis, keepdims=True)
        result = scale * xp.sqrt(total)
    return result.reshape(()) if axis is None else xp.squeeze(result, axis=axis)


def relative_error(numeric, exact, axis=-1):
    """‖numeric − exact‖ / ‖exact‖ along `axis` (the coordinates): 0 where the two are equal (also when both are
    0), inf where only the exact gradient is 0, NaN where a value is NaN. NumPy in, float64 NumPy out; JAX arrays and
    tracers in, JAX out.

    Example:
      >>> relative_error([[3.0, 4.0], [0.0, 0.0]], [[3.0, 4.5], [0.0, 0.0]]).round(3)
      array([0.092, 0.   ])
    """
    if _xp(numeric, exact) is np:
        numeric, exact = np.asarray(numeric, np.float64), np.asarray(exact, np.float64)
        xp = np
    else:
        xp = jnp
    difference = norm(numeric - exact, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return xp.where(difference == 0, 0.0, difference / norm(exact, axis=axis))
