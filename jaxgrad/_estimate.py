"""Per-point error estimates and their status: what `with_error=True` returns and the verification layer trusts."""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

import jax.numpy as jnp

from .numerics import norm

SMOOTHNESS_RATIO = 3.0
"""Second differences at 2h and h have ratio 4 for a smooth f, 2 at a kink, 1 at a jump: below this is not smooth."""
SIGNIFICANT = 20.0
"""A second difference counts when it exceeds this many times its own noise."""
RESOLUTION = 0.25
"""A third difference this many times the second, or more, says f is not resolved at the step's scale (`straddled`)."""
LARGEST_RATIO = 17.0
"""Second differences at 2h and h have ratio 4 for a smooth f (16 where f'' = 0): above this, f is not resolved."""


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
    NOT_ANALYTIC = 4
    """The complex step disagrees with a real central difference along a direction: f is not complex-safe (it
    uses softplus, abs, max, comparisons or `where` on the real part), so Im f(x + ih)/h is not its derivative; its
    error is reported as inf."""


class Estimate(NamedTuple):
    """A numerical gradient with its estimated error (`grad(..., with_error=True)`); a pytree, so it crosses jit.

    Attributes:
      value: the gradient, like the input.
      error: the estimated absolute error of each coordinate, like the input (`jaxgrad.numerics.error_estimate`).
      status: an int8 `jg.Status` code per point: 0 OK, 1 NONFINITE, 2 NOT_SMOOTH, 3 IMPRECISE, 4 NOT_ANALYTIC.
    """

    value: Any
    error: Any
    status: Any


class Parts(NamedTuple):
    """Everything one point's error estimate is made of, flat (one entry per coordinate): what the verification
    layer's tolerance and `Estimate` are built from."""

    h: Any  # (d,) the step of each coordinate
    g: Any  # (d,) the gradient at step h
    g_double: Any  # (d,) the gradient at step 2h
    f_noise: Any  # (d,) the noise of one evaluation of f along each coordinate's line
    error: Any  # (d,) the estimated error of g
    status: Any  # () the point's Status code, int8
    vanished: Any  # () bool: a real step vanished (x + h == x) at a finite coordinate
    curvature: Any  # (d,) |f''| along each coordinate, from the same stencil (0 for the complex step)


class SecondDifferences(NamedTuple):
    """f(x+h) − 2f(x) + f(x−h) and the same at 2h, per coordinate, with the noise of the one at 2h: the smoothness
    test of central stencils."""

    at_h: Any
    at_2h: Any
    noise: Any


def line_second_differences(line, positions, f_noise) -> SecondDifferences | None:
    """The smoothness test's second differences from f on a line through x (`line[i]` at offset `positions[i]`):
    f(x+h) − 2f(x) + f(x−h) and the same at 2h, with the noise of the one at 2h (√6·f_noise). None for a line without
    0, ±1 and ±2 (one-sided stencils).

    Its limit: a wave aliased alike at every offset (period 2h, at its zero crossing) leaves data a smooth f could give;
    only a step shorter than the wave (step="auto") sees it. Pairs further out (2h and 4h) were measured and dropped:
    on the built-ins and the zoo (tests/auto_report.py, 200 points) they halved Richardson 6's silent coordinates in
    float32 at its fixed step (86 -> 37) but flagged 8% more points whose error was within the estimate."""
    index = {k: i for i, k in enumerate(positions)}
    if not {-2, -1, 0, 1, 2} <= index.keys():
        return None

    def at(k):
        return line[index[k]] - 2 * line[index[0]] + line[index[-k]]

    return SecondDifferences(at(1), at(2), jnp.sqrt(6.0) * f_noise)


def straddled(line, positions, second: SecondDifferences, h):
    """The error a kink inside the stencil may cause, where f's values on a line through x do not look resolved at the
    step's scale, else 0: |f(x+h) − 2f(x) + f(x−h)| / (2h). relu with its kink δ < h from x gives a central difference
    off by (h − δ)/(2h) times the jump of the slope, which is exactly this; the Richardson estimate |g(h) − g(2h)|/3
    saw up to 6 times less and the smoothness test, for which the kink's odd part reads as noise, flagged it only for
    δ < h/5. Not resolved: the second differences do not grow ×4 from h to 2h as a smooth f's do (the kink at
    δ < h/2), or the third difference is at least RESOLUTION times the second (a smooth f's ratio is about h·f'''/f'',
    small at a step that resolves f: the kink at δ ≥ h/2). A line of pure noise may read as either; its bound is then
    of the size of the round-off part.

    Args:
      line, positions: f on the line (`line[i]` at offset `positions[i]`, which include 0, ±1 and ±2).
      second: its `line_second_differences`; h: the step.

    Example:
      >>> import jax.numpy as jnp
      >>> h, d = 2.0**-8, 2.0**-9  # relu(x) at x = d = h/2 from its kink: the central difference is 3/4, not 1
      >>> relu, positions = jnp.array([max(d + k * h, 0.0) for k in (-2, -1, 0, 1, 2)]), (-2, -1, 0, 1, 2)
      >>> float(straddled(relu, positions, line_second_differences(relu, positions, 0.0), h))
      0.25
    """
    f = dict(zip(positions, line, strict=True))
    third = (f[2] - 2 * f[1] + 2 * f[-1] - f[-2]) / 2
    at_h = jnp.abs(second.at_h)
    unresolved = _unlike_smooth(second.at_h, second.at_2h) | (jnp.abs(third) >= RESOLUTION * at_h)
    return jnp.where(unresolved, at_h / (2 * h), 0)


def _precision(error, gradient):
    """IMPRECISE where the whole error estimate exceeds the whole gradient, else OK."""
    return jnp.where(norm(error) > norm(gradient), Status.IMPRECISE, Status.OK)


def unresolved(at_h, at_2h, noise):
    """Where f is not smooth at the step's scale, from its second differences at h and 2h along a line (`noise`: that
    of the one at 2h): significant, yet their ratio is not the ×4 of a smooth f (×16 where f'' = 0) but below
    SMOOTHNESS_RATIO (a kink: 2, a jump: 1) or above LARGEST_RATIO (a wave shorter than the step, aliased)."""
    return (jnp.abs(at_2h) > SIGNIFICANT * noise) & _unlike_smooth(at_h, at_2h)


def not_smooth(second: SecondDifferences):
    """Whether a point is NOT_SMOOTH: f is `unresolved` along any of its lines (coordinates or directions)."""
    return jnp.any(unresolved(*second))


def error_noise(second: SecondDifferences | None, odd, both):
    """The noise of f the error estimate takes: `noise_estimate`'s, of both its differences (`both`), unless the point
    is `not_smooth`, where its odd difference alone (`odd`, as `second`'s noise): the even one reads a kink at x as
    noise (relu at its kink: a sixth of the slope's jump per step), and the point would read as in tolerance,
    unresolved, where it is 'not smooth here'."""
    return both if second is None else jnp.where(not_smooth(second), odd, both)


def _unlike_smooth(at_h, at_2h):
    """Where the second differences at h and 2h are not in a smooth f's ratio: below SMOOTHNESS_RATIO or above
    LARGEST_RATIO."""
    ratio = jnp.abs(at_2h) / jnp.maximum(jnp.abs(at_h), jnp.finfo(jnp.result_type(at_h)).tiny)
    return (ratio < SMOOTHNESS_RATIO) | (ratio > LARGEST_RATIO)


def status(x, values, gradient, error, second: SecondDifferences | None = None):
    """One point's `Status` code (the most severe reason wins: NONFINITE, then NOT_SMOOTH, then IMPRECISE).

    Args:
      x, values, gradient, error: the flat point, f on its stencil, the gradient and its error estimate.
      second: the second differences, when the stencil has them (central ones).
    """
    finite = jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(values)) & jnp.all(jnp.isfinite(gradient))
    code = _precision(error, gradient)
    if second is not None:
        code = jnp.where(not_smooth(second), Status.NOT_SMOOTH, code)
    return jnp.where(finite, code, Status.NONFINITE).astype(jnp.int8)


def merge_status(codes, error, gradient):
    """One status from the statuses of parts of a point's coordinates (a scheme that splits them): NONFINITE or
    NOT_SMOOTH where any part says so, else IMPRECISE where the whole error is larger than the whole gradient."""
    codes = jnp.stack(codes)
    code = _precision(error, gradient)
    code = jnp.where(jnp.any(codes == Status.NOT_SMOOTH), Status.NOT_SMOOTH, code)
    return jnp.where(jnp.any(codes == Status.NONFINITE), Status.NONFINITE, code).astype(jnp.int8)
