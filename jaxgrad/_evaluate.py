"""One point: its working dtype, the steps, the stencil rows, one vmap of `fun` over them, and the combination.

Everything here is traced for a single point; batching, chunking and sharding map it over many.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap
from jax.extend.core import jaxpr_as_fun
from jax.flatten_util import ravel_pytree

from . import _auto
from ._estimate import Estimate, Parts, Status, merge_status, status
from ._filter import is_filtered, is_other_leaf
from ._schemes import Central, ComplexStep, FiniteDifference, Forward, Scheme, axis_points
from ._steps import StepRule, default_factor, representable_step, round_to_power_of_two
from .numerics import ROUNDING, SAFETY, error_estimate, finite_difference_weights, norm


def working_dtype(dtype) -> np.dtype:
    """The float dtype a leaf of `dtype` is differentiated in (see `_working_dtype`)."""
    return _working_dtype(np.dtype(dtype), jax.config.jax_enable_x64)


@functools.lru_cache(maxsize=64)
def _working_dtype(dtype: np.dtype, x64: bool) -> np.dtype:
    """The float dtype a leaf of `dtype` is differentiated in.

    Floats of 32 bits and more keep their dtype (float32 stays float32). Integers and booleans are promoted to the
    default float dtype (float64 with `jax_enable_x64`, else float32), because x + h must not be truncated. float16
    and bfloat16 are computed in float32: their eps^(1/3) ≈ 0.1 step is too coarse for a useful derivative.
    """
    if dtype == np.longdouble and np.finfo(dtype).bits > 64:
        raise TypeError(
            f"Inputs of dtype {dtype} are not supported by JAX; pass float64 (x.astype(np.float64)) with "
            "jax_enable_x64, or float32."
        )
    if jnp.issubdtype(dtype, jnp.floating):
        return np.dtype(jnp.float32) if jnp.finfo(dtype).bits < 32 else dtype
    if not (jnp.issubdtype(dtype, jnp.integer) or dtype == np.bool_ or jnp.issubdtype(dtype, jnp.complexfloating)):
        raise TypeError(f"Inputs must be real numbers, got dtype {dtype}; pass arrays of floats.")
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(
            f"Inputs must be real, got dtype {dtype}: the gradient of a real function of complex input "
            "is not defined by these stencils. Pass the real and imaginary parts as separate arrays."
        )
    return np.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))


@functools.lru_cache(maxsize=64)
def _canonical_working(dtype: np.dtype, x64: bool) -> np.dtype:
    """`_working_dtype` as JAX holds it in this mode (canonicalized), computed once per dtype and mode."""
    return np.dtype(jax.dtypes.canonicalize_dtype(_working_dtype(np.dtype(dtype), x64)))


def as_working_leaf(leaf):
    """`leaf` as a JAX array in its working dtype (`working_dtype`)."""
    leaf = jnp.asarray(leaf)
    return leaf.astype(working_dtype(leaf.dtype))


def leaves_of(x) -> list:
    """The leaves of the pytree `x`; a JAX array is its own one leaf, with no pytree walk (the usual batch: a few µs
    a call)."""
    return [x] if isinstance(x, jax.Array) else jax.tree_util.tree_leaves(x)


def as_is_dtypes() -> tuple[np.dtype, np.dtype]:
    """The float dtypes computed, and returned, as they are in this x64 mode: float32, and float64 with x64."""
    return np.dtype(np.float32), np.dtype(np.float64) if jax.config.jax_enable_x64 else np.dtype(np.float32)


def working_dtypes(x) -> set:
    """The working dtypes of the leaves of the pytree `x` (a leaf that is no array or number: `refuse_other_leaves`)."""
    refuse_other_leaves(x)  # up front: a string such as "float32" would pass for a dtype
    dtypes = {getattr(leaf, "dtype", None) or np.result_type(leaf) for leaf in leaves_of(x)}
    return {_canonical_working(np.dtype(dtype), jax.config.jax_enable_x64) for dtype in dtypes}


def as_working(x):
    """Every leaf of the pytree `x` in its working dtype (a leaf that is no array or number: `refuse_other_leaves`)."""
    try:
        return jax.tree_util.tree_map(as_working_leaf, x)
    except TypeError:
        refuse_other_leaves(x)
        raise


def refuse_other_leaves(x) -> None:
    """Raise, in words that say where such pytrees go, where `x` holds a leaf that is no array or number (a function,
    a string: an Equinox model's, a config's)."""
    if not is_filtered(x):
        return
    path, leaf = next((p, leaf) for p, leaf in jax.tree_util.tree_flatten_with_path(x)[0] if is_other_leaf(leaf))
    raise TypeError(
        f"the input holds a {type(leaf).__name__} at x{jax.tree_util.keystr(path)} "
        f"({getattr(leaf, '__name__', None) or repr(leaf)[:60]}), not an array or a "
        "number: jacobian, hessian and jvp perturb every leaf. jg.grad, batch_grad, compare and check_grad take such "
        "pytrees (an Equinox model) and differentiate their float arrays only, as eqx.filter_grad; here, pass the "
        "float arrays alone, e.g. eqx.filter(x, eqx.is_inexact_array), with `fun` closing over the rest."
    )


def mixed_precision(x) -> bool:
    """Whether the pytree x's leaves have more than one dtype (float32 and float64 working leaves): its flat form
    (ravel_pytree) is float64, while f computes each leaf's coordinates in that leaf's own precision."""
    return len({np.dtype(leaf.dtype) for leaf in jax.tree_util.tree_leaves(x)}) > 1


def least_precise(x) -> np.dtype:
    """The dtype with the largest eps among the pytree x's leaves: the precision at which a step along several of
    its coordinates at once (a direction) rounds."""
    return max((np.dtype(leaf.dtype) for leaf in jax.tree_util.tree_leaves(x)), key=lambda d: float(jnp.finfo(d).eps))


def adapts(rule: StepRule, scheme: Scheme, x) -> bool:
    """Whether `step="auto"`'s procedure chooses the steps at the working pytree x: an adaptive rule, a real scheme,
    and leaves of one dtype. A point that mixes float32 and float64 takes the fixed steps: the procedure reads f's
    rounding at one precision per point, and at float64's it read the rounding of float32 coordinates as f's third
    derivative and kept long steps 1% off, with status OK (and jvp 32% off; from the review)."""
    return rule.adaptive and not scheme.imaginary and not mixed_precision(x)


def direction_step(rule: StepRule, x, flat_x, exponent: float, direction_scale=1.0):
    """The rule's step t along a direction from the flat form `flat_x` of the working pytree x, at its least
    precise leaf's eps: a direction moves every coordinate, and a float32 leaf's in a float64 pytree round at
    float32's (at float64's eps, jvp's error there was 6e-4 relative, against 4e-6 for float32 alone)."""
    return rule.along(flat_x.astype(least_precise(x)), exponent, direction_scale).astype(flat_x.dtype)


def warn_if_low_precision(x, stacklevel: int = 3) -> None:
    """A UserWarning when x has float16/bfloat16 leaves (computed, and returned, in float32), or float64 leaves while
    `jax_enable_x64` is off (computed, and returned, in float32: JAX has no float64 then)."""
    leaves, usual = leaves_of(x), as_is_dtypes()
    if all(getattr(leaf, "dtype", None) in usual for leaf in leaves):
        return
    wide = any(getattr(leaf, "dtype", None) == np.float64 for leaf in leaves)
    if wide and not jax.config.jax_enable_x64:
        warnings.warn(
            "float64 input is computed in float32 because jax_enable_x64 is off (the gradient comes back in "
            "float32); enable it with jax.config.update('jax_enable_x64', True) or JAX_ENABLE_X64=1.",
            stacklevel=stacklevel,
        )
    low = {
        str(np.dtype(leaf.dtype))
        for leaf in leaves
        if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating) and jnp.finfo(leaf.dtype).bits < 32
    }
    if low:
        warnings.warn(
            f"jaxgrad computes {', '.join(sorted(low))} input in float32 (its own eps^(1/3) step of ~0.1 would make "
            "the difference meaningless) and returns the gradient in float32.",
            stacklevel=stacklevel,
        )


def is_empty(x) -> bool:
    """Whether the pytree `x` has no coordinates at all."""
    return sum(jnp.size(leaf) for leaf in jax.tree_util.tree_leaves(x)) == 0


def flat_steps(x, rule: StepRule, scheme: Scheme):
    """The step of every coordinate of the working pytree `x`, flat (the order of `ravel_pytree`)."""
    return ravel_pytree(rule.steps(x, scheme.step_exponent, representable=not scheme.imaginary, reach=scheme.reach))[0]


# ------------------------------------------------------------------------------------------------- calling fun
class ByIdentity:
    """A callable that cannot be hashed (an object defining __eq__ without __hash__), hashed by identity, so it can
    be a static argument of a compiled program: the same object reuses its program, another one compiles its own."""

    def __init__(self, fun):
        self.fun = fun
        functools.update_wrapper(self, fun, updated=())

    def __call__(self, *args, **kwargs):
        return self.fun(*args, **kwargs)

    def __hash__(self) -> int:
        return id(self.fun)

    def __eq__(self, other) -> bool:
        return isinstance(other, ByIdentity) and other.fun is self.fun


def hashable(fun):
    """`fun` itself when it can be hashed (a static argument of jit), else `ByIdentity(fun)`; a clear TypeError for
    something that cannot be called."""
    if not callable(fun):
        raise TypeError(f"`fun` must be callable, got {type(fun).__name__}.")
    try:
        hash(fun)
    except TypeError:
        return ByIdentity(fun)
    return fun


NOT_TRACEABLE = (
    jax.errors.ConcretizationTypeError,  # float(x), int(x), Python `if` on a value (TracerBoolConversionError)
    jax.errors.TracerArrayConversionError,  # np.<function> on a traced array
    jax.errors.TracerIntegerConversionError,
)
"""The errors JAX raises when `fun` converts a traced value to NumPy or Python."""


def not_traceable(error) -> TypeError:
    """The TypeError that explains a NOT_TRACEABLE error of `fun` and names the fix (traceable=False)."""
    return TypeError(
        f"`fun` is not traceable by JAX ({type(error).__name__}): it converts a traced value to NumPy or Python "
        "(np.<function>(x), float(x), a Python `if` on a value). Pass traceable=False to evaluate it on the host "
        "with NumPy (batched when fun accepts a batch of points, else point by point; command line: --numpy), or "
        "write it with jax.numpy."
    )


def _note(error: Exception, text: str) -> None:
    if hasattr(error, "add_note"):  # Python 3.11+
        error.add_note(text)


def apply(fun, unravel, rows, scheme: Scheme):
    """`fun` at every row (one vmap), read by the scheme (the complex step: the imaginary parts, checked to exist)."""
    try:
        values = jax.vmap(lambda row: fun(unravel(row)))(rows)
    except NOT_TRACEABLE as error:
        raise not_traceable(error) from error
    except Exception as error:
        if scheme.imaginary:
            raise TypeError(
                f"`fun` cannot take complex input, which method='complex' needs ({type(error).__name__}: {error}). "
                "Use method='central' or 'richardson', or write fun with complex-safe operations."
            ) from error
        _note(error, f"(raised by `fun` while jaxgrad evaluated it at {rows.shape[0]} stencil points)")
        raise
    check_output_dtype(values, scheme)
    if scheme.imaginary and not jnp.iscomplexobj(values):
        raise ValueError(
            "method='complex' needs `fun` to keep the imaginary part of its input, but it returned a real value "
            "(jnp.abs, .real, comparisons or a cast drop it): its gradient would come out 0. Use method='central'."
        )
    return scheme.read(values)


def trace_and_replay(fun, *args):
    """`fun` traced at `args` (jax.make_jaxpr: values, tracers' shapes or ShapeDtypeStructs) -> (the closed jaxpr, a
    function that replays it: called with arguments of the same structure, shapes and dtypes, it binds the trace's
    primitives (so its values are those of fun itself) and returns fun's output structure). The one way jaxgrad
    traces the user's code once and evaluates it several times: `traced_once`, `_batching.trace_point`."""
    closed, shape = jax.make_jaxpr(fun, return_shape=True)(*args)
    tree, run = jax.tree_util.tree_structure(shape), jaxpr_as_fun(closed)

    def replay(*arguments):
        return jax.tree_util.tree_unflatten(tree, run(*jax.tree_util.tree_leaves(arguments)))

    return closed, replay


def traced_once(fun):
    """`fun` traced at the first point it is called with (inside that call's `apply`, so its errors read as before)
    and replayed from that one trace at every call after it (`trace_and_replay`): a program that evaluates fun at the
    stencil, the domain repair's probes and its one-sided stencil traces the user's code once."""
    trace = []

    def replayed(point):
        if not trace:
            shapes = jax.tree_util.tree_map(lambda leaf: jax.ShapeDtypeStruct(jnp.shape(leaf), jnp.result_type(leaf)),
                                            point)  # fmt: skip
            trace.append(trace_and_replay(fun, shapes)[1])
        return trace[0](point)

    return replayed


def check_output_dtype(values, scheme: Scheme) -> None:
    """Refuse what jax.grad refuses and what would make the difference confidently wrong: integer or boolean outputs
    (x ± h would change nothing, or everything, by whole steps), float16/bfloat16 outputs (their rounding, ~1e-3
    relative, swamps the difference) and complex outputs of a real stencil (jax.grad needs holomorphic=True)."""
    dtype = getattr(values, "dtype", None)
    if dtype is None:
        return
    if jnp.issubdtype(dtype, jnp.integer) or dtype == jnp.bool_:
        raise TypeError(
            f"`fun` returns {dtype}, but a derivative needs a real-valued (float) output, as jax.grad does; return a "
            "float (e.g. .astype(jnp.float32))."
        )
    if jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits < 32:
        raise TypeError(
            f"`fun` returns {dtype}, whose rounding (eps {float(jnp.finfo(dtype).eps):.0e}) swamps a finite "
            "difference; compute the output in float32 or float64."
        )
    if jnp.issubdtype(dtype, jnp.complexfloating) and not scheme.imaginary:
        raise TypeError(
            f"`fun` returns {dtype}: the gradient of a complex output is not defined by these stencils (jax.grad "
            "needs holomorphic=True too); return a real value, e.g. jnp.abs(z) ** 2 or z.real."
        )


def describe(x) -> str:
    """The shape of an array, or the leaf shapes of a pytree, for messages."""
    if isinstance(x, jax.Array):
        return f"of shape {x.shape}"
    shapes = jax.tree_util.tree_map(lambda leaf: leaf.shape, x)
    return f"with leaf shapes {shapes}"


def check_output(values, x, scalar: bool) -> None:
    """The clear error for `fun` returning something other than a (scalar) array."""
    if not isinstance(values, jax.Array):
        raise TypeError(
            f"`fun` must return {'a scalar array' if scalar else 'an array'}, got {type(values).__name__}."
            + (" Return one number, e.g. jnp.sum(...)." if scalar else "")
        )
    if scalar and values.ndim != 1:
        raise ValueError(
            f"`fun` must return a scalar, but it returned shape {values.shape[1:]} for the input {describe(x)}. "
            "Reduce it to one number (e.g. jnp.sum), or use jg.jacobian for vector outputs."
        )


# ------------------------------------------------------------------------------------------------- one point
class Evaluation(NamedTuple):
    """`fun` at the stencil points of one point: the values and what is needed to combine and unravel them."""

    values: Any  # (R, ...): f at each row (imaginary parts for the complex step)
    x: Any  # (d,) the flat point in its working dtype
    h: Any  # (d,) the step of each coordinate
    unravel: Any  # flat (d,) -> the input's pytree
    fallback: Any = None  # step="auto"'s `_auto.Fallback` of the coordinates at the long step on trial, or None


def by_blocks(compute, dim: int, block: int | None):
    """`compute(coords)` over the coordinates 0..dim-1, `block` at a time, stitched: one call with every coordinate
    when `block` is None (or ≥ dim), else a loop inside the program over blocks of `block` consecutive coordinates
    (the last block ends at dim, overlapping the one before, recomputed identically). Peak memory then holds the
    stencil rows of one block, block·d values instead of d².

    `compute(coords)` returns (per-coordinate outputs with a leading axis of len(coords), per-block outputs); the
    result is (outputs of `dim` rows, per-block outputs stacked along a leading axis of blocks)."""
    if block is None or block >= dim:
        per_coordinate, per_block = compute(None)
        return per_coordinate, jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[None], per_block)
    count = -(-dim // block)
    shapes = jax.eval_shape(compute, jnp.arange(block))
    out = (jax.tree_util.tree_map(lambda s: jnp.zeros((dim, *s.shape[1:]), s.dtype), shapes[0]),
           jax.tree_util.tree_map(lambda s: jnp.zeros((count, *s.shape), s.dtype), shapes[1]))  # fmt: skip

    def body(i, out):
        start = jnp.minimum(i * block, dim - block)
        per_coordinate, per_block = compute(start + jnp.arange(block))
        stitched = jax.tree_util.tree_map(lambda o, r: lax.dynamic_update_slice_in_dim(o, r, start, 0), out[0],
                                          per_coordinate)  # fmt: skip
        return stitched, jax.tree_util.tree_map(lambda o, r: o.at[i].set(r), out[1], per_block)

    return lax.fori_loop(0, count, body, out)


def at_coords(values, coords):
    """`values` (one entry per coordinate; or a pytree of such arrays, None included) at the block `coords` that
    `by_blocks` passes (None: every coordinate)."""
    return values if coords is None else jax.tree_util.tree_map(lambda leaf: leaf[coords], values)


def blockable(scheme: Scheme) -> bool:
    """Whether the scheme evaluates any subset of coordinates on its own (`by_blocks`): the same stencil on every
    axis. `StepDirection`, whose stencil depends on the coordinate, is evaluated whole."""
    return isinstance(scheme, FiniteDifference)


class Chosen(NamedTuple):
    """`step="auto"`'s choice at one point: the steps to evaluate the stencil at, and for the gradient of a central
    scheme the `_auto.Fallback` of its coordinates at the long step on trial (`_auto.settle`), else None."""

    h: Any
    fallback: Any = None


def scouted_steps(fun, unravel, flat_x, scout, cap, sides, exponent: float, block: int | None = None,
                  scheme=None) -> Chosen:  # fmt: skip
    """`step="auto"`'s steps, at most `cap`: `fun` on each coordinate's scout line at the steps `scout` (one vmap per
    block of coordinates, `by_blocks`), read by `_auto.choose`; then, with a central `scheme` (`_auto.climbs`), the
    long step on trial (`_climbed`)."""
    sides = jnp.asarray(sides)
    climbs = scheme is not None and _auto.climbs(scheme)
    long = _auto.long_steps(flat_x) if climbs else None
    d = flat_x.shape[0]

    def chosen(coords, f0=None):  # f0 None: f(x) as the last row of the same vmap, so `fun` is traced once
        picked = at_coords((flat_x, scout, cap, sides), coords)  # x, b, cap, sides of the block
        m = picked[0].shape[0]
        rows = [_auto.scout_rows(flat_x, scout, picked[3], coords), *([flat_x[None]] if f0 is None else [])]
        values = apply(fun, unravel, jnp.concatenate(rows), Central())
        f0 = values[-1] if f0 is None else f0
        h, broken = _auto.choice(values[: 4 * m], f0, *picked, exponent)
        if not climbs:
            return Chosen(h)
        line = (values[: 4 * m], f0, picked[1], picked[3])
        return _climbed(fun, unravel, scheme, flat_x, coords, line, at_coords(long, coords), h, broken)

    if block is None or block >= d:
        result = chosen(None)
    else:
        f0 = apply(fun, unravel, flat_x[None], Central())[0]
        result = by_blocks(lambda coords: (chosen(coords, f0), ()), d, block)[0]
    if result.fallback is None or result.fallback.noise is None:
        return result
    return result._replace(fallback=result.fallback._replace(noise=_auto.pooled_noise(result.fallback.noise)))


def _climbed(fun, unravel, scheme: Scheme, flat_x, coords, line, long, h, broken) -> Chosen:
    """The long step on trial for the coordinates `coords` (None: all) whose chosen steps are `h`, never where the
    scout line was broken or the long step is not longer; with the reference its derivative must agree with
    (`_auto.settle`): central order 2 at the scout step on the scout `line` (its values, f(x), its steps and sides;
    only where that is the chosen step), else the scheme itself at `h` (one more vmap)."""
    scouted, f0, b, sides = line
    candidate = ~broken & (long > h)
    if _auto.scout_referenced(scheme):
        g_ref, ref_values = _auto.scout_reference(scouted, f0, b, sides)
        h_ref, ref_weights, candidate = b, _auto.SCOUT_REFERENCE_WEIGHTS, candidate & (h == b)
    else:
        full = h if coords is None else jnp.zeros_like(flat_x).at[coords].set(h)
        ref_values = apply(fun, unravel, scheme.points(flat_x, full, coords), Central())
        g_ref, h_ref, ref_weights = scheme.combine(ref_values, h), h, scheme.weights
    # f's noise, pooled over the point's lines once they are all in (`scouted_steps`); not for central order 2,
    # where it changed no built-in's error and cost 30-45% of its time (a median per point)
    noise = None if _auto.scout_referenced(scheme) else _auto.line_noise(scouted, f0, sides)
    fallback = _auto.Fallback(g_ref, h_ref, _auto.rounding(ref_values, ref_weights, h_ref), candidate, noise)
    return Chosen(jnp.where(candidate, long, h), fallback)


def scouted_along(fun, unravel, flat_x, flat_v, scale, scheme: Scheme):
    """`step="auto"`'s t along the direction v (max-norm `scale`): the scout line x + k·t·v at the coordinates' own
    scale max_i(max(|x_i|, 1)·|v_i|) / scale², read as one coordinate's line."""
    weight = jnp.abs(flat_v) / scale**2
    reach = jnp.max(jnp.maximum(jnp.abs(flat_x), 1) * weight)
    exponents = (_auto.SCOUT_EXPONENT, scheme.step_exponent)
    t, cap = (round_to_power_of_two(default_factor(flat_x.dtype, e) * reach) for e in exponents)
    side = jnp.asarray(scheme.sides(1))
    offsets = _auto.scout_offsets(side)[:, 0].astype(flat_x.dtype)
    line = jnp.concatenate([flat_x[None] + offsets[:, None] * t * flat_v[None], flat_x[None]])
    values = apply(fun, unravel, line, Central())
    along_x = jnp.max(jnp.abs(flat_x) * weight)[None]
    return _auto.choose(values[:-1], values[-1], along_x, t[None], cap[None], side, scheme.step_exponent)[0]


def adapted_steps(fun, unravel, x, flat_h, rule: StepRule, scheme: Scheme, exponent: float | None = None,
                  block: int | None = None, with_error: bool = False) -> Chosen:  # fmt: skip
    """The steps `flat_h` of the rule at the working pytree `x`, or for an adaptive rule (`AutoStep`, real steps)
    the ones chosen from `fun` (`scouted_steps`: below `flat_h`, the fixed steps of the method, of eps exponent
    `exponent`; for the scheme's own gradient, not its error estimate, the long step on trial), scouted `block`
    coordinates at a time; where the procedure does not run (`adapts`), the fixed steps, each leaf's own."""
    if not adapts(rule, scheme, x):
        return Chosen(flat_h)
    flat_x = ravel_pytree(x)[0]
    scout = ravel_pytree(rule.steps(x, _auto.SCOUT_EXPONENT, reach=2))[0]
    sides = jnp.asarray(scheme.sides(flat_x.shape[0]))
    climbing = scheme if exponent is None and not with_error else None  # the long step: the gradient alone
    exponent = scheme.step_exponent if exponent is None else exponent
    return scouted_steps(fun, unravel, flat_x, scout, flat_h, sides, exponent, block, climbing)


def evaluate(fun, x, rule: StepRule, scheme: Scheme, *, with_error: bool = False, scalar: bool = True) -> Evaluation:
    """Evaluate `fun` at the scheme's points around x (its error-estimate points with `with_error`), as one vmap
    (two with `step="auto"`: the scout lines first)."""
    x = as_working(x)
    flat_x, unravel, chosen = blocked_steps(fun, x, rule, scheme, None, with_error)
    if with_error:
        rows = scheme.estimate_points(flat_x, chosen.h)
    else:
        rows = _auto.trial_points(scheme, flat_x, chosen.h, fallback=chosen.fallback)
    values = apply(fun, unravel, rows, scheme)
    check_output(values, x, scalar)
    return Evaluation(values, flat_x, chosen.h, unravel, chosen.fallback)


def blocked_steps(fun, x, rule: StepRule, scheme: Scheme, block: int | None, with_error: bool = False):
    """(flat x, unravel, the `Chosen` steps) of the working pytree x, the steps scouted `block` coordinates at a
    time (`adapted_steps`)."""
    x = as_working(x)
    flat_x, unravel = ravel_pytree(x)
    steps = flat_steps(x, rule, scheme)
    return flat_x, unravel, adapted_steps(fun, unravel, x, steps, rule, scheme, block=block, with_error=with_error)


def settled(values, h, scheme: Scheme, fallback, combine=None):
    """(g, h): the scheme's derivative from `values` at the steps `h` (`combine`, default `scheme.combine`), with
    step="auto"'s coordinates on trial at the long step settled (`_auto.settle`; a `fallback` of None: as they are)."""
    if fallback is None:
        return (combine or scheme.combine)(values, h), h
    return _auto.settle(values, h, scheme, fallback, combine)


def vanished(x, h, scheme: Scheme):
    """Whether a real step vanished (x + h == x) at a finite coordinate: the difference there is 0/0."""
    if scheme.imaginary:
        return jnp.zeros((), bool)
    return jnp.any(jnp.isfinite(x) & (h == 0))


def parts_of(values, x, h, scheme: Scheme) -> Parts:
    """The error estimate's `Parts` from `fun` at the scheme's estimate points of the flat point x."""
    estimated = scheme.estimate(values, x, h)
    return Parts(h, *estimated[:5], vanished(x, h, scheme), estimated.curvature)


def stencil_gradient(fun, unravel, scheme: Scheme, x, h, block: int | None, point=None, fallback=None):
    """The scheme's gradient at the flat point x with steps h, `block` coordinates at a time (`by_blocks`; None: all
    at once), and the steps, step="auto"'s trials at the long step `settled` (`fallback`). With `point` (the pytree
    the user passed), f's values are checked to be scalars (`check_output`)."""

    def gradient_of(coords):
        values = apply(fun, unravel, _auto.trial_points(scheme, x, h, coords, fallback), scheme)
        if point is not None:
            check_output(values, point, scalar=True)
        return settled(values, at_coords(h, coords), scheme, at_coords(fallback, coords)), ()

    return by_blocks(gradient_of, x.shape[0], block)[0]


def point_gradient(fun, scheme: Scheme, x, rule: StepRule, block: int | None = None, repair: bool = True):
    """Gradient of `fun` at one point `x` (a pytree, like `x`), and whether a step vanished at a finite coordinate;
    `block` coordinates at a time (`by_blocks`; None: all at once). With `repair`, coordinates whose stencil leaves
    f's domain are repaired (`repaired_gradient`; see `lazily_repaired`)."""
    if is_empty(x):
        return as_working(x), jnp.zeros((), bool)
    repair = repair and repairable(scheme)
    fun = traced_once(fun) if repair else fun
    if block is None or not blockable(scheme):
        e = evaluate(fun, x, rule, scheme)
        flat_x, unravel = e.x, e.unravel
        g, flat_h = settled(e.values, e.h, scheme, e.fallback)
    else:
        flat_x, unravel, chosen = blocked_steps(fun, x, rule, scheme, block)
        g, flat_h = stencil_gradient(fun, unravel, scheme, flat_x, chosen.h, block, point=x, fallback=chosen.fallback)
    if repair:
        g = repaired_gradient(fun, unravel, scheme, flat_x, flat_h, g, block)
    return unravel(g), vanished(flat_x, flat_h, scheme)


def point_parts(
    fun, scheme: Scheme, x, rule: StepRule, block: int | None = None, repair: bool = True
) -> tuple[Parts, Any]:
    """The error estimate's `Parts` at one point, with the unravel function of the point; for the complex step,
    checked along a direction by a real difference (`complex_checked`). `block` as in `point_gradient`; with `repair`,
    coordinates whose stencil leaves f's domain are repaired (`repaired_parts`; see `lazily_repaired`)."""
    repair = repair and repairable(scheme)
    fun = traced_once(fun) if repair else fun
    if block is None or not blockable(scheme):
        e = evaluate(fun, x, rule, scheme, with_error=True)
        flat_x, unravel, parts = e.x, e.unravel, parts_of(e.values, e.x, e.h, scheme)
    else:
        flat_x, unravel, chosen = blocked_steps(fun, x, rule, scheme, block, with_error=True)
        flat_h = chosen.h

        def estimated_of(coords):
            values = apply(fun, unravel, scheme.estimate_points(flat_x, flat_h, coords), scheme)
            check_output(values, x, scalar=True)
            estimated = scheme.estimate(values, flat_x, at_coords(flat_h, coords))
            return (*estimated[:4], estimated.curvature), estimated.status

        (g, g_double, f_noise, error, curvature), codes = by_blocks(estimated_of, flat_x.shape[0], block)
        code = merge_status(codes, error, g)
        parts = Parts(flat_h, g, g_double, f_noise, error, code, vanished(flat_x, flat_h, scheme), curvature)
    if repair:
        parts = repaired_parts(fun, unravel, scheme, flat_x, parts, block)
    return (complex_checked(fun, unravel, scheme, flat_x, parts, block) if scheme.imaginary else parts), unravel


# ------------------------------------------------------------------------------------------------- domain repair
PROBES = 16
"""Probes per side of each coordinate with which the repair finds the edge of f's domain."""
PROBE_RATIO = 0.25
"""The probes lie at reach·h·PROBE_RATIO^j, j = 0..PROBES−1: down to about 1e-9·h."""
RESOLVED = 8
"""The repaired step is at least this many eps·|x|: shorter ones round away (x + h == x) or to a few ulps."""
REPAIR_SCOPE = "jaxgrad_domain_repair"
"""The name scope of the repair (its predicate and `when_any`), which `_batching.peak_bytes` leaves out."""


def repairable(scheme: Scheme) -> bool:
    """Whether the scheme's coordinates are repaired where the stencil leaves f's domain: real stencils with the
    same offsets on every axis (not the complex step, whose points are not real; not `StepDirection`, whose sides
    the user chose)."""
    return blockable(scheme) and not scheme.imaginary


def when_any(pred, branch, value, args):
    """lax.cond(pred, branch, lambda value, args: value, value, args) whose vmap stays a cond: mapped over a batch
    (a chunk of points), `branch` runs, for every point of the batch, only when `pred` holds at some point of it. (A
    plain lax.cond under vmap becomes a select that runs both branches at every call.) `branch(value, args)`
    returns a new `value` (same structure); the points of the batch whose pred is False keep their own. Differentiated
    (jax.jvp, jax.grad through a numeric gradient) as the plain cond."""
    closed = jax.make_jaxpr(branch)(value, args)  # traced once; values it closes over become explicit arguments
    tree = jax.tree_util.tree_structure(value)

    def run(consts, ops):
        out = jax.core.eval_jaxpr(closed.jaxpr, consts, *jax.tree_util.tree_leaves(ops))
        return jax.tree_util.tree_unflatten(tree, out)

    def keep(consts, ops):
        return ops[0]

    def plain(pred, consts, ops):
        return lax.cond(pred, run, keep, consts, ops)

    @custom_vmap
    def batched(pred, consts, ops):
        return plain(pred, consts, ops)

    @batched.def_vmap
    def rule(axis_size, in_batched, pred, consts, ops):
        pred_batched, consts_batched, ops_batched = in_batched
        ops = jax.tree_util.tree_map(lambda o, b: o if b else jnp.broadcast_to(o, (axis_size, *jnp.shape(o))), ops,
                                     ops_batched)  # fmt: skip
        axes = [0 if b else None for b in consts_batched]

        def chosen(consts, ops, pred):  # points of the batch whose pred is False keep their value, bit for bit
            return jax.tree_util.tree_map(functools.partial(jnp.where, pred), run(consts, ops), ops[0])

        batched_run = jax.vmap(chosen, in_axes=(axes, 0, 0 if pred_batched else None))
        taken = jnp.any(pred) if pred_batched else pred
        out = lax.cond(taken, batched_run, lambda consts, ops, pred: ops[0], consts, ops, pred)
        return out, jax.tree_util.tree_map(lambda _: True, out)

    @jax.custom_jvp
    def cond(pred, consts, ops):
        return batched(pred, consts, ops)

    @cond.defjvp
    def cond_jvp(primals, tangents):  # as the plain cond: custom_vmap's own jvp batches tangents twice under vmap
        return jax.jvp(functools.partial(plain, primals[0]), primals[1:], tangents[1:])

    return cond(pred, list(closed.consts), (value, args))


def _masked(values, keep):
    """Estimate-layout values (one block of m rows per offset, f(x) last) with the lines of the coordinates not in
    `keep` (m,) replaced by f(x): those contribute a finite, flat line (no kink, zero difference)."""
    m = keep.shape[0]
    body = values[:-1].reshape(-1, m, *values.shape[1:])
    body = jnp.where(keep.reshape(1, m, *([1] * (values.ndim - 1))), body, values[-1])
    return jnp.concatenate([body.reshape(-1, *values.shape[1:]), values[-1:]])


def _edge_steps(fun, unravel, scheme: Scheme, x, h, block, with_error: bool):
    """The signed one-sided step of every coordinate, away from the nearer edge of f's domain.

    f is probed on each side at distances t_j = r·h·PROBE_RATIO^j (r the scheme's reach), j = 0..PROBES−1, in a loop
    over j (2·d evaluations each): below the nearest non-finite probe distance T, the edge lies beyond D = T·
    PROBE_RATIO. f varies on the scale of the nearer edge's distance D_near (√x, log x, arcsin near 1), so the
    step is the fixed rule with D_near as the scale, eps^e·D_near, never above h, and short enough that the one-sided
    stencil (reach r1) stays within the far side's room: h1 = min(eps^e·D_near, h, D_far / r1), rounded down to a
    power of two, on the side with more room; never below RESOLVED·eps·|x|."""
    reach = scheme.reach if with_error else max(abs(k) for k in scheme.offsets)
    stencil = Forward(scheme.order)
    side_reach = stencil.reach if with_error else stencil.order
    d = x.shape[0]

    def probe(j, fails):
        t = h * reach * PROBE_RATIO**j

        def finite_of(coords):
            rows = axis_points(x, t, (-1, 1), coords)
            values = apply(fun, unravel, rows, Central())
            finite = jnp.isfinite(values).reshape(2, -1, *values.shape[1:])
            finite = jnp.all(finite, axis=tuple(range(2, finite.ndim)))
            return finite.T, ()

        finite = by_blocks(finite_of, d, block)[0]  # (d, 2): the −1 and +1 sides
        return jnp.where(finite, fails, t[:, None])

    fails = lax.fori_loop(0, PROBES, probe, jnp.full((d, 2), jnp.inf, x.dtype))
    room = fails * PROBE_RATIO
    near, far = jnp.min(room, axis=1), jnp.max(room, axis=1)
    side = jnp.where(room[:, 1] >= room[:, 0], 1, -1).astype(x.dtype)
    h1 = jnp.maximum(
        default_factor(x.dtype, scheme.step_exponent) * near, RESOLVED * jnp.finfo(x.dtype).eps * jnp.abs(x)
    )
    h1 = jnp.minimum(jnp.minimum(h1, h), far / side_reach)
    h1 = round_to_power_of_two((h1 / np.sqrt(2)).astype(x.dtype))  # the power of two at or below
    return stencil, representable_step(x, side * h1)


def repaired_gradient(fun, unravel, scheme: Scheme, x, h, g, block=None):
    """g with the coordinates whose stencil left f's domain (g non-finite while x and f(x) are finite) recomputed
    with the one-sided stencil of the same order away from the domain's edge (`_edge_steps`); where that too is
    non-finite, g stays NaN. Runs only when some coordinate needs it (`when_any`: per chunk under vmap), so
    results elsewhere are bit-for-bit those of the stencil alone."""

    def branch(g, args):
        x, h = args
        bad = ~jnp.isfinite(g)
        stencil, steps = _edge_steps(fun, unravel, scheme, x, h, block, with_error=False)
        g1 = stencil_gradient(fun, unravel, stencil, x, steps, block)[0]
        use = bad & jnp.isfinite(g1)  # f(x) is on the one-sided stencil (center weight ≠ 0): finite there too
        return jnp.where(use, g1, g)

    with jax.named_scope(REPAIR_SCOPE):
        pred = jnp.any(~jnp.isfinite(g)) & jnp.all(jnp.isfinite(x))
        return when_any(pred, branch, g, (x, h))


def finite_lines(values, m: int):
    """(m,) whether every value on each of m coordinates' lines is finite, f(x) included, from estimate-layout
    values (one block of m rows per offset, f(x) last)."""
    body = jnp.isfinite(values[:-1].reshape(-1, m, *values.shape[1:]))
    return jnp.all(body, axis=(0, *range(2, body.ndim))) & jnp.all(jnp.isfinite(values[-1]))


def repaired_parts(fun, unravel, scheme: Scheme, x, parts: Parts, block=None):
    """`parts` with the coordinates whose stencil left f's domain repaired as in `repaired_gradient`, their error
    estimate from the one-sided stencil actually used (at its steps h1 and 2·h1). The other coordinates keep their
    values; their noise, error and status come from their own lines alone (one non-finite line makes the pooled
    noise NaN), from the scheme's stencil evaluated again in the repair. The status is NONFINITE where a coordinate
    stays non-finite, IMPRECISE where a repaired coordinate's error exceeds its value, else merged from the parts
    (`merge_status`). A coordinate's line is finite where g and g(2h) are: together they use every stencil point but
    f(x), which the one-sided stencil uses (where f(x) is not finite, no coordinate is repaired)."""

    def branch(parts, args):
        x, ok = args

        def clean_of(coords):  # the scheme's own estimate of the coordinates whose lines are finite
            h = at_coords(parts.h, coords)
            values = apply(fun, unravel, scheme.estimate_points(x, parts.h, coords), scheme)
            e = scheme.estimate(_masked(values, finite_lines(values, h.shape[0])), x, h)
            return (e.f_noise, e.error), e.status

        (noise, error), clean_codes = by_blocks(clean_of, x.shape[0], block)
        stencil, steps = _edge_steps(fun, unravel, scheme, x, parts.h, block, with_error=True)

        def estimated_of(coords):
            values = apply(fun, unravel, stencil.estimate_points(x, steps, coords), Central())
            h = at_coords(steps, coords)
            e = stencil.estimate(values, x, h)
            error = error_estimate(jnp.abs(h), stencil.weight_sum, e.f_noise, e.g, e.g_double, stencil.order)
            bad = ~at_coords(ok, coords)
            return (e.g, e.g_double, e.f_noise, error, e.curvature), status(x, _masked(values, bad), e.g, error)

        (g, g_double, f_noise, error1, curvature), codes = by_blocks(estimated_of, x.shape[0], block)
        use = ~ok & jnp.isfinite(g) & jnp.isfinite(error1)  # g finite: f(x), on its stencil, is finite too
        new = parts._replace(f_noise=jnp.where(ok, noise, parts.f_noise), error=jnp.where(ok, error, parts.error))
        fields = {"h": jnp.abs(steps), "g": g, "g_double": g_double, "f_noise": f_noise, "error": error1,
                  "curvature": curvature}  # fmt: skip
        new = new._replace(**{k: jnp.where(use, v, getattr(new, k)) for k, v in fields.items()})
        code = merge_status([*clean_codes, *codes], new.error, new.g)
        code = jnp.where(jnp.any(~ok & ~use), Status.NONFINITE, code)
        loose = jnp.any(use & (new.error > jnp.abs(new.g)))
        code = jnp.where((code == Status.OK) & loose, Status.IMPRECISE, code).astype(jnp.int8)
        return new._replace(status=code)

    with jax.named_scope(REPAIR_SCOPE):
        ok = jnp.isfinite(parts.g) & jnp.isfinite(parts.g_double)
        pred = jnp.any(~ok) & jnp.all(jnp.isfinite(x))
        return when_any(pred, branch, parts, (x, ok))


def complex_checked(fun, unravel, scheme: Scheme, x, parts: Parts, block: int | None = None) -> Parts:
    """`parts` of the complex step, with status NOT_ANALYTIC where Im f(x + ih)/h is not f's derivative, and the
    error that the rounding of f's own arguments adds (`argument_rounding`).

    A function that is not complex-safe (softplus, abs, max, `where` on the real part) gives a complex step that is
    wrong with no sign of trouble in its own estimate. One real central difference along a fixed pseudo-random
    direction v (4 evaluations: at ±t and ±2t, t central order 2's step) gives v·∇f to within its own error
    estimate; the complex-step gradient must agree with it within SAFETY times the two estimates, along each of
    `ComplexStep.check_directions` directions (errors in several coordinates can cancel along one: softplus in
    float32 passed one direction at 27 of 10,000 points, 0.4 to 1.2 off). Where it does not, the error is inf: the
    value is not f's derivative, by an amount the complex step cannot know."""
    d = x.shape[0]
    first = jax.random.key(0)
    keys = [first, *(jax.random.fold_in(first, k) for k in range(1, ComplexStep.check_directions))]
    v = jnp.stack([jax.random.normal(key, (d,), x.dtype) for key in keys])  # (directions, d)
    v = v / jnp.max(jnp.abs(v), axis=1, keepdims=True)
    longest = jnp.max(jnp.maximum(jnp.abs(x), 1)[None] * jnp.abs(v), axis=1)
    t = round_to_power_of_two(default_factor(x.dtype, 1 / 3) * longest)  # (directions,)
    positions = (-2, -1, 1, 2)
    offsets = jnp.asarray(positions, x.dtype)
    rows = x[None, None] + offsets[None, :, None] * t[:, None, None] * v[:, None, :]  # (directions, 4, d)
    f = apply(fun, unravel, rows.reshape(-1, d), Central()).reshape(len(keys), 4)
    along_t, along_2t = (f[:, 2] - f[:, 1]) / (2 * t), (f[:, 3] - f[:, 0]) / (4 * t)
    predicted = v @ parts.g
    eps = float(jnp.finfo(x.dtype).eps)
    # f rounds like its terms, Σ |g_j x_j|, or more where they cancel (tanh(4) + tanh(-10) in f64): the noise the
    # odd third difference of the four values reads, pooled over the directions, is allowed for too
    size = jnp.maximum(jnp.max(jnp.abs(f), axis=1), jnp.abs(parts.g) @ jnp.abs(x))
    weights = np.asarray(finite_difference_weights(positions, 3), np.float64)
    noise = norm(f @ jnp.asarray(weights, f.dtype), mean=True) / float(np.linalg.norm(weights))
    allowed = SAFETY * (jnp.maximum(ROUNDING * eps * size, noise) / t + jnp.abs(along_2t - along_t) / 3
                        + jnp.abs(v) @ parts.error + ROUNDING * eps * jnp.abs(v) @ jnp.abs(parts.g))  # fmt: skip
    wrong = jnp.any(jnp.abs(along_t - predicted) > allowed)
    trusted = (parts.status == Status.OK) | (parts.status == Status.IMPRECISE)
    refused = wrong & trusted
    error = jnp.where(refused, jnp.inf, parts.error + argument_rounding(fun, unravel, scheme, x, parts, block))
    return parts._replace(
        error=error.astype(parts.error.dtype),
        status=jnp.where(refused, Status.NOT_ANALYTIC, parts.status).astype(jnp.int8),
    )


def argument_rounding(fun, unravel, scheme: Scheme, x, parts: Parts, block: int | None = None):
    """Per coordinate, the error of the complex step that comes from rounding inside f, not from the step.

    The complex step differentiates f exactly at the arguments f really computes with: each of f's inner arguments
    (x itself, 2πx in a sin, ...) carries a rounding of about eps times its size, and of eps at least where f
    computes through values of size 1 (e^x ≈ 1 + x, so sinh x = (e^x − e^−x)/2 near 0), so the gradient is off by
    H·δ with |δ_j| ≈ eps·max(|x_j|, 1) (H the Hessian), an error no complex step removes. The complex-step gradient
    at x' = x + s·σ⊙max(|x|, 1) (σ_j = ±1 pseudo-random, s = √eps rounded to a power of two: d evaluations more)
    changes by Δ ≈ s·H(σ⊙max(|x|, 1)), cross terms included, so ROUNDING·eps·|Δ|/s has the size of that error,
    coordinate by coordinate (0 where x' leaves f's domain and Δ is not finite). Before it, 1,000 points of Rastrigin
    and Ackley in float32 had 10% of their coordinates' errors above the estimate; with δ ≈ eps·|x_j|, log(cosh(x))
    at |x| ≤ 1e-3 (XLA's complex cosh) 95% in both dtypes, up to 0.7% off in float32 with status OK."""
    eps = float(jnp.finfo(x.dtype).eps)
    s = 2.0 ** round(math.log2(math.sqrt(eps)))
    sigma = jax.random.rademacher(jax.random.key(1), x.shape, x.dtype)
    shifted = x + s * sigma * jnp.maximum(jnp.abs(x), 1)

    def gradient_of(coords):
        values = apply(fun, unravel, scheme.points(shifted, parts.h, coords), scheme)
        return scheme.combine(values, at_coords(parts.h, coords)), ()

    change = by_blocks(gradient_of, x.shape[0], block)[0] - parts.g
    # plus the rounding of the terms f's derivative sums, which may cancel to a much smaller g_i: they are taken
    # to be no larger than the largest gradient coordinate
    arguments = jnp.where(jnp.isfinite(change), ROUNDING * eps / s * jnp.abs(change), 0)
    return arguments + ROUNDING * eps * jnp.max(jnp.abs(parts.g))


def estimate_from(parts: Parts, unravel) -> Estimate:
    """The public `Estimate` (gradient and error like the input, the status) from flat `Parts`."""
    return Estimate(unravel(parts.g), unravel(parts.error), parts.status)


def point_gradient_with_error(fun, scheme: Scheme, x, rule: StepRule, block: int | None = None, repair: bool = True):
    """`Estimate` of the gradient at one point, and whether a step vanished; `block` and `repair` as in
    `point_gradient`."""
    if is_empty(x):
        x = as_working(x)
        return Estimate(x, x, jnp.zeros((), jnp.int8)), jnp.zeros((), bool)
    parts, unravel = point_parts(fun, scheme, x, rule, block, repair)
    return estimate_from(parts, unravel), parts.vanished


def point_result(with_error: bool, repair: bool = True):
    """`point_gradient_with_error` or `point_gradient`, with or without the domain repair: f(fun, scheme, x, rule,
    block=None) -> (result, vanished)."""
    return functools.partial(point_gradient_with_error if with_error else point_gradient, repair=repair)


def lazily_repaired(run, scheme: Scheme, points, values_of, *, batched: bool = True, inputs=()):
    """`run(repair)` (a program with or without the domain repair) at concrete `points`. On a CPU: without it first,
    and again with it only when some point whose coordinates are all finite got a non-finite value (`values_of(result)`:
    a pytree whose leaves have the points' leading axis, or none when not `batched`). The repair's branch triples the
    program's size (first call 0.13 -> 0.41 s for sphere d = 10), so it is compiled only when a stencil leaves f's
    domain; where none does, both programs give the same values bit for bit. Off the CPU (a GPU, a TPU) the program
    with the repair runs at once: reading values back to the host to decide costs more there than the branch's own
    check inside the program (on an H200, 0.35-0.4 ms a call, the hand-written central difference's whole time
    several times over at 10 to 100,000 points of d = 2; the branch 0.02-0.2 ms: ci/gpu_breakdown.py). At traced
    points or `inputs` (inside the user's jit, vmap or grad) no value can be read, nor in a run over several
    processes (`jax.distributed`: each holds a part of the results), so the program with the repair runs there too."""
    return repaired_as(repair_mode(scheme, points, inputs), run, points, values_of, batched)


def repair_mode(scheme: Scheme, points, inputs=()) -> str:
    """How `lazily_repaired` runs a program at these points: "never" (a scheme without the repair), "always" (the
    program with the repair: traced points or `inputs`, several processes, off the CPU) or "lazy" (without it, and
    again with it where a value says so)."""
    if not repairable(scheme):
        return "never"
    point_leaves = leaves_of(points)
    traced = any(isinstance(leaf, jax.core.Tracer) for leaf in point_leaves + jax.tree_util.tree_leaves(inputs))
    if traced or jax.process_count() > 1 or not _computed_on_cpu(point_leaves):
        return "always"
    return "lazy"


def repaired_as(mode: str, run, points, values_of, batched: bool = True):
    """`run(repair)` as `repair_mode` decided (`lazily_repaired`)."""
    if mode != "lazy":
        return run(mode == "always")
    result = run(False)
    return run(True) if repair_needed(values_of(result), points, batched) else result


def _computed_on_cpu(leaves) -> bool:
    """Whether a program on these leaves runs on CPUs: where the JAX arrays among them are, else JAX's default
    backend (NumPy leaves go there)."""
    if len(leaves) == 1 and isinstance(leaves[0], jax.Array):  # one array, the usual batch
        return _on_cpu(leaves[0].sharding)
    arrays = [leaf.sharding for leaf in leaves if isinstance(leaf, jax.Array)]
    return all(map(_on_cpu, arrays)) if arrays else jax.default_backend() == "cpu"


def gradient_values(result):
    """The values of a gradient program's result (gradients, or an `Estimate`'s value and error) that the domain
    repair would change: for `lazily_repaired`'s `values_of`, from (result, vanished, ...)."""
    result = result[0]
    return (result.value, result.error) if isinstance(result, Estimate) else result


def repair_needed(values, points, batched: bool = True) -> bool:
    """Whether a point with finite coordinates has a non-finite value (leaves of `values` and `points` with a
    leading axis of points when `batched`, else one point), read on the host with NumPy (`lazily_repaired` asks only
    where they are computed on a CPU: ~3 µs for a gradient). Where every value is finite (the usual case) each leaf
    is read once."""
    leaves = (values,) if isinstance(values, jax.Array) else jax.tree_util.tree_leaves(values)
    if all(np.isfinite(np.asarray(leaf)).all() for leaf in leaves):
        return False
    n = jax.tree_util.tree_leaves(points)[0].shape[0] if batched else 1

    def finite_rows(tree):  # (n,): every value of the point is finite
        rows = np.ones(n, bool)
        for leaf in jax.tree_util.tree_leaves(tree):
            rows &= np.all(np.isfinite(np.reshape(np.asarray(leaf), (n, -1))), axis=1)
        return rows

    return bool(np.any(~finite_rows(values) & finite_rows(points)))


@functools.lru_cache(maxsize=64)
def _on_cpu(sharding) -> bool:
    """Whether every device of `sharding` is a CPU (read once per sharding: its device set is built on each read)."""
    return all(device.platform == "cpu" for device in sharding.device_set)
