"""`step="auto"`: every coordinate's step chosen from f's own behaviour, inside the same compiled program.

The procedure, a vectorised step rule in the family of Gill–Murray–Saunders–Wright and Curtis–Reid (estimate the
derivative that drives the truncation error from a pilot step, then balance truncation against rounding), with a
guard for domains and kinks:

1. **Scout.** Along every coordinate, f is evaluated on a five-point line at B = eps^(1/3)·max(|x_i|, 1), central
   order 2's fixed step, whatever the method: x + k·B·e_i for k = −2..2 (central stencils), or k = 0..4 (forward)
   and 0..−4 (backward) for one-sided ones. That is 4 evaluations per coordinate, and f(x) once per point.
2. **Read the line.** Its third and fourth differences give f''' and f'''' where they stand out of the rounding noise
   σ = ROUNDING·eps·max|f|, or f's granularity where its values lie on a coarse grid (`coarseness`: f that
   subtracts nearly equal values), by MEASURABLE times their own noise. The second differences at B and 2B must grow
   like h² (ratio between SMOOTHNESS_RATIO and LARGEST_RATIO) where they are significant; otherwise the line
   crosses a kink, a jump or a wave shorter than B.
3. **Choose.** f's own length scale along the coordinate is L, with f''' ≈ F/L³ and f'''' ≈ F/L⁴ (F = max|f|, the
   smaller L of the two where both show), and the step is (ROUNDING·eps)^e·L: the fixed rule eps^e·max(|x|, 1)
   with the measured L in place of max(|x|, 1) (and σ/max|f| in place of ROUNDING·eps on a coarse grid). For
   central order 2 it is (σ/|f'''|)^(1/3), the balance of round-off σ/h against truncation f'''h²/6. Where neither
   derivative shows, L is at least what B could have seen, and that bound is used (for central order 2: B itself).
   Orders p ≥ 6 take half the step (HIGH_ORDER_SHADE). The step is never above the method's fixed step (only the
   long step of 4 is).
   Where the line leaves f's domain (a NaN or Inf while f(x) is finite) or is not resolved, the fixed step shrinks
   by min(2^-8, |x_i|, 1/|x_i|): to the other natural scale of x (relative to |x| near 0, as for log x, √x and 1/x,
   and to 1 for large |x|).
4. **Climb** (the gradient of central stencils: central of any order, Richardson). A balanced step assumes truncation is
   left to balance; a polynomial of degree ≤ p has none, and its best step is as long as possible. So each coordinate
   also tries the long step H = LONG·max(|x_i|, 1): the method's own evaluation (5) takes it on trial, and it stays
   where the derivative there agrees with a reference at the balanced step within their rounding (`settle`, `agrees`):
   the scout line's own central difference at B for central order 2 (where B is its chosen step), else the method at its
   chosen step (K·d more evaluations for K offsets). Above order 2 the method's own evaluation takes its stencil at H
   and at H/2 together (`trial_points`; new points x ± H/2 alone for central 4 and Richardson 6), and H must also agree
   with H/2 within both roundings: their difference is (1 − 2^−p) of H's truncation, which the reference's comparison
   lets through up to the reference's rounding bound. H/2 needs the reference's agreement and its own truncation, the
   gap over 2^p − 1, within the same roundings; where both pass, the one that rounds less is kept (a quartic's values at
   x ± 2H dwarf f near x). Each rounding bound takes at least NOISE standard deviations of f's noise measured on the
   scout lines (`pooled_noise`): a sum of large terms that cancel rounds far above eps·|f|. Where it disagrees or is not
   finite, the reference and its step are returned; where the line was broken, nothing is tried. Agreement bounds the
   damage: the long step's error is within the reference's own plus the tolerance. The error estimate (`with_error`)
   does not climb: its estimate from H and 2H is loose where f is polynomial only up to H (log-sum-exp in float32: 69 of
   10,000 points of `jaxgrad compare` became unresolved), and the stencil at H cost the main job 22% more time.
5. **Evaluate** the method's own stencil (its error-estimate stencil with `with_error`) at the chosen steps.

Cost per point of d coordinates (`jg.num_evaluations(d, step="auto")`, `scout_evaluations`): the scout's 4·d + 1
evaluations, the method's own, and for central orders above 2 the reference, K·d, and the half step's new points:
central order 2 takes 6·d + 1 (the fixed step 2·d), central order 4 14·d + 1 (4·d), Richardson 6 18·d + 1 (6·d),
central 6 20·d + 1 (6·d); with the error estimate 8·d + 2 (fixed: 4·d + 1). The complex step has no step to choose (its
truncation, h²·f'''/6 with h = eps²·max(|x|, 1), is far below rounding): it takes its default at no extra cost.

On the built-ins (`tests/auto_report.py --points 200`, and the same 200-point samples drawn with seeds 1 and 7) the
median relative error is within 2.7× of the best a single step per point can do, for central 2, central 4 and Richardson
6, in float32 and float64 (polynomials were 11-2,900× above it before the climb, sphere with central 2 284× in float32
and 195,000× in float64; 3.2× before the half step's check, and Styblinski-Tang 256× on seed 1's sample before the
rounding bounds took f's measured noise). When it still fails: a wave the scout line aliases as smooth, values whose
noise is far above rounding, a wave of small amplitude on a large value, which B cannot see in float32 (Ackley: its
error with Richardson depended on it until HIGH_ORDER_SHADE), and functions almost polynomial at the long step with
central order 2, which has no half step's check: agreement within the reference's rounding bound, which is above its
actual error, lets a long step through whose truncation is below that bound (log-sum-exp in float32: 1.4× the best
single step's error). That yardstick is a per-point oracle, the least of one noisy error per step tried: the best factor
common to all points is 1.1-2.1× above it (central 4: sphere in float64 1.3×, Styblinski-Tang in float64 1.45×; Beale in
float32 with Richardson 6 2.1×). The climb stays away from references that are not resolved (a saturated sigmoid) and
from long steps that would not round clearly less (next to a minimum): `agrees`. The chosen steps' error estimate
(`with_error=True`) and its status remain the check. (A domain edge closer than the shrunken step, log1p at −1 + 1e-8,
leaves non-finite stencil values, which the domain repair then replaces: `_evaluate.repaired_gradient`.)
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._estimate import unresolved
from ._schemes import Central, Richardson, axis_points, combine_blocks, unit_rows
from ._steps import default_factor, representable_step, round_to_power_of_two, scaled_step
from .numerics import ROUNDING, finite_difference_weights, granularity, hidden_granularity, norm

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
LONG = 0.5
"""The long step H = LONG·max(|x|, 1) that a central scheme's coordinate takes instead of the balanced step where the
method's own derivative at H agrees with a reference at the balanced step within their rounding (`agrees`): no
truncation is left at H, and the round-off falls by H/h (a polynomial of degree ≤ p; sphere, Rosenbrock)."""
ACCEPT = 1.0
"""`agrees`' tolerance, in units of the rounding of the reference and of the long step's derivative."""
CLEARER = 3.0
"""How many times less the long step's derivative must round than the reference's for `agrees` to take it (the
two estimates are rough: within a factor 2 of each other, the long step was 31 times less accurate once)."""


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
    """The chosen step of every coordinate from f on the scout lines (see the module docstring): `choice`'s."""
    return choice(values, f0, x, b, cap, sides, exponent)[0]


def choice(values, f0, x, b, cap, sides, exponent: float):
    """The chosen step of every coordinate from f on the scout lines (see the module docstring), and where the line
    left f's domain or was not smooth (those coordinates took the shrunken step).

    Args:
      values: f at `scout_rows(x, b, sides)`, (4·d, *out) (real parts).
      f0: f(x), (*out).
      x: the flat point (d,); b: the scout step B of each coordinate (d,); cap: the method's own fixed step (d,),
        the largest step chosen; sides: (d,) 0, +1 or −1.
      exponent: e, the method's eps exponent (1/(p+1) for order p).

    Returns:
      (d,) steps, powers of two where possible, made representable, never above `cap`; (d,) bool, broken lines.
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
    coarse = coarseness(line, x, size, sides)  # 1 unless f's values lie on a coarse grid (1 - sigmoid(x) in its tail)
    sigma = ROUNDING * eps * size * coarse
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
    unseen = b_ * (1 / (MEASURABLE * ROUNDING * eps * norm3)) ** (1 / 3) / jnp.cbrt(coarse)
    length = jnp.where(measured | seen, length, unseen)
    fitted = jnp.maximum(
        ROUNDING**exponent * default_factor(dtype, exponent) * coarse**exponent * length,
        jnp.where(measured | seen, 0, b_),
    )
    fitted = fitted * (HIGH_ORDER_SHADE if round(1 / exponent) - 1 >= 6 else 1.0)
    fitted = jnp.min(fitted, axis=reduce) if reduce else fitted
    broken = jnp.any(~finite | unsmooth, axis=reduce) if reduce else ~finite | unsmooth

    ax = jnp.abs(x)  # B assumed the scale max(|x|, 1); the other natural scale is min(|x|, 1)
    other = jnp.where(ax > 0, jnp.minimum(ax, 1 / jnp.maximum(ax, jnp.finfo(dtype).tiny)), 1.0)
    shrunk = cap * jnp.minimum(other, SHRINK)
    h = jnp.where(broken, shrunk, jnp.minimum(fitted.astype(dtype), cap))
    h = round_to_power_of_two(h.astype(dtype))
    return representable_step(x, jnp.minimum(h, cap)), broken


def coarseness(line, x, size, sides):
    """How many times f's rounding noise on the scout lines exceeds ROUNDING·eps·|f| because its values lie on a
    coarse grid (`numerics.granularity`, per output: 1 - sigmoid(x) for x in (5, 15) in float32 rounds on ulp(1)'s
    grid, 10⁴ times eps·|f|), or their differences from f(x) do (`numerics.hidden_granularity`: a grid the fine bits
    of f(x) hide, exp(x) − 1 − x), else exactly 1. Read as f''' by the third difference, that noise made the step 10³
    times too fine and the gradient several times its own size wrong (`tests/test_hardening.py`).

    Args:
      line: f on the scout lines, (5, d, *out); x: the coordinates the lines go through (d,); size: max|f| per line
      and output, (d, *out); sides: (d,) 0 central, ±1 one-sided (`_line`'s position orders: f(x) is row 2 or 0).
    """
    center = jnp.where((sides == 0).reshape(-1, *([1] * (line.ndim - 2))), line[2], line[0])
    moved = line - center[None]  # f(x) itself gives a row of zeros, a multiple of any grid

    def by_output(rows):  # each output's rows of every line together: (rows · d, outputs)
        return rows.reshape(rows.shape[0] * rows.shape[1], -1)

    def grid_of(values, differences):
        return jnp.maximum(granularity(values, x), hidden_granularity(differences, x))

    grid = jax.vmap(grid_of, in_axes=1)(by_output(line), by_output(moved)).reshape(1, *line.shape[2:])
    floor = ROUNDING * float(jnp.finfo(line.dtype).eps) * size
    coarser = (grid > floor) & (floor > 0)  # a line where f is 0 throughout has nothing to read (grid / 0 was NaN)
    return jnp.where(coarser, grid / jnp.where(coarser, floor, 1), 1).astype(line.dtype)


def climbs(scheme) -> bool:
    """Whether `step="auto"` tries the long step for this scheme's coordinates: central stencils (central of any
    order, Richardson), whose truncation a reference at another step can bound."""
    return isinstance(scheme, (Central, Richardson))


def long_steps(x):
    """The long step H = LONG·max(|x_i|, 1) of each coordinate, a power of two, made representable."""
    return scaled_step(x, LONG)


def scout_reference(values, f0, b, sides):
    """Central order 2 at the scout step B from the scout line (no evaluation of its own), (d, *out), and the line's
    values at x − 2B, x − B, x + B, x + 2B, (4·d, *out), laid out as `axis_points` lays out rows, whose weights are
    SCOUT_REFERENCE_WEIGHTS: the reference of central order 2, whose balanced step is B where no third difference
    shows."""
    line = _line(values, f0, sides)
    scale = b.reshape(-1, *([1] * (line.ndim - 2))).astype(line.dtype)
    return (line[3] - line[1]) / (2 * scale), jnp.concatenate([line[0], line[1], line[3], line[4]])


SCOUT_REFERENCE_WEIGHTS = (0.0, -0.5, 0.5, 0.0)
"""`scout_reference`'s weights on its four values: the outer two count in `rounding`'s bound (max|f| on the line;
with the inner two alone, 5% of the coordinates of sum x_i² in 64 dimensions stayed at the balanced step in
float32) and not in its spread."""


NOISE = 3.0
"""How many standard deviations of f's measured noise (`pooled_noise`) a value's rounding bound takes at least: where
f is a sum of large terms that cancel (Styblinski-Tang: terms of 400 for f of 16), its rounding is far above eps·|f|.
Measured on 200 points of it (float64, central 4): with eps·|f| alone the reference's actual error exceeded its bound
and the long step was refused on about half the points, 256× the best single step's median error (seed 1; 2.7× with
seed 41, `tests/auto_report.py`'s)."""


def line_noise(values, f0, sides):
    """The noise of f seen on each coordinate's scout line, (d, *out): |fourth difference| / √70, a sample of its
    standard deviation where the fourth derivative's part, f''''·B⁴, is below it (B: central order 2's scout step)."""
    line = _line(values, f0, sides)
    return jnp.abs(jnp.tensordot(jnp.asarray(_W4, line.dtype), line, axes=1)) / math.sqrt(70.0)


def pooled_noise(noise):
    """The point's noise of f from its lines' (`line_noise`, d lines): their median / 0.6745 (the median of
    |N(0, 1)|), the same for every coordinate; the few lines whose fourth difference is f''''·B⁴ rather than noise do
    not move it."""
    return jnp.broadcast_to(jnp.nanmedian(noise, axis=0) / 0.6745, noise.shape)


def rounding(values, weights, h, noise=None):
    """Two measures of the rounding of a stencil's derivative from its values (K·m, *out, laid out as `axis_points`
    lays out rows), each (m, *out): (eps·max|f|·‖w‖₂ / h, eps·sqrt(sum_k (w_k·f_k)²) / h), independent errors of
    eps·|f| in the values, the first as if every value were the largest, the second each weighed by its own weight.
    `agrees` takes the first as its tolerance and asks the second to be smaller at the long step. With `noise`
    (`pooled_noise`, (m, *out)) the first takes max(eps·max|f|, NOISE·noise) in place of eps·max|f|.

    Measured on the built-ins (tests/auto_report.py, 200 points). As the tolerance: the bound
    ROUNDING·eps·|f|·sum|w| / h, 4 to 6 times as large, let log-sum-exp's flat coordinates in float32 take long steps
    16× less accurate than the reference (central 2: 1.4× -> 9.8× the best single step's error); 0.75 times the
    first rejected Styblinski-Tang's quartic coordinates (float64, central 4: 3× -> 338×), and so did the second
    (Richardson 6: 2.7× -> 68×); the noise measured on the scout line in place of eps·|f| (3 standard deviations, before
    the half step's check) moved the misses to Beale (Richardson 6: 3.4-3.9×); the larger of the two, the noise pooled
    over the point's lines, with the half step's check, keeps every row within 2.7× (seeds 1, 7 and 41). As the
    comparison: the first made Beale's long steps, whose far points are large with small weights, look rounder than
    its balanced ones (Richardson 6: 2.8× -> 7.2×)."""
    m = h.shape[0]
    blocks = values.reshape(len(weights), m, *values.shape[1:])
    w = jnp.asarray(weights, values.dtype).reshape(-1, *([1] * (blocks.ndim - 1)))
    eps = float(jnp.finfo(values.dtype).eps)
    step = h.reshape(-1, *([1] * (blocks.ndim - 2))).astype(values.dtype)
    size = jnp.max(jnp.abs(blocks), axis=0) * eps
    size = size if noise is None else jnp.maximum(size, NOISE * noise)
    return size * float(np.linalg.norm(weights)) / step, norm(w * blocks, axis=0) * eps / step


def agrees(g_long, long_rounding, g_ref, ref_rounding):
    """Per coordinate (m,), for every output: the reference is resolved (|g_ref| above its rounding bound), the long
    step's derivative is finite, rounds at least CLEARER times less than the reference (`rounding`'s second
    measure), and is within ACCEPT·(both roundings' first measure) of it.

    Resolved: sigmoid at 20 in float32 rounds to 1 all along the scout line, so the reference is exactly 0 with a
    bound of 2e-5, and the long step's truncation (4e-7, 190 times sigmoid's derivative there) passed within it.
    Less rounding, by a margin: a polynomial whose values at x ± H are far larger than near x (x² at x = 1e-8,
    H = 1/2: 0.25 against 1e-16) agreed within the long step's own rounding and was 67,000 times less accurate than
    the reference (4-380 times for sum x_i² at |x| ≤ 1e-3); with the two measures within a factor 2 of each other
    (sum x_i² at 1e-3 in float64) the long step was still 31 times less accurate on one coordinate. A margin of 8
    turned away float32's higher orders, whose balanced steps are long already (Beale, Richardson 6: 2.8× -> 5.9×
    the best single step's error); 3 keeps them (3.1×)."""
    (long_bound, long_spread), (ref_bound, ref_spread) = long_rounding, ref_rounding
    close = jnp.isfinite(g_long) & (jnp.abs(g_long - g_ref) <= ACCEPT * (ref_bound + long_bound))
    return _each(close & (CLEARER * long_spread <= ref_spread) & (jnp.abs(g_ref) > ref_bound))


class Fallback(NamedTuple):
    """What a gradient evaluated at the long step falls back to where it does not agree (`settle`): the reference
    derivative `g` at its step `h`, its `rounding`, and which coordinates tried the long step (`candidate`)."""

    g: Any
    h: Any
    rounding: Any
    candidate: Any
    noise: Any = None  # (m, *out): f's rounding noise at the point, the same for every coordinate (`pooled_noise`)


def halves(scheme) -> bool:
    """Whether the long step's trial also evaluates the scheme at half the long step (`trial_points`): central
    stencils above order 2, whose reference at the balanced step is the scheme itself (`scout_referenced`: not)."""
    return climbs(scheme) and not scout_referenced(scheme)


def trial_offsets(scheme) -> tuple[int, ...]:
    """The offsets, in units of s = h/2, of the scheme's stencil at s and at 2s together (its error estimate's,
    0 aside): central order 4's ±1, ±2, ±4, Richardson 6's ±1, ±2, ±4, ±8."""
    return tuple(k for k in scheme.estimate_offsets if k)


def trial_points(scheme, x, h, coords=None, fallback=None):
    """The rows of the gradient's own evaluation at the chosen steps `h` (laid out as `axis_points` lays them out):
    the scheme's stencil, or where the long step is on trial above order 2 (`halves`, a `fallback` given) its stencil
    at H and at H/2 together: `trial_offsets` at s = H/2 for the coordinates that try it, at s = h for the others
    (whose stencil at h is among them). `h` and the fallback are the whole point's, `coords` the block's."""
    if fallback is None or not halves(scheme):
        return scheme.points(x, h) if coords is None else scheme.points(x, h, coords)
    return axis_points(x, jnp.where(fallback.candidate, h / 2, h), trial_offsets(scheme), coords)


def settle(values, h, scheme, fallback: Fallback, combine=None):
    """(g, h): the scheme's derivative from `values` (`trial_points`) at the steps `h`, kept where it agrees with
    the fallback's reference or the coordinate did not try the long step, else the reference and its step.

    Above order 2 (`halves`) the stencil at H/2 is there too. H is kept only where it also agrees with H/2 within both
    roundings (`rounding`'s first measure): they differ by (1 − 2^−p) of H's truncation, which the reference's
    comparison lets through up to the reference's rounding bound, a worst case above its actual error. H/2, whose
    truncation is that gap over 2^p − 1, is kept where this is within the same roundings and it agrees with the
    reference (on the reference's agreement alone, cos at 1e-8 with Richardson 6 took it with an error 3× the peers'
    tolerance, against 1.8× at the balanced step); where both are kept, the one whose values round less (`rounding`'s
    second measure; a quartic's values at x ± 2H dwarf f near x). Measured on the built-ins (`tests/auto_report.py`, 200
    points), against the best single step per point: log-sum-exp in float32 went from 3.2× to 1.9× (central 4) and from
    2.5× to 1.9× (Richardson 6), Beale with Richardson 6 from 3.1× to 1.8× (float32) and 2.9× to 2.0× (float64). H/2 on
    its own matters for a Jacobian, whose outputs share a step: a quartic output next to sin(x) kept only the balanced
    step when H failed for sin (float32, central 8: at one point 20× less accurate; the quartic row's median error 9×
    its own gradient's, 3× now). `combine` (default `scheme.combine`) reads the scheme's own stencil at order 2."""
    extra = (1,) * (values.ndim - 1)
    noise = fallback.noise
    if noise is not None:  # the reference's bound too takes f's measured noise
        ref_weights = SCOUT_REFERENCE_WEIGHTS if scout_referenced(scheme) else scheme.weights
        floor = NOISE * noise * float(np.linalg.norm(ref_weights)) / fallback.h.reshape(-1, *extra).astype(noise.dtype)
        fallback = fallback._replace(rounding=(jnp.maximum(fallback.rounding[0], floor), fallback.rounding[1]))
    if not halves(scheme):
        g = (combine or scheme.combine)(values, h)
        back = fallback.candidate & ~agrees(g, rounding(values, scheme.weights, h, noise), fallback.g,
                                            fallback.rounding)  # fmt: skip
        return jnp.where(back.reshape(-1, *extra), fallback.g, g), jnp.where(back, fallback.h, h)
    offsets, candidate = trial_offsets(scheme), fallback.candidate
    s = jnp.where(candidate, h / 2, h)
    weights, half_weights = scheme.weights_at(offsets, 2), scheme.weights_at(offsets, 1)
    g_long, g_half = (combine_blocks(values, s, w, 0.0, offsets) for w in (weights, half_weights))  # g_half: at h
    long_rounding, half_rounding = (rounding(values, w, s, noise) for w in (weights, half_weights))
    gap, both = jnp.abs(g_long - g_half), ACCEPT * (long_rounding[0] + half_rounding[0])
    long = candidate & _each(gap <= both) & agrees(g_long, long_rounding, fallback.g, fallback.rounding)
    # H/2's truncation is gap / (2^p − 1): within the same roundings
    half = _each(gap <= (2.0**scheme.order - 1) * both)
    half = candidate & half & agrees(g_half, half_rounding, fallback.g, fallback.rounding)
    half = half & ~(long & _each(long_rounding[1] <= half_rounding[1]))
    long = long & ~half
    back = candidate & ~long & ~half
    g = jnp.where(long.reshape(-1, *extra), g_long, jnp.where(back.reshape(-1, *extra), fallback.g, g_half))
    return g, jnp.where(long, 2 * s, jnp.where(back, fallback.h, s))


def _each(condition):
    """Per coordinate (m,): `condition` (m, *out) for every output."""
    return jnp.all(condition, axis=tuple(range(1, condition.ndim))) if condition.ndim > 1 else condition


def scout_evaluations(dim: int, scheme=None, with_error: bool = False) -> int:
    """Evaluations of `fun` per point that `step="auto"` adds to the method's own: the scout's 4·d + 1, and for the
    gradient (not `with_error`) of a central scheme of K offsets above order 2 (`halves`) the reference at the
    balanced step, K·d, and the stencil at half the long step beside the method's own (`trial_points`: its T
    offsets in place of K), (T − K)·d; K·d + (T − K)·d = T·d in all (central order 2's reference is on the scout
    line). Central order 2: 4·d + 1 (6·d + 1 in all, 3× the fixed step's 2·d); order 4: 10·d + 1 (14·d + 1 in all);
    Richardson 6: 12·d + 1 (18·d + 1)."""
    extra = len(trial_offsets(scheme)) * dim if scheme is not None and halves(scheme) and not with_error else 0
    return SCOUT_EVALUATIONS * dim + 1 + extra


def scout_referenced(scheme) -> bool:
    """Whether the scheme's reference for the long step is central order 2 on the scout line (it is the scheme)."""
    return isinstance(scheme, Central) and scheme.order == 2
