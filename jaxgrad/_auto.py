"""`step="auto"`: every coordinate's step chosen from f's own behaviour, inside the same compiled program.

The procedure, a vectorised step rule in the family of Gill–Murray–Saunders–Wright and Curtis–Reid (estimate the
derivative that drives the truncation error from a pilot step, then balance truncation against rounding), with a
guard for domains and kinks:

1. **Scout.** Along every coordinate, f is evaluated on a five-point line at B = eps^(1/3)·max(|x_i|, 1), central
   order 2's fixed step, whatever the method: x + k·B·e_i for k = −2..2 (central stencils), or k = 0..4 (forward)
   and 0..−4 (backward) for one-sided ones. That is 4 evaluations per coordinate, and f(x) once per point.
2. **Read the line.** Its third and fourth differences give f''' and f'''' where they stand out of the rounding noise
   σ = ROUNDING·eps·max|f| (by MEASURABLE times their own noise). The second differences at B and 2B must grow
   like h² (ratio between SMOOTHNESS_RATIO and LARGEST_RATIO) where they are significant; otherwise the line
   crosses a kink, a jump or a wave shorter than B.
3. **Choose.** f's own length scale along the coordinate is L, with f''' ≈ F/L³ and f'''' ≈ F/L⁴ (F = max|f|, the
   smaller L of the two where both show), and the step is (ROUNDING·eps)^e·L: the fixed rule eps^e·max(|x|, 1)
   with the measured L in place of max(|x|, 1). For central order 2 it is (σ/|f'''|)^(1/3), the balance of round-off
   σ/h against truncation f'''h²/6. Where neither derivative shows, L is at least what B could have seen, and that
   bound is used (for central order 2: B itself). Orders p ≥ 6 take half the step (HIGH_ORDER_SHADE). The step is
   never above the method's fixed step.
   Where the line leaves f's domain (a NaN or Inf while f(x) is finite) or is not resolved, the fixed step shrinks
   by min(2^-8, |x_i|, 1/|x_i|): to the other natural scale of x (relative to |x| near 0, as for log x, √x and 1/x,
   and to 1 for large |x|).
4. **Evaluate** the method's own stencil (its error-estimate stencil with `with_error`) at the chosen steps.

Cost per point of d coordinates: the scout's 4·d + 1 evaluations plus the method's own: central order 2 takes 6·d + 1
(the fixed default 2·d), 8·d + 2 with the error estimate (fixed: 4·d + 1); `jg.num_evaluations(d, step="auto")`. The
complex step has no step to choose (its truncation, h²·f'''/6 with h = eps²·max(|x|, 1), is far below rounding): it
takes its default at no extra cost.

When it still fails: a wave the scout line aliases as smooth, values whose noise is far above rounding, a wave of small
amplitude on a large value, which B cannot see in float32 (Ackley: its error with Richardson depended on it until
HIGH_ORDER_SHADE), and polynomials (sphere, Rosenbrock, Styblinski-Tang, Beale, Himmelblau), whose best step is as long
as possible (no truncation of that order) while the rule stays near the balance and below the fixed step: with orders 4
and 6 they come out 11-2,900× above the best single step's median error (Beale with order 4 excepted), at 3e-14 to 8e-13
in float64 and 1e-6 to 1e-5 in float32 (`tests/auto_report.py --points 200`); with order 2 as the fixed step. Seeing
that no truncation is left takes a line at a longer step, 4 more evaluations per coordinate. The chosen steps' error
estimate (`with_error=True`) and its status remain the check. (A domain edge closer than the shrunken step, log1p at
−1 + 1e-8, leaves non-finite stencil values, which the domain repair then replaces: `_evaluate.repaired_gradient`.)
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from ._estimate import unresolved
from ._schemes import unit_rows
from ._steps import default_factor, representable_step, round_to_power_of_two
from .numerics import ROUNDING, finite_difference_weights

MEASURABLE = 4.0
"""The third difference counts as f''' when it exceeds this many times its own rounding noise."""
SHRINK = 2.0**-8
"""The least the step shrinks where the scout line leaves the domain or crosses a kink or an unresolved wave."""
CENTRAL_LINE = (-2, -1, 0, 1, 2)
ONE_SIDED_LINE = (0, 1, 2, 3, 4)
HIGH_ORDER_SHADE = 0.5
"""Orders p ≥ 6 take half the balanced step. Their error grows as (h/h*)^p above the balance h* and only as h*/h
below it, and h* is known to a factor of about 2 (L from the third and fourth differences), so the smaller side is
the safe one. Measured on 100 points, Richardson 6 on Ackley went from 41× to 1.4× the best single step's median
error (float32) and from 106× to 1.8× (float64); logsumexp from 1.8× to 2.9× (`tests/auto_report.py`). Where neither
the third nor the fourth difference shows, L is only a lower bound, yet the shade stays: without it there, polynomials'
error halved (Richardson 6 on sphere, float32: 65× -> 32× the best) but Ackley's grew from 1.9× to 19× in float64
(200 points)."""
SCOUT_EXPONENT = 1 / 3
"""The scout line's step is central order 2's fixed step, eps^(1/3)·max(|x|, 1), whatever the method: small enough
to be below most functions' length scale, large enough for f''' to stand out of the rounding where L is shorter."""
SCOUT_EVALUATIONS = 4
"""Evaluations per coordinate of the scout line (f(x) once per point besides)."""


def _third_weights(positions):
    return np.asarray(finite_difference_weights(positions, derivative=3))


_W3_CENTRAL = _third_weights(CENTRAL_LINE)
_W3_FORWARD = _third_weights(ONE_SIDED_LINE)
_W4 = np.asarray([1.0, -4.0, 6.0, -4.0, 1.0])  # the fourth difference, in position order, either line


def scout_offsets(sides):
    """The scout line's four offsets per coordinate, (4, d), for `sides` (d,) = 0 central, +1 forward, −1 backward."""
    sides = jnp.asarray(sides)
    central = jnp.asarray([k for k in CENTRAL_LINE if k], jnp.float32)[:, None]
    one_sided = jnp.asarray([k for k in ONE_SIDED_LINE if k], jnp.float32)[:, None] * sides[None, :]
    return jnp.where(sides[None, :] == 0, central, one_sided)


def scout_rows(x, b, sides, coords=None):
    """The scout line of the coordinates `coords` (None: all; see `_schemes.axis_points`) of the flat point x: rows
    x + k·b_i·e_i, (4·m, d), row k·m + j for the j-th coordinate i of `coords`; `sides` are those coordinates' own."""
    basis, b = unit_rows(x, b, coords)
    delta = scout_offsets(sides).astype(x.dtype) * b[None, :]  # (4, m)
    return (x[None, None, :] + delta[:, :, None] * basis[None]).reshape(4 * basis.shape[0], x.shape[0])


def _line(values, f0, sides):
    """f on each coordinate's line in position order, (5, d, *out), from the scout rows' values (4·d, *out)."""
    d = sides.shape[0]
    v = values.reshape(4, d, *values.shape[1:])
    center = jnp.broadcast_to(f0, v.shape[1:])[None]
    central = jnp.concatenate([v[:2], center, v[2:]])
    one_sided = jnp.concatenate([center, v])
    mask = (sides == 0).reshape(1, d, *([1] * (values.ndim - 1)))
    return jnp.where(mask, central, one_sided)


def choose(values, f0, x, b, cap, sides, exponent: float):
    """The chosen step of every coordinate from f on the scout lines (see the module docstring).

    Args:
      values: f at `scout_rows(x, b, sides)`, (4·d, *out) (real parts).
      f0: f(x), (*out).
      x: the flat point (d,); b: the scout step B of each coordinate (d,); cap: the method's own fixed step (d,),
        the largest step chosen; sides: (d,) 0, +1 or −1.
      exponent: e, the method's eps exponent (1/(p+1) for order p).

    Returns:
      (d,) steps, powers of two where possible, made representable, never above `cap`.
    """
    line = _line(values, f0, sides)  # (5, d, *out)
    dtype = x.dtype
    eps = float(jnp.finfo(dtype).eps)
    extra = (1,) * (line.ndim - 2)
    side = sides.reshape(-1, *extra)  # (d, 1...) against (d, *out)
    w3 = jnp.where(side[None] == 0, jnp.asarray(_W3_CENTRAL).reshape(5, 1, *extra),
                   side[None] * jnp.asarray(_W3_FORWARD).reshape(5, 1, *extra))  # fmt: skip
    t3 = jnp.sum(w3 * line, axis=0)
    t4 = jnp.tensordot(jnp.asarray(_W4, line.dtype), line, axes=1)
    size = jnp.max(jnp.abs(line), axis=0)
    sigma = ROUNDING * eps * size
    norm3 = jnp.where(side == 0, float(np.linalg.norm(_W3_CENTRAL)), float(np.linalg.norm(_W3_FORWARD)))
    finite = jnp.all(jnp.isfinite(line), axis=0)
    measured = finite & (jnp.abs(t3) > MEASURABLE * sigma * norm3)  # f''' stands out of the rounding
    seen = finite & (jnp.abs(t4) > MEASURABLE * sigma * math.sqrt(70.0))  # and f''''

    # second differences at B and 2B (central: around x; one-sided: from x), which grow ×4 for a smooth f
    at_h = jnp.where(side == 0, line[1] - 2 * line[2] + line[3], line[0] - 2 * line[1] + line[2])
    at_2h = line[0] - 2 * line[2] + line[4]  # the same positions in either order
    unsmooth = unresolved(at_h, at_2h, math.sqrt(6.0) * sigma)

    reduce = tuple(range(1, line.ndim - 1))  # several outputs (a Jacobian): the smallest step any of them needs
    b_ = b.reshape(-1, *extra).astype(line.dtype)
    third = jnp.abs(t3) / b_**3  # |f'''|: the weights give f''' ≈ sum w_k f(x + k B) / B³
    fourth = jnp.abs(t4) / b_**4
    # f's length scale L from f''' ≈ F / L³ and f'''' ≈ F / L⁴ (derivatives of f's own size), where they show
    length = jnp.minimum(jnp.where(measured, jnp.cbrt(size / jnp.where(measured, third, 1.0)), jnp.inf),
                         jnp.where(seen, jnp.sqrt(jnp.sqrt(size / jnp.where(seen, fourth, 1.0))), jnp.inf))  # fmt: skip
    # where neither shows, f''' is below what B would see: L ≥ B·(1/(MEASURABLE·ROUNDING·eps·‖w₃‖))^(1/3), which the
    # method's step may use (for central order 2 that is B itself), up to its fixed step
    unseen = b_ * (1 / (MEASURABLE * ROUNDING * eps * norm3)) ** (1 / 3)
    length = jnp.where(measured | seen, length, unseen)
    fitted = jnp.maximum(
        ROUNDING**exponent * default_factor(dtype, exponent) * length, jnp.where(measured | seen, 0, b_)
    )
    fitted = fitted * (HIGH_ORDER_SHADE if round(1 / exponent) - 1 >= 6 else 1.0)
    fitted = jnp.min(fitted, axis=reduce) if reduce else fitted
    broken = jnp.any(~finite | unsmooth, axis=reduce) if reduce else ~finite | unsmooth

    ax = jnp.abs(x)  # B assumed the scale max(|x|, 1); the other natural scale is min(|x|, 1)
    other = jnp.where(ax > 0, jnp.minimum(ax, 1 / jnp.maximum(ax, jnp.finfo(dtype).tiny)), 1.0)
    shrunk = cap * jnp.minimum(other, SHRINK)
    h = jnp.where(broken, shrunk, jnp.minimum(fitted.astype(dtype), cap))
    h = round_to_power_of_two(h.astype(dtype))
    return representable_step(x, jnp.minimum(h, cap))


def scout_evaluations(dim: int) -> int:
    """Evaluations of `fun` per point that the scout adds to the method's own: 4·d + 1."""
    return SCOUT_EVALUATIONS * dim + 1
