"""Error estimates of a finite-difference gradient, from the data: f's noise, the truncation, and a status.

One place for these rules: `grad(..., with_error=True)` reports them and the verification layer's tolerance is
built on them.
"""

from __future__ import annotations

import enum

import jax.numpy as jnp
import numpy as np

from ._stencils import finite_difference_weights

ROUNDING = 2.0
"""Roundings of |f| assumed at least in one evaluation of f (a few operations, each rounding by eps/2)."""
SMOOTHNESS_RATIO = 3.0
"""Second differences at 2h and h have ratio 4 for a smooth f, 2 at a kink, 1 at a jump: below this is not smooth."""
SIGNIFICANT = 20.0
"""A second difference counts when it exceeds this many times its own noise."""


class Status(enum.IntEnum):
    """Whether a point's error estimate can be trusted (`grad(..., with_error=True)` returns one per point)."""

    OK = 0
    """The estimate is trustworthy."""
    NONFINITE = 1
    """The point, a value of f on its stencil or the gradient is NaN or infinite."""
    NOT_SMOOTH = 2
    """f is not smooth at the step's scale: the second difference does not shrink like h² as h shrinks (a kink, a
    jump, or a wave shorter than the step). Central stencils only."""
    IMPRECISE = 3
    """The error estimate is larger than the gradient itself (e.g. near a stationary point): its relative error
    is unknown."""


def _xp(*arrays):
    return np if all(isinstance(a, (np.ndarray, np.generic, float, int)) for a in arrays) else jnp


def noise_positions_derivative(positions) -> int:
    """The order of the difference `noise_estimate` takes over `positions`: the highest odd one for a symmetric set
    (2m + 1 points: order 2m − 1), else the highest one (order len − 1)."""
    symmetric = set(positions) == {-k for k in positions}
    return len(positions) - 2 if symmetric and len(positions) >= 3 else len(positions) - 1


def noise_estimate(values, positions, dtype):
    """The error of one evaluation of f, from f at equally spaced points along each line (one column per line).

    A difference of order m cancels every polynomial of degree < m, so what remains of sum_k c_k f(x + k h) is
    rounding noise (plus h^m·f^(m), which only makes the estimate safer); for independent errors of size σ its size
    is σ·‖c‖₂. This is the idea of Moré & Wild's ECnoise with one sample per line. On a symmetric set of points the
    difference is the highest odd one: its weights are antisymmetric, so it also cancels the even part of f around x,
    and a kink at x itself (|x|, max(x, 0)) does not pass for noise. The lines of one point are pooled (root mean
    square), and the result is never below ROUNDING·eps·|f|, the rounding of the values themselves. It catches what
    |f| alone misses: f summing terms that cancel, or an f computed through large intermediate values.

    Args:
      values: (len(positions), lines) array of f values, row k at offset positions[k].
      positions: the offsets, in units of the step.
      dtype: the dtype f was evaluated in.

    Returns:
      (lines,) the noise per line: max(ROUNDING·eps·max_k |f_k|, pooled estimate).
    """
    weights = finite_difference_weights(positions, derivative=noise_positions_derivative(positions))
    weights = jnp.asarray(weights, values.dtype)
    per_line = jnp.abs(weights @ values) / jnp.linalg.norm(weights)
    pooled = jnp.sqrt(jnp.mean(per_line**2))
    floor = ROUNDING * float(jnp.finfo(dtype).eps) * jnp.max(jnp.abs(values), axis=0)
    return jnp.maximum(floor, pooled)


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
    """
    xp = _xp(step, f_noise, g_step, g_double_step)
    return f_noise * weight_sum / step + xp.abs(g_step - g_double_step) / (2**order - 1)


def status(x, values, gradient, error, second_h=None, second_2h=None, second_noise=None):
    """One point's `Status` (the most severe reason wins).

    Args:
      x, values, gradient, error: the flat point, f on its stencil, the gradient and its error estimate.
      second_h, second_2h: the second differences f(x+h) − 2f(x) + f(x−h) and at 2h per coordinate, when the stencil
        has them (central ones), with `second_noise` the noise of second_2h.
    """
    finite = jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(values)) & jnp.all(jnp.isfinite(gradient))
    code = jnp.where(jnp.linalg.norm(error) > jnp.linalg.norm(gradient), Status.IMPRECISE, Status.OK)
    if second_h is not None:
        significant = jnp.abs(second_2h) > SIGNIFICANT * second_noise
        kinked = significant & (jnp.abs(second_2h) < SMOOTHNESS_RATIO * jnp.abs(second_h))
        code = jnp.where(jnp.any(kinked), Status.NOT_SMOOTH, code)
    return jnp.where(finite, code, Status.NONFINITE).astype(jnp.int8)
