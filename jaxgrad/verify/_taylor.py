"""The Taylor test: a step-free check of a gradient from how the Taylor remainder shrinks."""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .. import _validate as validate
from .._compile import program
from .._evaluate import as_working, hashable, least_precise, mixed_precision
from .._table import format_table
from ._compare import coordinate_names, flat_gradient
from ._verdict import Verdict


@dataclasses.dataclass(frozen=True, eq=False)
class TaylorResult:
    """The Taylor remainder r(t) = |f(x + t v) − f(x) − <g, fl(x + t v) − x>| at halving steps t, and its slope.

    r(t) ≈ ½ t² |vᵀ H v| when g is the gradient (slope 2 on a log-log plot) and ≈ t |<g − ∇f, v>| when it is not
    (slope 1), down to the rounding floor of f. `used` marks the steps the slope was fitted on: the smallest ones whose
    remainder is still well above that floor, where a linear term, if any, dominates. `resolution` is r(t)/t at the
    smallest of them: an error <g − ∇f, v> below it would not bend the slope, so OK means "correct to within
    the resolution" (in float32 that can be a sizable fraction of the gradient).
    """

    slope: float
    steps: np.ndarray
    remainders: np.ndarray
    noise_floor: np.ndarray
    used: np.ndarray
    verdict: Verdict  # OK (the gradient is right along v), MISMATCH (wrong) or INCONCLUSIVE
    reason: str
    resolution: float  # the smallest |<g − ∇f, v>| this test could have seen here

    def __repr__(self) -> str:
        return f"TaylorResult(slope={self.slope:.3f}, verdict={self.verdict.value}, resolution={self.resolution:.3g})"

    @property
    def correct(self) -> bool:
        """Whether the verdict is OK: the gradient is right along v (to the resolution)."""
        return self.verdict is Verdict.OK

    def summary(self) -> str:
        rows = [
            [f"{t:.3e}", f"{r:.3e}", f"{floor:.3e}", "*" if u else ""]
            for t, r, floor, u in zip(self.steps, self.remainders, self.noise_floor, self.used, strict=True)
        ]
        table = format_table(["t", "remainder", "rounding floor", "fitted"], rows)
        return f"{table}\nslope {self.slope:.3f}: {self.verdict} ({self.reason})"


@functools.partial(program, static_argnames=("fun",))
def _taylor_values(x, direction, steps, *, fun):
    flat_x, unravel = ravel_pytree(x)
    moved = flat_x[None] + steps[:, None] * direction[None]
    if mixed_precision(x):  # the points as f gets them: float32 leaves' coordinates rounded to float32
        moved = jax.vmap(lambda row: ravel_pytree(unravel(row))[0])(moved)
    return fun(x), jax.vmap(lambda row: fun(unravel(row)))(moved), moved - flat_x[None]


@functools.partial(program, static_argnames=("fun",))
def _autodiff_gradient(x, *, fun):
    """jax.grad(fun) at x, flat: one compiled program, where an eager call compiled each operation on its own."""
    return flat_gradient(jax.grad(fun), x)


def taylor_test(
    fun,
    x,
    *,
    grad_fn=None,
    direction=None,
    seed: int = 0,
    num_steps: int | None = None,
    window: int = 5,
    margin: float = 10.0,
) -> TaylorResult:
    """Step-free check of a gradient: the Taylor remainder shrinks like t² iff g is the gradient.

    Evaluates r(t) = |f(x + t v) − f(x) − <g, Δ(t)>| with Δ(t) = fl(x + t v) − x the displacement the dtype really
    makes, at t = t0 / 2^k, k = 0, 1, ..., t0 = max(|x|_∞, 1) / 4, down to t ≈ eps·t0. It fits the slope of log r
    against log t on the `window` smallest steps whose remainder exceeds `margin` times the rounding floor
    2·eps·(|f(x)| + |f(x + t v)|): about 2 means g is right, about 1 means g is wrong along v. No finite-difference
    step is chosen, so this tells a wrong gradient from a badly chosen step. In a pytree of float32 and float64 leaves,
    eps is float32's and Δ(t) rounds the float32 leaves' coordinates to float32, as f gets them.

    Args:
      fun: scalar function of one point (array or pytree), traceable by JAX.
      x: the point.
      grad_fn: the gradient to test (None: `jax.grad(fun)`); called once, need not be traceable.
      direction: v, like x (None: a random unit vector from `seed`).
      num_steps: how many halvings (None: enough to reach the dtype's resolution).
      window, margin: the fit (see above).

    Returns:
      A `TaylorResult`: verdict OK for slope ≥ 1.8 (or a remainder that stays at the rounding floor: g is right
      to rounding along v), MISMATCH for slope ≤ 1.2, else INCONCLUSIVE.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> print(jg.taylor_test(jg.functions.rosenbrock, jnp.array([0.5, -1.0, 2.0])).verdict)
      OK
      >>> x = jnp.array([0.5, -1.0, 2.0])
      >>> print(jg.taylor_test(jg.functions.rosenbrock, x, grad_fn=lambda x: 1.01 * x).verdict)
      MISMATCH
    """
    seed = validate.integer("seed", seed, minimum=0)
    num_steps = validate.integer(
        "num_steps", num_steps, minimum=3, none=True, hint=" None reaches the dtype's resolution."
    )
    window = validate.integer("window", window, minimum=3, hint=" The slope is fitted on at least 3 steps.")
    margin = validate.real(
        "margin", margin, minimum=1.0, hint=" It is how far above the rounding floor a remainder counts."
    )
    fun = hashable(fun)  # a static argument of its programs
    x = as_working(x)
    flat_x, _ = ravel_pytree(x)
    dtype = flat_x.dtype
    eps = float(jnp.finfo(least_precise(x)).eps)  # f rounds float32 leaves' parts at float32's eps, even in float64
    g = np.asarray(_autodiff_gradient(x, fun=fun) if grad_fn is None else flat_gradient(grad_fn, x), np.float64)
    if direction is None:
        v = np.random.default_rng(seed).normal(size=flat_x.shape)
        v /= np.linalg.norm(v)
    else:
        if jax.tree_util.tree_structure(direction) != jax.tree_util.tree_structure(x):
            raise ValueError(f"`direction` must have the structure of `x`, {jax.tree_util.tree_structure(x)}.")
        v = np.asarray(ravel_pytree(direction)[0], np.float64)
        if v.shape != flat_x.shape:
            raise ValueError(f"`direction` must have the shape of `x` ({flat_x.size} coordinates), got {v.size}.")
        if not (np.all(np.isfinite(v)) and np.any(v != 0)):
            raise ValueError("`direction` must be finite and not all zero: along v = 0 every gradient looks right.")
    t0 = max(float(np.max(np.abs(np.asarray(flat_x, np.float64)), initial=0.0)), 1.0) / 4
    if num_steps is None:
        num_steps = int(-math.log2(eps)) + 2
    steps = t0 * 2.0 ** -np.arange(num_steps)
    f0, values, displacement = _taylor_values(x, jnp.asarray(v, dtype), jnp.asarray(steps, dtype), fun=fun)
    f0, values, displacement = (np.asarray(a, np.float64) for a in (f0, values, displacement))
    remainders = np.abs(values - f0 - displacement @ g)
    floor = 2 * eps * (abs(f0) + np.abs(values)) + 2 * eps * np.abs(displacement) @ np.abs(g)
    above = remainders > margin * floor
    used = np.zeros(num_steps, bool)
    if above.any():
        last = int(np.flatnonzero(above)[-1])  # the smallest step still above the floor ...
        first = last
        while first > 0 and above[first - 1] and last - first + 1 < window:  # ... and the ones just before it
            first -= 1
        used[first : last + 1] = True
    if used.sum() >= 3:
        slope = float(np.polyfit(np.log2(steps[used]), np.log2(remainders[used]), 1)[0])
        smallest = int(np.flatnonzero(used)[-1])
        resolution = float(remainders[smallest] / steps[smallest])
        if slope >= 1.8:
            verdict, reason = Verdict.OK, "the remainder shrinks like t², as it does for the true gradient"
        elif slope <= 1.2:
            verdict, reason = (
                Verdict.MISMATCH,
                "the remainder shrinks like t: <g, v> differs from the directional derivative",
            )
        else:
            verdict, reason = Verdict.INCONCLUSIVE, "the slope is between 1 and 2"
    elif not above.any():
        slope = math.nan
        resolution = float(np.min(margin * floor / steps))
        verdict, reason = Verdict.OK, "the remainder stays at the rounding floor of f: g is right to rounding along v"
    else:
        slope = math.nan
        resolution = float(np.min(margin * floor / steps))
        verdict, reason = Verdict.INCONCLUSIVE, f"only {int(used.sum())} steps lie above the rounding floor"
    return TaylorResult(slope, steps, remainders, floor, used, verdict, reason, resolution)


def taylor_hint(fun, point, coordinate: int, *, grad_fn=None, name: str | None = None, error: float = math.inf) -> str:
    """One sentence from `taylor_test` along one coordinate: is the gradient wrong there, or the step?

    `error` is the mismatch the numeric check saw; when it is below the Taylor test's resolution, a slope of 2 proves
    nothing and the hint says so.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> from jaxgrad.verify import taylor_hint
      >>> taylor_hint(jg.functions.sphere, jnp.array([1.0, 2.0]), 1, grad_fn=lambda x: x * jnp.array([2.0, 2.2]))
      'Taylor test along x[1] at that point: slope 1.00, the gradient is wrong there (a correct one gives 2).'
    """
    flat, unravel = ravel_pytree(as_working(point))
    axis = unravel(jnp.zeros_like(flat).at[coordinate].set(1))
    result = taylor_test(fun, point, grad_fn=grad_fn, direction=axis)
    if result.verdict is Verdict.MISMATCH:
        hint = "the gradient is wrong there (a correct one gives 2)"
    elif result.verdict is Verdict.OK and error <= result.resolution:
        hint = (
            f"inconclusive: the Taylor test cannot see an error of {error:.3g} here (its resolution in "
            f"{flat.dtype} is {result.resolution:.3g}); run the check in float64"
        )
    elif result.verdict is Verdict.OK:
        hint = "the gradient looks right; the finite-difference step is at fault: try order=4 or another step"
    else:
        hint = "inconclusive: " + result.reason
    name = name or coordinate_names(point)[coordinate]
    return f"Taylor test along {name} at that point: slope {result.slope:.2f}, {hint}."
