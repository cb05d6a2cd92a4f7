"""`compare`: the numeric gradient (at h and 2h) vs an exact gradient vs the NumPy reference, at every point."""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .. import _validate as validate
from .. import reference as numpy_reference
from .._batching import (
    Batching,
    as_points,
    leading_size,
    map_points,
    point_dim,
    raise_if_missing_batch_axis,
    run_program,
)
from .._compile import program
from .._estimate import Status, error_noise, line_second_differences, not_smooth
from .._evaluate import (
    NOT_TRACEABLE,
    apply,
    as_working,
    direction_step,
    hashable,
    lazily_repaired,
    mixed_precision,
    point_parts,
    working_dtype,
    working_dtypes,
)
from .._filter import CHECKS_ONE_AT_A_TIME, filtered_batch, is_filtered
from .._host import host_parts
from .._schemes import FiniteDifference, Mode, Scheme, as_scheme
from .._steps import DefaultStep, as_step_rule, own_step, raise_if_step_vanished
from ..numerics import ROUNDING, noise_estimate, norm, tolerance
from ._comparison import Comparison

DIRECTIONS_ABOVE = 4096
"""Above this many coordinates `compare` checks random directions instead of every coordinate, by default."""


# ------------------------------------------------------------------------------------------------------ programs
class _Checked(NamedTuple):
    """What the tolerance needs from one point: only these leave the program, so XLA drops the rest of the
    estimate (its error and status)."""

    h: Any
    g: Any
    g_double: Any
    f_noise: Any
    status: Any
    vanished: Any
    curvature: Any
    exact: Any = None  # the exact gradient, flat, when the program computes it too
    value: Any = None  # f(x), for the complex step (its own values are Im f)


def _point_check(fun, scheme: Scheme, grad_fn, exact: bool, repair: bool, x, rule) -> _Checked:
    """At one point: g(h), g(2h), the step and the noise of f per coordinate, whether a step vanished, and with
    `exact` the exact gradient (`grad_fn`; None: jax.grad(fun)), flat; `repair`: with the domain repair. For the
    complex step, also f(x) itself: the NumPy reference's real differences meet its noise."""
    parts = point_parts(fun, scheme, x, rule, repair=repair)[0]
    flat_exact = flat_gradient(jax.grad(fun) if grad_fn is None else grad_fn, x) if exact else None
    value = fun(as_working(x)) if scheme.imaginary else None
    return _Checked(parts.h, parts.g, parts.g_double, parts.f_noise, parts.status, parts.vanished, parts.curvature,
                    flat_exact, value)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Member:
    """`family[index]`, one of several functions of the same points that `compare` checks with one compiled program:
    the checking program takes the index as data and picks the function with `lax.switch`, so it compiles once per
    shapes and options for the whole family (each member traced into it), not once per function. Called, it is the
    member itself. `jaxgrad compare` checks the built-in functions of one d this way (8 functions in 2 dtypes: 4
    compiles, not 16).

    >>> import jax.numpy as jnp, jaxgrad as jg
    >>> member = Member((jg.functions.sphere, jg.functions.rosenbrock), 1)
    >>> member.name, float(member(jnp.ones(3)))
    ('rosenbrock', 0.0)
    """

    family: tuple
    index: int

    def __call__(self, x):
        return self.family[self.index](x)

    @property
    def name(self) -> str:
        return name_of(self.family[self.index])


def _one_of(family: tuple, which, x):
    """family[which](x) for a traced index `which` (one branch runs)."""
    return jax.lax.switch(which, family, x)


@functools.partial(program, static_argnames=("fun", "scheme", "chunk", "grad_fn", "exact", "repair"))
def _batch_check(points, rule, *, fun, scheme: Scheme, chunk: int, grad_fn=None, exact: bool = False,
                 repair: bool = True, which=None):  # fmt: skip
    """The check at every point, and with `exact` the exact gradient too, in one program: the static arguments are
    the caller's own objects (never a fresh jax.grad or closure), so a second run of the same function, shapes and
    options reuses the compiled program. With `which` (data: an int32 index), `fun` is a `Member`'s family and the
    program checks family[which]."""
    if which is not None:
        fun = functools.partial(_one_of, fun, which)
    return map_points(functools.partial(_point_check, fun, scheme, grad_fn, exact, repair), points, rule, chunk)


def _checked(points, rule, batching, *, scheme: Scheme, fun, **static) -> _Checked:
    """`_batch_check` at `points`, with the domain repair only where a stencil left f's domain (`lazily_repaired`);
    a `Member` by its family's program."""
    if isinstance(fun, Member):
        static.update(fun=fun.family, which=np.int32(fun.index))
    else:
        static.update(fun=fun)
    return lazily_repaired(
        lambda repair: run_program(_batch_check, points, rule, batching, scheme=scheme, repair=repair, **static),
        scheme, points, lambda checked: (checked.g, checked.g_double),
    )  # fmt: skip


def coordinate_names(point) -> tuple[str, ...]:
    """A readable name for each flattened coordinate of one point: "x[3]", "x[1, 2]" or "x['w'][1, 2]"."""
    names = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(point)[0]:
        prefix = "x" + jax.tree_util.keystr(path)
        shape = np.shape(leaf)
        names.extend(f"{prefix}[{', '.join(map(str, index))}]" if shape else prefix for index in np.ndindex(shape))
    return tuple(names)


def flat_gradient(grad_fn, x):
    """grad_fn(x) raveled in x's working dtype, once its structure and shapes are checked against x's."""
    x = as_working(x)
    g = grad_fn(x)
    if jax.tree_util.tree_structure(g) != jax.tree_util.tree_structure(x):
        raise ValueError(
            "`grad_fn` must return a gradient with the structure of its input: got "
            f"{jax.tree_util.tree_structure(g)} for an input {jax.tree_util.tree_structure(x)}."
        )
    leaves = zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(x), strict=True)
    shapes = [(np.shape(a), np.shape(b)) for a, b in leaves]
    if any(a != b for a, b in shapes):
        got, want = next((a, b) for a, b in shapes if a != b)
        raise ValueError(f"`grad_fn` must return a gradient shaped like its input: got shape {got} for shape {want}.")
    flat_x, _ = ravel_pytree(x)
    return ravel_pytree(g)[0].astype(flat_x.dtype)


@functools.partial(program, static_argnames=("fun", "grad_fn", "chunk"))
def batch_exact(points, step, *, fun, grad_fn, chunk: int):
    """`grad_fn` (None: jax.grad(fun), made inside so that it is no fresh static argument) at every point, flat: the
    exact gradients of `compare` and of `step_study`."""
    del step
    return map_points(lambda x, _: flat_gradient(jax.grad(fun) if grad_fn is None else grad_fn, x), points, None, chunk)


def _directions(key, index, count: int, dim: int, dtype):
    """`count` random unit directions (rows) in R^dim for the point with this index: reproducible per point."""
    v = jax.random.normal(jax.random.fold_in(key, index), (count, dim), dtype)
    return v / jnp.linalg.norm(v, axis=1, keepdims=True)


def _point_directional(fun, scheme: FiniteDifference, count: int, inputs, key):
    """At one point and `count` random directions v: the numeric directional derivative D(t) and D(2t) and, for the
    same displaced points, the analytic prediction A = sum_k w_k <g, Δ_k> / t, Δ_k the displacement each stencil
    point really has (fl(x + k t v) − x; for the complex step its imaginary part)."""
    x, g, index = inputs
    x = as_working(x)
    flat_x, unravel = ravel_pytree(x)
    g = g.astype(flat_x.dtype)
    v = _directions(key, index, count, flat_x.shape[0], flat_x.dtype)  # (count, d)
    t = direction_step(DefaultStep(), x, flat_x, scheme.step_exponent)
    positions = scheme.estimate_offsets
    moved = jax.vmap(lambda direction: scheme.along(flat_x, direction, t, positions), out_axes=1)(v)  # (P, count, d)
    if mixed_precision(x):  # the points as f gets them: float32 leaves' coordinates rounded to float32
        moved = jax.vmap(jax.vmap(lambda row: ravel_pytree(unravel(row))[0]))(moved)
    displacement = scheme.displacement(moved.reshape(-1, flat_x.shape[0]), flat_x).reshape(moved.shape)
    values = apply(fun, unravel, moved.reshape(-1, flat_x.shape[0]), scheme).reshape(len(positions), count)
    predicted = jnp.einsum("kcd,d->kc", displacement, g)  # <g, Δ> per row
    h = jnp.broadcast_to(t, (count,))
    odd, both = (noise_estimate(values, positions, flat_x.dtype, flat_x, odd_only=o).astype(flat_x.dtype)
                 for o in (True, False))  # fmt: skip
    second = None if scheme.imaginary else line_second_differences(values, positions, odd)
    f_noise = error_noise(second, odd, both)
    return {
        "h": h,
        "g": scheme.combine_along(values, t, positions),
        "g_double": scheme.combine_along(values, t, positions, factor=2),
        "exact": scheme.combine_along(predicted, t, positions),
        "exact_double": scheme.combine_along(predicted, t, positions, factor=2),
        "f_noise": f_noise,
        "dot_scale": (jnp.max(jnp.einsum("kcd,d->kc", jnp.abs(displacement), jnp.abs(g)), axis=0) / t).astype(
            flat_x.dtype
        ),
        **({} if second is None else {"not_smooth": not_smooth(second)}),  # the smoothness test, central stencils
    }


@functools.partial(program, static_argnames=("fun", "scheme", "count", "chunk"))
def _batch_directional(inputs, key, *, fun, scheme: Scheme, count: int, chunk: int):
    return map_points(functools.partial(_point_directional, fun, scheme, count), inputs, key, chunk)


# ------------------------------------------------------------------------------------------------------ helpers
def name_of(fun) -> str:
    """The function's name for reports: a built-in's `name`, `__name__`, or its type's name."""
    return getattr(fun, "name", None) or getattr(fun, "__name__", None) or type(fun).__name__


def _timed(call):
    start = time.perf_counter()
    out = jax.block_until_ready(call())
    return out, time.perf_counter() - start


def _exact_gradients(fun, grad_fn, points, batching: Batching):
    """grad_fn (None: jax.grad(fun)) at every point as flat rows: jitted and vmapped when it traces, else point by
    point."""
    try:
        flat = run_program(batch_exact, points, None, batching, fun=fun, grad_fn=grad_fn)
        return np.asarray(flat, np.float64), None
    except TypeError as error:  # also every NOT_TRACEABLE error: JAX's tracer errors are TypeErrors
        n = leading_size(points)
        rows = []
        for i in range(n):
            point = jax.tree_util.tree_map(lambda leaf, i=i: np.asarray(leaf[i]), points)
            rows.append(np.asarray(ravel_pytree(grad_fn(point))[0], np.float64))
        note = f"`grad_fn` does not trace under jax.jit ({type(error).__name__}); it ran point by point"
        return np.stack(rows), note


def _rows_on_host(leaf, index) -> np.ndarray:
    """leaf[index] as a NumPy array in the leaf's working dtype (float16 and bfloat16 are differentiated in
    float32, as the engine does): read from the whole array where it is in host memory (no program to compile),
    gathered on the device elsewhere (one small program per shape)."""
    if all(device.platform == "cpu" for device in leaf.devices()):
        rows = np.asarray(leaf)[index]
    else:
        rows = np.asarray(leaf[jnp.asarray(index)])
    return rows.astype(working_dtype(leaf.dtype))


def _reference_gradients(fun, points, index, h, traceable: bool = True):
    """The NumPy reference at the sampled points, at steps h and 2h (the second for its truncation estimate), as
    flat rows. A pytree point is flattened and `fun` called on its unraveled form. The reference's loop and
    differences are NumPy's (`_host_call`): a `fun` that returns NumPy values (NumPy code, the built-ins) is called
    as it is; one that returns JAX arrays is JAX code, which runs op by op ~10-100x slower than compiled, so it is
    called jitted where it traces and its 4·d·m calls op by op would take over `JIT_ABOVE` seconds."""
    steps = (h, 2 * h)
    if isinstance(points, jax.Array):
        rows = _rows_on_host(points, index)
        call = _host_call(fun, rows, traceable)
        grads = [[numpy_reference.numerical_gradient(call, point, s).reshape(-1) for s in steps] for point in rows]
    else:  # the rows flattened by NumPy, in ravel_pytree's order and dtype (no slicing program per point)
        leaves, tree = jax.tree_util.tree_flatten(points)
        rows = [_rows_on_host(leaf, index) for leaf in leaves]
        flat0, unravel = ravel_pytree(jax.tree_util.tree_unflatten(tree, [leaf_rows[0] for leaf_rows in rows]))
        flats = np.concatenate([leaf_rows.reshape(len(index), -1) for leaf_rows in rows], axis=1).astype(flat0.dtype)

        def flat_fun(v):
            return fun(unravel(v))

        call = _host_call(flat_fun, flats, traceable)
        grads = [[numpy_reference.numerical_gradient(call, flat, s) for s in steps] for flat in flats]
    grads = np.asarray(grads, np.float64)
    return grads[:, 0], grads[:, 1]


JIT_ABOVE = 0.05
"""Seconds of op-by-op calls above which the reference calls a JAX `fun` jitted: about what compiling a small
function costs."""


def _host_call(fun, rows, traceable: bool):
    """`fun` for the reference's calls on the host: NumPy values in and out, so that its differences are NumPy's.
    A traceable `fun` that returns a JAX array for the first row is JAX code: jitted when its 4·d calls per row,
    timed on a second (warm) call, would take over `JIT_ABOVE` seconds op by op. A `fun` that does not trace is
    called as it is, with no probing call (it may be slow host code)."""
    if not traceable:
        return lambda v: np.asarray(fun(v))
    if not len(rows) or not isinstance(fun(rows[0]), jax.Array):
        return fun
    start = time.perf_counter()
    jax.block_until_ready(fun(rows[0]))
    slow = (time.perf_counter() - start) * 4 * np.size(rows[0]) * len(rows) > JIT_ABOVE
    chosen = jax.jit(fun) if slow else fun
    return lambda v: np.asarray(chosen(v))


def _check_scalar_output(fun, point) -> None:
    """The clear errors `grad` gives for a non-scalar or non-traceable `fun`, before jax.grad gives its own."""
    try:
        out = jax.eval_shape(fun, point)
    except NOT_TRACEABLE as error:
        raise TypeError(
            f"`fun` is not traceable by JAX ({type(error).__name__}), so jax.grad cannot give the gradient to compare "
            "with. Write fun with jax.numpy, or pass traceable=False and your gradient as grad_fn= (command line: "
            "--numpy --grad module:attr)."
        ) from error
    except Exception:  # let the real evaluation report it
        return
    if not hasattr(out, "shape"):
        raise TypeError(f"`fun` must return a scalar array, got {type(out).__name__}.")
    if out.shape != ():
        raise ValueError(
            f"`fun` must return a scalar, but it returned shape {out.shape} for one point. Reduce it to one number "
            "(e.g. jnp.sum), or compare each output separately."
        )


def _flat_rows(points, dtype) -> np.ndarray:
    """Every point as one row of its leaves raveled in order (as ravel_pytree), in `dtype`, as float64: NumPy's work
    (an eager jax.vmap compiled each of its operations per shape)."""
    leaves = jax.tree_util.tree_leaves(points)
    n = leaves[0].shape[0]
    rows = [np.asarray(leaf).reshape(n, -1).astype(dtype) for leaf in leaves]
    return np.concatenate(rows, axis=1).astype(np.float64)


def default_reference_points(num_points: int, dim: int) -> int:
    """How many points the (slow, one coordinate at a time) NumPy reference runs on by default: at most 100, and
    at most about 40,000 evaluations of f (4·d per point: steps h and 2h)."""
    return int(min(num_points, 100, max(1, 40_000 // max(4 * dim, 1))))


def _to_float64(parts) -> dict:
    items = parts._asdict().items() if hasattr(parts, "_asdict") else parts.items()
    return {k: np.asarray(v, np.float64) for k, v in items}


class _Columns(NamedTuple):
    """What a check measured, one column per coordinate or direction (float64)."""

    numeric: np.ndarray
    exact: np.ndarray
    tolerance: np.ndarray
    f_noise: np.ndarray
    not_smooth: np.ndarray | None = None


def _check_coordinates(fun, grad_fn, exact_name, scheme, rule, points, flat_points, batching, traceable, dtype,
                       extra, times, notes) -> _Columns:  # fmt: skip
    """Every coordinate: g(h) and g(2h) from the scheme's error estimate, against the exact gradient (`flat_points`:
    the points flattened, float64). Both come from one program when `fun` and `grad_fn` trace (one compile per
    function, shapes and options); a `grad_fn` that does not trace runs on its own, point by point."""
    values = exact = None
    if traceable:
        try:
            values, times[f"{exact_name} + jaxgrad (h and 2h)"] = _timed(
                lambda: _checked(points, rule, batching, fun=fun, scheme=scheme, grad_fn=grad_fn, exact=True)
            )
            exact = np.asarray(values.exact, np.float64)
        except TypeError:  # also every NOT_TRACEABLE error: a grad_fn that does not trace runs apart, below
            if grad_fn is None:
                raise
    if exact is None:
        (exact, note), times[exact_name] = _timed(lambda: _exact_gradients(fun, grad_fn, points, batching))
        notes.extend([note] if note else [])
    if values is None and traceable:
        values, times["jaxgrad (h and 2h)"] = _timed(lambda: _checked(points, rule, batching, fun=fun, scheme=scheme))
    elif values is None:
        values, times["jaxgrad (h and 2h), fun on the host"] = _timed(
            lambda: host_parts(fun, scheme, points, rule, with_error=True)[0]
        )
    raise_if_step_vanished(values.vanished, rule)
    v = _to_float64({k: value for k, value in values._asdict().items() if value is not None})
    flat = np.abs(flat_points)
    # f that sums terms which cancel rounds like its terms, Σ_i |g_i|·|x_i| (from the numeric gradient, so a wrong
    # exact gradient cannot widen its own tolerance), and the rounding is correlated along a line, where the noise
    # estimate cannot see it
    terms = norm(np.nan_to_num(v["g"] * flat), axis=1)[:, None]
    rounding = ROUNDING * float(jnp.finfo(dtype).eps)
    f_noise = np.maximum(v["f_noise"], rounding * terms)
    # a line where f did not change at all (its differences at h and 2h exactly 0: erf(x0) + erf(x1) at x0 = −4.5,
    # x1 = 4.5 in float32 is 1 − 1) shows no scale: it cannot resolve a change below f's rounding at unit scale
    flat_line = (v["g"] == 0) & (v["g_double"] == 0)
    f_noise = np.where(flat_line, np.maximum(f_noise, rounding), f_noise)
    tol = tolerance(dtype, v["h"], scheme.weight_sums(exact.shape[1]), f_noise, v["g"], v["g_double"],
                    scheme.order, exact, exact_scale=v["curvature"] * flat, **extra)  # fmt: skip
    if not scheme.imaginary:
        return _Columns(v["g"], exact, tol, v["f_noise"], np.asarray(values.status) == Status.NOT_SMOOTH)
    # the complex step: no tolerance bounds the exact gradient's own rounding at its precision (`inconclusive_reason`),
    # so the tolerance stays f's rounding over its h, which resolves no gradient: the run is INCONCLUSIVE. The NumPy
    # reference's real differences meet the noise of the real f(x) (the complex step's own values are Im f).
    noise = rounding * np.maximum(np.abs(v["value"])[:, None], terms)  # f rounds like its terms
    return _Columns(v["g"], exact, tol, np.broadcast_to(noise, exact.shape))


def _check_directions(fun, scheme, points, batching, exact, directions, seed, dtype, extra, times) -> _Columns:
    """`directions` random unit directions per point: D(t), D(2t) against the exact gradient's prediction."""
    inputs = (points, jnp.asarray(exact, dtype), jnp.arange(exact.shape[0]))
    key = jax.random.key(seed)
    values, times["jaxgrad directional"] = _timed(
        lambda: run_program(_batch_directional, inputs, key, batching, fun=fun, scheme=scheme, count=directions)
    )
    v = _to_float64(values)
    # the truncation estimate is taken on the error e(t) = D(t) − A(t), which a wrong g cannot shrink
    tol = tolerance(dtype, v["h"], scheme.weight_sum, v["f_noise"], v["g"] - v["exact"],
                    v["g_double"] - v["exact_double"], scheme.order, v["dot_scale"], **extra)  # fmt: skip
    not_smooth = v["not_smooth"].astype(bool) if "not_smooth" in v else None  # along any of the point's directions
    return _Columns(v["g"], v["exact"], tol, v["f_noise"], not_smooth)


def compare(
    fun,
    points,
    *,
    grad_fn=None,
    reference: bool = True,
    reference_points: int | None = None,
    method="central",
    order: int | None = None,
    step="auto",
    directions: int | None = None,
    rtol: float = 0.0,
    atol: float = 0.0,
    seed: int = 0,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    name: str | None = None,
    traceable: bool = True,
) -> Comparison:
    """Compare jaxgrad's numeric gradient with `grad_fn` (default `jax.grad(fun)`) and the NumPy reference, per point.

    Each point passes when |numeric − exact| ≤ `jaxgrad.numerics.tolerance` in every coordinate: a bound derived from
    the dtype, the step, the stencil, the local size of f and a Richardson estimate of the truncation error (the
    numeric gradient is also computed at step 2h, so the check costs 2× `batch_grad`). A point out of tolerance
    where f is not smooth at the step (a kink or a jump inside the stencil, `Status.NOT_SMOOTH`) is "not smooth
    here" (`Comparison.kinked`), not a mismatch. The NumPy reference (the
    notes' loop, h = 1e-4) runs on a random sample of the points and is reported beside it.

    Coordinate mode (the default for d ≤ 4096, and for schemes without a directional mode) checks every coordinate:
    4·d evaluations per point for central order 2 (above 4096 too where `step` is the caller's own: it is for every
    coordinate). Directional mode (`directions=K`, the default above 4096) checks
    K random unit directions per point: 4·K evaluations whatever d, compared with <grad_fn(x), v> for the same
    displaced points. The trade-off: a bug confined to one coordinate i shows in a random direction only with weight
    |v_i| ≈ 1/√d, so it is caught when its size exceeds about √d times the tolerance; more directions raise the
    chance that some v weights it strongly.

    Args:
      fun: scalar function of one point (array or pytree), traceable by JAX.
      points: a batch, shape (N, ...) or a pytree with leading axis N. A filtered pytree (an Equinox model, a params
        dict with a "config" string) is checked at its floating-point array leaves, which carry the axis N, as
        `eqx.filter_grad` differentiates it; its other leaves are shared by all points (see `batch_grad`).
      grad_fn: the gradient to check, x -> pytree like x; None means `jax.grad(fun)` (for a filtered pytree, as
        `eqx.filter_grad(fun)`: None at the other leaves, whose values are ignored where grad_fn fills them). It need
        not be traceable (it then runs point by point).
      reference: also run the NumPy reference (coordinate mode only).
      reference_points: points the reference runs on; None: `default_reference_points(N, d)`.
      method, order: the numeric stencil, as in `grad` (a scheme object too; directional mode needs one that
        supports `Mode.DIRECTIONAL`, and a real one). With the complex step every run is INCONCLUSIVE: exact to
        rounding itself, it meets the exact gradient's own rounding, which no tolerance can bound from outside.
      step: "auto" (the default: each point's and coordinate's step chosen from f, see `jg.AutoStep`; it costs 4·d + 1
        evaluations more per point, and resolves the points where the fixed step is too long for f's own length scale),
        None for the fixed eps^(1/(p+1))·max(|x|, 1), or any `step=` of `grad`. Directional mode always steps t =
        eps^(1/(p+1))·max(|x|, 1) along each direction.
      directions: None (automatic), or the number of random directions per point (directional mode).
      rtol, atol: added to the tolerance.
      seed: picks the reference sample and the random directions.
      chunk_size, memory_budget: as in `batch_grad`.
      name: the function's name in the report.
      traceable: False for a `fun` written with NumPy: it is called on the host (see `grad`); `grad_fn` must then be
        given (jax.grad cannot differentiate it), and only coordinate mode is available.

    Returns:
      A `Comparison`.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> points = jg.functions.rosenbrock.sample(500, 4, dtype="float32")
      >>> rep = jg.compare(jg.functions.rosenbrock, points)
      >>> rep.ok, rep.passed.shape
      (True, (500,))
    """
    scheme = as_scheme(method, order)
    rule = as_step_rule(step)
    batching = Batching(chunk_size, memory_budget)
    rtol = validate.real("rtol", rtol, minimum=0.0, hint=" It widens the derived tolerance; 0 adds nothing.")
    atol = validate.real("atol", atol, minimum=0.0, hint=" It widens the derived tolerance; 0 adds nothing.")
    reference_points = validate.integer("reference_points", reference_points, minimum=1, none=True)
    seed = validate.integer("seed", seed, minimum=0)
    directions = validate.integer("directions", directions, minimum=1, none=True,
                                  hint=" None checks every coordinate (d ≤ 4096).")  # fmt: skip
    reference, traceable = validate.boolean("reference", reference), validate.boolean("traceable", traceable)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"`name` must be a string or None, got {type(name).__name__}.")
    exact_name = "jax.grad" if grad_fn is None else name_of(grad_fn)
    name = name or name_of(fun)
    fun, grad_fn = hashable(fun), None if grad_fn is None else hashable(grad_fn)
    if is_filtered(points):  # the inexact-array leaves carry the batch axis; every other leaf is shared
        fun, points, grad_fn = filtered_batch(fun, points, grad_fn, fix=CHECKS_ONE_AT_A_TIME)
    points = as_points(points)
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(points)):
        raise TypeError("compare (and check_grad) runs outside jax.jit and jax.vmap: its report holds NumPy arrays "
                        "and the NumPy reference runs on the host. Call it on concrete points.")  # fmt: skip
    n = leading_size(points)
    rule.check(working_dtypes(points), scheme.reach)
    point0 = jax.tree_util.tree_map(  # shapes only: slicing a point out would compile a program per shape
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape[1:], jax.dtypes.canonicalize_dtype(working_dtype(leaf.dtype))),
        points,
    )
    dim = point_dim(points)
    dtype = np.result_type(*[working_dtype(leaf.dtype) for leaf in jax.tree_util.tree_leaves(points)])
    if n == 0:
        empty = np.zeros((0, dim))
        return Comparison._of_own(function=name, exact_name=exact_name, dtype=np.dtype(dtype).name,
                                  mode=Mode.COORDINATES, method=scheme.method, order=scheme.order, dim=dim,
                                  numeric=empty, exact=empty, tolerance=empty, reference_index=np.zeros(0, int),
                                  reference=None, reference_tolerance=None, coordinate_names=coordinate_names(point0),
                                  times={})  # fmt: skip
    if not traceable and (grad_fn is None or directions is not None):
        raise ValueError(
            "traceable=False needs `grad_fn` (jax.grad cannot differentiate a function JAX cannot trace) and "
            "coordinate mode (directions=None)."
        )
    if grad_fn is None:  # stays None: the programs take jax.grad(fun) inside, so they are shared by every call
        _check_scalar_output(fun, point0)
    if directions is None and dim > DIRECTIONS_ABOVE and Mode.DIRECTIONAL in scheme.modes and not scheme.imaginary:
        directions = None if own_step(step) else 16  # a step of the caller's own is for every coordinate: checked
    if directions is not None and own_step(step):
        raise ValueError(
            "`step` applies to coordinate mode; directional mode steps t = eps^(1/(p+1))·max(|x|, 1) along each "
            "direction. Pass step=None, or directions=None to check every coordinate with your step."
        )
    scheme.require(Mode.WITH_ERROR, "compare")
    if directions is not None:
        scheme.require(Mode.DIRECTIONAL, "compare(..., directions=K)")
        if scheme.imaginary:  # its directional derivatives have no check that f is complex-safe (softplus: all wrong)
            raise ValueError(
                "compare(..., directions=K) needs a real difference: use method='central' or "
                "'richardson' (with the complex step compare checks every coordinate, directions=None)."
            )
    notes, times = [], {}
    extra = {"rtol": rtol, "atol": atol}
    flat_points = _flat_rows(points, dtype)
    try:
        if directions is None:
            columns = _check_coordinates(fun, grad_fn, exact_name, scheme, rule, points, flat_points, batching,
                                         traceable, dtype, extra, times, notes)  # fmt: skip
            names = coordinate_names(point0)
        else:
            (exact, note), times[exact_name] = _timed(lambda: _exact_gradients(fun, grad_fn, points, batching))
            notes.extend([note] if note else [])
            columns = _check_directions(fun, scheme, points, batching, exact, directions, seed, dtype, extra, times)
            names, reference = tuple(f"direction {k}" for k in range(directions)), False
    except Exception as error:
        raise_if_missing_batch_axis(fun, points, error)
        raise
    ref = ref_tol = None
    index = np.zeros(0, int)
    if reference:
        m = default_reference_points(n, dim) if reference_points is None else min(int(reference_points), n)
        index = np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))
        (ref, ref_double), times[f"numpy ref ({m} pts)"] = _timed(
            lambda: _reference_gradients(fun, points, index, numpy_reference.DEFAULT_H, traceable)
        )
        noise = np.max(columns.f_noise, axis=1, keepdims=True)[index]  # the noise of f at these points
        ref_tol = tolerance(dtype, numpy_reference.DEFAULT_H, 1.0, noise, ref, ref_double, 2, columns.exact[index])
        if m < n:
            notes.append(f"the NumPy reference ran on {m:,} of {n:,} points, drawn at random (seed {seed})")
    return Comparison._of_own(
        function=name,
        exact_name=exact_name,
        dtype=np.dtype(dtype).name,
        mode=Mode.COORDINATES if directions is None else Mode.DIRECTIONAL,
        method=scheme.method,
        order=scheme.order,
        dim=dim,
        numeric=columns.numeric.reshape(n, -1),
        exact=columns.exact.reshape(n, -1),
        tolerance=columns.tolerance.reshape(n, -1),
        reference_index=index,
        reference=ref,
        reference_tolerance=ref_tol,
        coordinate_names=names,
        times=times,
        notes=tuple(notes),
        points=flat_points,
        directions=directions,
        not_smooth=columns.not_smooth,
    )
