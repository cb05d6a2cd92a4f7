"""Step rules: how far each stencil point lies from x. The only place eps**exponent is taken.

A step rule is a small frozen object and a pytree: its numbers (an absolute step, a relative factor) are leaves, so a
new value reuses the compiled program, and its kind is the tree structure, so a new rule compiles its own. `step=` of
every transformation accepts None (the `DefaultStep`), a positive scalar or an array like the input (an `Absolute`
step), or a rule object.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


def round_to_power_of_two(h):
    """The power of two nearest to h (in log scale), for finite positive normal h; other values pass through.

    A power-of-two step is exactly representable, multiplying and dividing by it is exact, and x ± h is exact far
    more often; for the notes' f = x0² + x1² it makes every central difference exact, e.g. grad at (3, 4) is exactly
    (6, 8) in float32 and float64. Computed with bit operations (clear the mantissa of h·√2), which cost one multiply
    and one AND, and are exact.
    """
    info = jnp.finfo(h.dtype)
    int_dtype = {32: jnp.int32, 64: jnp.int64}[info.bits]
    keep_sign_and_exponent = ~((1 << info.nmant) - 1)
    bits = lax.bitcast_convert_type(h * math.sqrt(2), int_dtype)
    power = lax.bitcast_convert_type(bits & keep_sign_and_exponent, h.dtype)
    return jnp.where(jnp.isfinite(h) & (h >= info.smallest_normal), power, h)


def representable_step(x, h):
    """(x + h) - x: the step the dtype actually takes from x, so that the difference divides by the true step."""
    return (x + h) - x


def default_factor(dtype, exponent: float) -> float:
    """eps^exponent of `dtype`: the default step of a coordinate with |x| ≤ 1, before rounding to a power of two."""
    return float(jnp.finfo(dtype).eps) ** exponent


def default_step(x, order: int = 2, *, exponent: float | None = None, representable: bool = True):
    """The default step of a stencil of order p: eps^(1/(p+1)) · max(|x|, 1), per coordinate.

    eps^(1/(p+1)) balances the truncation error (∝ h^p) against the round-off error (∝ eps/h) for a function whose
    derivatives are of the size of its values: the total error is then ≈ eps^(p/(p+1)), e.g. 2e-5 in float32 and
    4e-11 in float64 for central order 2 (the notes' fixed h = 1e-4 gives 7.7e-4 in float32 on Rosenbrock). The factor
    max(|x|, 1) keeps x + h resolvable for large |x|. The step is then rounded to the nearest power of two and made
    exactly representable, h = (x + h) - x, so the stencil's points are exactly x + k h. The complex step passes
    exponent=2 (h = eps²·max(|x|, 1)) and representable=False: its step is imaginary and never added to x.

    Args:
      x: a float array (the point, already in its working dtype).
      order: the order p of the stencil.
      exponent: eps's exponent, if not 1/(p+1).
      representable: make x + h exact (real steps).

    Returns:
      An array like x: the step of each coordinate. Non-finite x gives a non-finite step.

    Example:
      >>> import jax.numpy as jnp
      >>> print(default_step(jnp.array([0.0, 3.0, 100.0], jnp.float32), 2))  # eps^(1/3) ≈ 4.9e-3
      [0.00390625 0.015625   0.5       ]
    """
    x = jnp.asarray(x)
    return scaled_step(x, default_factor(x.dtype, 1.0 / (order + 1) if exponent is None else exponent), representable)


def scaled_step(x, factor: float, representable: bool = True):
    """factor·max(|x|, 1) per coordinate, rounded to the nearest power of two, and made representable (x + h exact):
    `default_step`'s rule for any factor (step="auto"'s long step: 1/2)."""
    h = round_to_power_of_two((factor * jnp.maximum(jnp.abs(x), 1)).astype(x.dtype))
    return representable_step(x, h) if representable else h


def check_step(step, name: str = "step"):
    """Validate a user step that is known on the host: every entry positive and finite.

    A step that is a tracer (computed under `jax.jit`) cannot be checked here; a zero or negative one then shows as
    a non-finite gradient.

    Raises:
      ValueError: naming `step`, the bad value and the fix.
    """
    leaves = jax.tree_util.tree_leaves(step)
    if not leaves:
        raise ValueError(f"`{name}` is an empty pytree; pass a positive scalar or None for the default step.")
    for leaf in leaves:
        if isinstance(leaf, jax.core.Tracer):
            continue
        values = np.asarray(leaf)
        if not (jnp.issubdtype(values.dtype, jnp.floating) or jnp.issubdtype(values.dtype, jnp.integer)):
            raise TypeError(f"`{name}` must be real numbers, got dtype {values.dtype}.")
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            example = values.reshape(-1)[np.argmax(bad.reshape(-1))].item()  # a Python number prints plainly
            raise ValueError(
                f"`{name}` must be positive and finite, got {example!r}. Pass a positive step, e.g. {name}=1e-3, "
                f"or {name}=None for the default eps^(1/(p+1))·max(|x|, 1)."
            )


class StepRule:
    """The base of step rules. A rule gives the step of every coordinate of a point (`steps`) and the step t along
    a direction (`along`), from eps's exponent that the scheme asks for (1/(p+1) for a real stencil of order p)."""

    reports_vanished = False
    """Whether a step that rounds away (x + h == x) is the user's to fix, and so raises (absolute steps)."""
    adaptive = False
    """Whether the steps are chosen from f's own values (`AutoStep`): `steps` then gives the scout step."""

    def leaf_steps(self, leaf, exponent: float):  # pragma: no cover - abstract
        """The step of every coordinate of one array leaf, in its dtype, before it is made representable."""
        raise NotImplementedError

    def steps(self, x, exponent: float, representable: bool = True, reach: int = 1):
        """The step of every coordinate, as a pytree like `x` (leaves in their working dtypes). Real steps are made
        exactly representable, h = (x + h) − x, and kept small enough that x ± reach·h, the farthest stencil point,
        stays finite (near the largest float a step would otherwise overflow to inf); imaginary ones (the complex
        step) are taken as they are."""
        return jax.tree_util.tree_map(
            lambda leaf: self._finish(leaf, self.leaf_steps(leaf, exponent), representable, reach), x
        )

    @staticmethod
    def _finish(leaf, h, representable: bool, reach: int = 1):
        h = jnp.broadcast_to(jnp.asarray(h, leaf.dtype), leaf.shape)
        if not representable:
            return h
        room = (jnp.finfo(leaf.dtype).max - jnp.abs(leaf)) / reach  # x ± reach·h stays below the largest float
        return representable_step(leaf, jnp.where(h > room, room, h))

    def along(self, flat_x, exponent: float, direction_scale=1.0):  # pragma: no cover - abstract
        """The step t along a direction v of max-norm `direction_scale` from the flat point `flat_x`."""
        raise NotImplementedError

    def check(self, dtypes, reach: int) -> None:
        """Raise, before anything is traced, where this rule's own numbers cannot work in `dtypes` (the working
        dtypes of the input) for a stencil reaching `reach` steps. Nothing to check for computed steps."""


def _pytree_rule(cls):
    """Register a frozen dataclass rule as a pytree whose leaves are its fields, and whose tree structure names its
    class: a rule is an argument of the compiled programs, and jit's cache finds a program by that structure.

    Not `jax.tree_util.register_dataclass`: with it (jax 0.10.2) the structures of two classes with as many fields
    compare equal while their hashes differ, so a call with `AutoStep()` found, whenever the two hashes met in the
    cache's table, the program compiled for `DefaultStep()` (and `Relative` the one for `Absolute`): the fixed step's
    numbers, silently (tests/test_steps.py)."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    jax.tree_util.register_pytree_node(
        cls, lambda rule: (tuple(getattr(rule, name) for name in names), None), lambda _, leaves: cls(*leaves)
    )
    return cls


@_pytree_rule
@dataclasses.dataclass(frozen=True)
class DefaultStep(StepRule):
    """eps^e · max(|x_i|, 1) per coordinate, rounded to the nearest power of two, made representable; e is the
    scheme's exponent (1/(p+1) for a real stencil of order p, 2 for the complex step). See `default_step`.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> print(jg.grad(lambda x: x[0] ** 2 + x[1] ** 2, step=jg.DefaultStep())(jnp.array([3.0, 4.0])))
      [6. 8.]
    """

    def leaf_steps(self, leaf, exponent: float):
        return default_step(leaf, exponent=exponent, representable=False)

    def along(self, flat_x, exponent: float, direction_scale=1.0):
        scale = jnp.maximum(jnp.max(jnp.abs(flat_x), initial=1.0), 1.0) / direction_scale
        return round_to_power_of_two(jnp.asarray(default_factor(flat_x.dtype, exponent) * scale, flat_x.dtype))


@_pytree_rule
@dataclasses.dataclass(frozen=True)
class Absolute(StepRule):
    """A step given in the input's units: a positive scalar for every coordinate, or an array (pytree) shaped like
    the input, one step per coordinate. Real steps are made representable, h = (x + h) − x.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> float(jg.grad(jnp.sin, step=jg.Absolute(1e-3))(jnp.array(0.0)))  # (sin h − sin(−h)) / 2h
      0.9999998...
    """

    value: object

    reports_vanished = True

    def steps(self, x, exponent: float, representable: bool = True, reach: int = 1):
        if not isinstance(self.value, (list, tuple, dict)) and np.ndim(self.value) == 0:
            return super().steps(x, exponent, representable, reach)
        x_def, step_def = jax.tree_util.tree_structure(x), jax.tree_util.tree_structure(self.value)
        if x_def != step_def:
            raise ValueError(f"`step` must be a scalar or have the structure of the input {x_def}, got {step_def}.")

        def leaf_step(leaf, h):
            h = jnp.asarray(h, leaf.dtype)
            if h.shape not in ((), leaf.shape):
                raise ValueError(
                    f"`step` has shape {h.shape} where the input has shape {leaf.shape}; pass a scalar step or an "
                    f"array of shape {leaf.shape}."
                )
            return self._finish(leaf, h, representable, reach)

        return jax.tree_util.tree_map(leaf_step, x, self.value)

    def check(self, dtypes, reach: int) -> None:
        """A step the input's dtype cannot hold (1e300 in float32) or whose stencil overflows is the user's to fix."""
        for leaf in jax.tree_util.tree_leaves(self.value):
            if isinstance(leaf, jax.core.Tracer):
                continue
            largest = float(np.max(np.asarray(leaf, np.float64)))
            for dtype in dtypes:
                if largest * reach >= float(jnp.finfo(dtype).max):
                    raise ValueError(
                        f"`step`={largest!r} overflows {dtype}: the stencil reaches x ± {reach}·step. Pass a step "
                        f"below {float(jnp.finfo(dtype).max) / reach:.3g}, or step=None for the default."
                    )

    def leaf_steps(self, leaf, exponent: float):
        return self.value

    def along(self, flat_x, exponent: float, direction_scale=1.0):
        if np.ndim(self.value) != 0:
            raise ValueError(f"`step` along a direction is one scalar t, got shape {np.shape(self.value)}.")
        return jnp.asarray(self.value, flat_x.dtype)


@_pytree_rule
@dataclasses.dataclass(frozen=True)
class Relative(StepRule):
    """factor · max(|x_i|, 1) per coordinate, made representable (not rounded): the steps of a step study, whose
    factor is an array leaf, so one compiled program sweeps them all.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> print(jg.grad(lambda x: x[0] ** 2 + x[1] ** 2, step=jg.Relative(2.0**-10))(jnp.array([3.0, 4.0])))
      [6. 8.]
    """

    factor: object

    reports_vanished = True

    def leaf_steps(self, leaf, exponent: float):
        return self.factor * jnp.maximum(jnp.abs(leaf), 1)

    def along(self, flat_x, exponent: float, direction_scale=1.0):
        scale = jnp.maximum(jnp.max(jnp.abs(flat_x), initial=1.0), 1.0) / direction_scale
        return jnp.asarray(self.factor * scale, flat_x.dtype)


@_pytree_rule
@dataclasses.dataclass(frozen=True)
class AutoStep(StepRule):
    """`step="auto"`: each coordinate's step chosen from f's own behaviour at each point, in the same compiled program.

    A scout line of 4 evaluations per coordinate at central order 2's fixed step B measures f''' and f'''' (hence
    f's own length scale L along the coordinate), and the step becomes eps^e·L, never above the method's fixed step;
    where the line leaves f's domain or crosses a kink the step shrinks (relative to |x| near 0). The gradient of a
    central stencil then takes the long step max(|x|, 1)/2 (or half of it, above order 2) where its derivative there
    agrees with the balanced step's within rounding (a polynomial: no truncation left; not with the error estimate).
    It costs 4·d + 1 evaluations more than the method's own, and above order 2 the stencil once more and its points
    at half the long step (central 4: 10·d + 1 more in all; `jg.num_evaluations`). A pytree mixing float32 and float64
    leaves takes the fixed steps, each leaf's own (the procedure reads f's rounding at one precision per point). The
    whole procedure, its reasons and its limits: `jaxgrad._auto`.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> x = jnp.array(0.01, jnp.float32)  # the fixed step, 2^-8, is 39% of x: 5.6% off
      >>> fixed, auto = jg.grad(jnp.log)(x), jg.grad(jnp.log, step="auto")(x)
      >>> bool(abs(fixed * x - 1) < 0.01), bool(abs(auto * x - 1) < 1e-3)  # relative errors (exact: 1/x)
      (False, True)
    """

    adaptive = True

    def leaf_steps(self, leaf, exponent: float):
        return default_step(leaf, exponent=exponent, representable=False)

    def along(self, flat_x, exponent: float, direction_scale=1.0):
        return DefaultStep().along(flat_x, exponent, direction_scale)


def own_step(step) -> bool:
    """Whether a `step=` argument is the caller's own (a number, an array, a rule), not None (the fixed default) or
    "auto": such a step is for every coordinate, and random directions take none (`compare`)."""
    return not (step is None or (isinstance(step, str) and step == "auto"))


def as_step_rule(step) -> StepRule:
    """The rule behind a `step=` argument: None is the `DefaultStep`, "auto" the `AutoStep`, a rule is itself,
    numbers are `Absolute`.

    Raises:
      ValueError, TypeError: a step that is not positive and finite, or of an unknown kind (naming `step`).
    """
    if step is None:
        return DefaultStep()
    if isinstance(step, Absolute):
        check_step(step.value)
    if isinstance(step, Relative):
        check_step(step.factor, "step factor")
    if isinstance(step, StepRule):
        return step
    if isinstance(step, str):
        if step == "auto":
            return AutoStep()
        raise ValueError(
            f"`step`={step!r} is not a step rule; pass None (the default eps^(1/(p+1))·max(|x|, 1)), 'auto' (chosen "
            "from f per coordinate), a positive number, an array shaped like the input, or a rule such as "
            "jg.Relative(1e-3)."
        )
    check_step(step)
    return Absolute(step)


def raise_if_step_vanished(vanished, rule: StepRule) -> None:
    """The user's fix for a step that rounded away (x + step == x) at some coordinate, outside jit, for the rules
    whose steps are the user's own (`reports_vanished`)."""
    if not rule.reports_vanished or isinstance(vanished, jax.core.Tracer) or not bool(jnp.any(vanished)):
        return
    step = rule.value if isinstance(rule, Absolute) else rule
    raise ValueError(
        f"`step`={step!r} is below the resolution of the input's dtype: x + step == x for some coordinate, so the "
        "difference is 0/0. Use a step larger than eps·|x| (jnp.finfo(dtype).eps), or step=None for the default."
    )
