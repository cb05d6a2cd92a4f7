"""The public transformations `grad` and `batch_grad`: one point's evaluation, bound to fun's arguments or mapped
over a batch, compiled once per function, scheme and shapes."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _validate as validate
from ._auto import scout_evaluations
from ._batching import (
    Batching,
    as_points,
    fit_point,
    gradient_program,
    leading_size,
    progress_bar,
    raise_if_missing_batch_axis,
    run_batching,
    run_program,
)
from ._compile import program
from ._estimate import Estimate
from ._evaluate import (
    as_is_dtypes,
    as_working,
    gradient_values,
    hashable,
    lazily_repaired,
    point_result,
    repair_mode,
    repaired_as,
    warn_if_low_precision,
    working_dtype,
    working_dtypes,
)
from ._filter import FilteredBound, filtered_batch, is_filtered, partition
from ._host import host_batch
from ._schemes import as_scheme
from ._sharding import run_sharded
from ._steps import as_step_rule, raise_if_step_vanished


@dataclasses.dataclass(frozen=True)
class Bound:
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

    def value(self, x, rest, keywords=None):
        out = self.fun(*self.arguments(x, rest), **(keywords or {}))
        if self.has_aux:
            if not (isinstance(out, tuple) and len(out) == 2):
                got = (f"an array of shape {tuple(np.shape(out))}" if hasattr(out, "shape") else
                       f"a {type(out).__name__}" + (f" of {len(out)}" if isinstance(out, tuple) else ""))  # fmt: skip
                raise TypeError(f"with has_aux=True `fun` must return a pair (value, aux), got {got}.")
            return out[0]
        return out

    def aux(self, x, rest, keywords=None):
        return self.fun(*self.arguments(x, rest), **(keywords or {}))[1]


def _as_argnums(argnums):
    """An int or a tuple of ints (NumPy integers accepted), as `jax.grad` takes them."""
    if isinstance(argnums, (tuple, list)):
        return tuple(validate.integer("argnums", a) for a in argnums)
    return validate.integer("argnums", argnums, hint=" Pass an int or a tuple of ints, as to jax.grad.")


def _gradient_of_bound(bound: Bound, scheme, with_error: bool, repair: bool, x, rule, rest, keywords):
    value = functools.partial(bound.value, rest=rest, keywords=keywords)
    per_point = functools.partial(point_result(with_error, repair), value, scheme)
    result, vanished = fit_point(per_point, x, rule)(x, rule)  # in coordinate blocks when d² values do not fit
    vanished = vanished if rule.reports_vanished else None  # only the user's own steps can vanish
    aux = bound.aux(as_working(x), rest, keywords) if bound.has_aux else None
    return result, vanished, aux


def _check_arguments(x, rest, keywords) -> None:
    """Clear errors for arguments a compiled program cannot take: the differentiated ones must be arrays (or pytrees
    of them), the others arrays or numbers (bind anything else with functools.partial or a closure)."""

    def kind(leaf):
        return isinstance(leaf, (jax.Array, np.ndarray, np.generic, int, float, bool, complex))

    bad = [leaf for leaf in jax.tree_util.tree_leaves(x) if not kind(leaf)]
    if bad:
        raise TypeError(
            f"the differentiated argument must be an array or a pytree of arrays, got a {type(bad[0]).__name__} "
            f"({bad[0]!r:.40})."
        )
    named = [("a non-differentiated argument", v) for v in rest] + [(f"keyword argument {k!r}", v) for k, v in
                                                                      keywords.items()]  # fmt: skip
    for where, value in named:
        bad = [leaf for leaf in jax.tree_util.tree_leaves(value) if not kind(leaf)]
        if bad:
            raise TypeError(
                f"{where} of `fun` is a {type(bad[0]).__name__}: jg.grad compiles `fun`, whose other arguments must "
                "be arrays or numbers; bind it with functools.partial(fun, ...) or a closure."
            )


_gradient_program = program(_gradient_of_bound, static_argnums=(0, 1, 2, 3))


def compiled_with(jitted, function, *static):
    """`jitted` (a function jitted with its leading arguments static) with `static` bound: one compiled program per
    function and options, however often the transformation is created. An unhashable `fun` gets a private jit of
    `function` instead."""
    try:
        hash(static)
    except TypeError:
        return program(functools.partial(function, *static))
    return functools.partial(jitted, *static)


def grad(
    fun,
    argnums: int | tuple[int, ...] = 0,
    *,
    method="central",
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
        shape, or pytrees of arrays), the others held fixed. A pytree with other leaves too (an Equinox model's
        activation functions, a "config" string) is filtered as by `eqx.filter_grad`: only its floating-point array
        leaves are differentiated; the rest, integer arrays and Python numbers included, pass through unchanged and
        are None in the gradient.
      argnums: which positional argument(s) to differentiate, an int or a tuple of ints, as in `jax.grad`.
      method: "central" (default), "forward", "backward", "richardson" or "complex", or a scheme object
        (`jg.Central(4)`, `jg.StepDirection((1, 0))`, ...).
      order: order p of the truncation error O(h^p); None: 2 central, 1 one-sided, 6 Richardson, 2 complex.
      step: None for the default eps^(1/(p+1))·max(|x|, 1) per coordinate (eps²·max(|x|, 1) for "complex"), rounded
        to a power of two; or an absolute step, a positive scalar or an array (pytree) of the input's shape; or a
        step rule (`jg.DefaultStep()`, `jg.Absolute(h)`, `jg.Relative(factor)`). Real steps are made exactly
        representable, h = (x + h) - x.
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
      >>> params = {"w": jnp.array([3.0, 4.0]), "act": "square", "scale": 2}  # filtered: only "w" is differentiated
      >>> g = jg.grad(lambda p: p["scale"] * jnp.sum(getattr(jnp, p["act"])(p["w"])) / 2)(params)
      >>> print(g["w"], g["act"], g["scale"])
      [6. 8.] None None
    """
    scheme = as_scheme(method, order)
    rule = as_step_rule(step)
    argnums = _as_argnums(argnums)
    with_error, has_aux = validate.boolean("with_error", with_error), validate.boolean("has_aux", has_aux)
    traceable = validate.boolean("traceable", traceable)
    bound = Bound(fun, argnums, has_aux)

    def programs_for(called):  # with and without the domain repair (`lazily_repaired`)
        return {repair: compiled_with(_gradient_program, _gradient_of_bound, called, scheme, with_error, repair)
                for repair in (False, True)}  # fmt: skip

    programs = programs_for(bound)

    def on_host(bound, x, rest, keywords):
        batch = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[None], x)
        value = functools.partial(bound.value, rest=rest, keywords=keywords)
        result, vanished = host_batch(value, scheme, batch, rule, with_error)
        aux = bound.aux(as_working(x), rest, keywords) if has_aux else None
        return jax.tree_util.tree_map(lambda leaf: leaf[0], result), vanished[0], aux

    @functools.wraps(fun, updated=())
    def gradient(*args, **keywords):
        x, rest = bound.split(args)
        called, compiled = bound, programs
        if is_filtered(x):  # only its inexact-array leaves are differentiated, as by eqx.filter_grad
            original, (x, arrays, skeleton) = x, partition(x)
            if not jax.tree_util.tree_leaves(x):
                raise TypeError(
                    "the differentiated argument must be an array or a pytree holding floating-point arrays, got "
                    f"{type(original).__name__} {original!r:.60} with none; pass floats, e.g. jnp.asarray(x, float)."
                )
            rest, called = (arrays, *rest), FilteredBound(bound, skeleton)
            compiled = programs_for(called)
        if traceable:
            _check_arguments(x, rest, keywords)
        rule.check(working_dtypes(x), scheme.reach)
        if not isinstance(x, jax.core.Tracer):
            warn_if_low_precision(x)
        if traceable:
            result, vanished, aux = lazily_repaired(
                lambda repair: compiled[repair](x, rule, rest, keywords), scheme, x, gradient_values, batched=False,
                inputs=(rest, keywords),
            )  # fmt: skip
        else:
            result, vanished, aux = on_host(called, x, rest, keywords)
        raise_if_step_vanished(vanished, rule)
        return (result, aux) if has_aux else result

    return gradient


def _parsed_batch_options(method, order, step, chunk_size, memory_budget, with_error, traceable, progress):
    """`batch_grad`'s options checked and parsed: (scheme, rule, batching, with_error, traceable, progress)."""
    booleans = (validate.boolean(name, value) for name, value in
                (("with_error", with_error), ("traceable", traceable), ("progress", progress)))  # fmt: skip
    return as_scheme(method, order), as_step_rule(step), Batching(chunk_size, memory_budget), *booleans


_cached_batch_options = functools.lru_cache(maxsize=256, typed=True)(_parsed_batch_options)


def _batch_options(*options):
    """`_parsed_batch_options`, parsed once per distinct options (by value and type, so 1, 1.0 and True differ): a
    call in a loop pays ~1 µs for them instead of ~15. Unhashable ones (a step array) are parsed on every call."""
    try:
        hash(options)
    except TypeError:
        return _parsed_batch_options(*options)
    return _cached_batch_options(*options)


def batch_grad(
    fun,
    points,
    *,
    method="central",
    order: int | None = None,
    step=None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    with_error: bool = False,
    sharding=None,
    traceable: bool = True,
    progress: bool = False,
):
    """Numerical gradients of `fun` at N points in one compiled call: `grad` vmapped over the leading axis.

    Compiles once per shape, dtype and options; later calls with the same ones reuse the program. When one pass over
    all N points would need more temporary memory than `memory_budget` (estimated from the traced program, nothing
    compiled to tell; the naive stencil of N points holds N · evaluations(d) · d values), the points are processed in
    chunks by a loop inside the same program, and one point's coordinates in blocks when it alone does not fit.
    The result equals one big call up to the rounding of f: XLA may fuse (and contract into FMAs) the operations of
    `fun` differently in the two programs.

    Args:
      fun: a JAX-traceable function of one point (array or pytree) returning a scalar.
      points: an array of shape (N, ...) or a pytree whose leaves all have leading size N; row n is one point. A
        filtered pytree (see `grad`; e.g. a batch of Equinox models from `eqx.filter_vmap`) carries the leading axis
        N on its floating-point array leaves only; its other leaves, integer arrays included, are shared by all points
        (an integer array with the batch's leading size is refused: it may be per point, as `eqx.filter_vmap` makes
        it; take such points one at a time, e.g. `eqx.filter_vmap(jg.grad(fun))(points)`).
      method, order, step: as in `grad`; a step is a scalar or has the shape of one point, shared by all points.
      chunk_size: points per chunk; None picks it from `memory_budget`.
      memory_budget: bytes of temporary memory one pass may use, beyond what every block of coordinates needs
        whatever its size (the outputs and their working copies); None means 32 MiB on CPU (cache-sized temporaries
        are faster there) and 1 GiB on GPU/TPU.
      with_error: return an `Estimate(value, error, status)` with the error of every coordinate and a status (N,)
        per point, as in `grad`.
      sharding: None (the points stay where they are), "auto" (split the points over all of `jax.devices()`), a
        `jax.sharding.Mesh` or a `NamedSharding` splitting the leading axis. N need not divide by the device count
        (the points are padded and the padding dropped); each device runs the chunked program on its shard. The
        result stays split over the devices when N divides by their count; otherwise dropping the padding gathers
        it onto every device (JAX arrays cannot be split unevenly), so pick such an N for results that fill a
        device. See `jaxgrad.points_sharding` for several GPUs and several hosts.
      traceable: False for a `fun` written with NumPy: it is called on the host on NumPy arrays, as in `grad`
        (all points' stencils in one call when fun accepts a batch, else row by row).
      progress: True shows a tqdm bar on stderr, in points, advanced from inside the compiled program by one host
        callback at the end of each chunk (`jax.debug.callback`; one tick of N for a single pass; beyond 100 chunks,
        one per group of consecutive chunks, as a callback costs ~0.5-1 ms on a CPU). With `sharding`
        every device ticks for the chunks of its own shard (under `jax.distributed` each process's bar counts the
        points its own devices compute);
        with traceable=False it ticks per point as `fun` is called row by row (once, at the end, for one batched
        call). The call then returns when the results are ready. False (the default): no bar and no callback in
        the program. Not under the user's own `jax.jit` (the bar would close before the program runs).

    Returns:
      Gradients with the structure and shapes of `points` (None at a filtered pytree's other leaves). A NaN or Inf
      in one point makes only that point's gradient non-finite. An empty batch gives an empty result.

    Raises:
      ValueError: as `grad`; also `points` without a batch axis (with the fix), `chunk_size` or `memory_budget` < 1.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> points = jnp.array([[3.0, 4.0], [0.0, 2.0], [3.0, 0.0]])
      >>> print(jg.batch_grad(lambda x: x[0] ** 2 + x[1] ** 2, points))
      [[6. 8.]
       [0. 4.]
       [6. 0.]]
      >>> print(jg.batch_grad(lambda x: x @ x, points, chunk_size=2, progress=True)[0])  # a bar on stderr: 2 ticks
      [6. 8.]
    """
    options = _batch_options(method, order, step, chunk_size, memory_budget, with_error, traceable, progress)
    scheme, rule, batching, with_error, traceable, progress = options
    key = _plain_call(fun, points, options, sharding)
    ready = _checked_before(key)
    if ready is not None:  # this call's checks passed before: straight to its compiled program
        result, vanished = repaired_as(ready.mode, lambda repair: ready.run(points, repair), points, gradient_values)
        raise_if_step_vanished(vanished, rule)
        return result
    fun = hashable(fun)
    if is_filtered(points):  # the inexact-array leaves carry the batch axis; every other leaf is shared
        fun, points, _ = filtered_batch(fun, points)
    points = as_points(points)
    n = leading_size(points)
    rule.check(working_dtypes(points), scheme.reach)
    if n == 0:
        empty = jax.tree_util.tree_map(lambda leaf: jnp.zeros(leaf.shape, working_dtype(leaf.dtype)), points)
        return Estimate(empty, empty, jnp.zeros((0,), jnp.int8)) if with_error else empty
    if not traceable and sharding is not None:
        raise ValueError("traceable=False evaluates `fun` on the host: it cannot be combined with `sharding`.")
    if progress and any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(points)):
        raise ValueError("`progress`=True needs concrete points: call batch_grad outside jax.jit (or pass "
                         "progress=False inside it).")  # fmt: skip
    try:
        with progress_bar(n, progress) as bar:
            if not traceable:
                result, vanished = host_batch(fun, scheme, points, rule, with_error, progress=bar)
            elif sharding is not None:
                result, vanished = lazily_repaired(
                    lambda repair: run_sharded(fun, scheme, with_error, points, rule, sharding, batching, bar, repair),
                    scheme, points, gradient_values,
                )  # fmt: skip
            else:
                mode = repair_mode(scheme, points)
                result, vanished = repaired_as(
                    mode,
                    lambda repair: run_program(gradient_program, points, rule, batching, bar, fun=fun, scheme=scheme,
                                               with_error=with_error, repair=repair),
                    points, gradient_values,
                )  # fmt: skip
                _remember(key, lambda: _Ready(points, mode, run_batching(batching, points), rule, fun=fun,
                                              scheme=scheme, with_error=with_error))  # fmt: skip
    except Exception as error:
        raise_if_missing_batch_axis(fun, points, error)
        raise
    raise_if_step_vanished(vanished, rule)
    return result


_CHECKED_CALLS: dict = {}
"""`batch_grad` calls whose arguments passed every check, by `_plain_call`'s key: each one's `_Ready`."""
CHECKED_CALLS_KEPT = 256
"""How many `_CHECKED_CALLS` are kept; beyond, the oldest is forgotten (and checked again when it comes back)."""


class _Ready:
    """How a checked plain `batch_grad` call runs again: its repair mode (`repair_mode`), chunking (`run_batching`)
    and step rule, and its program compiled for them, called as a `jax.stages.Compiled`, whose dispatch hashes no
    static arguments (Rosenbrock, d = 2, 10 points, float32, 2 CPU cores: 9.2-9.4 µs a call against 14.2-15.1
    through `jax.jit`'s). The program with the other repair (a "lazy" call at a point where f is undefined) goes
    through `gradient_program` as before."""

    __slots__ = ("chunk", "compiled", "mode", "rule", "static")

    def __init__(self, points, mode: str, chunk: Batching, rule, **static):
        self.mode, self.chunk, self.rule, self.static = mode, chunk, rule, static
        try:  # the program this call just compiled: lowered again from jit's caches, not compiled again (~0.3 ms)
            self.compiled = gradient_program.lower(points, rule, chunk=chunk, repair=mode == "always",
                                                   **static).compile()  # fmt: skip
        except Exception:  # nothing lost: the call goes through gradient_program
            self.compiled = None

    def run(self, points, repair: bool):
        """(result, vanished) of the program at `points`, with the domain repair or without."""
        if self.compiled is not None and repair == (self.mode == "always"):
            try:
                return self.compiled(points, self.rule)
            except (TypeError, ValueError):  # arguments it was not compiled for (none known: a safety net)
                self.compiled = None
        return gradient_program(points, self.rule, chunk=self.chunk, repair=repair, **self.static)


def _plain_call(fun, points, options, sharding):
    """The key under which `batch_grad` remembers a call whose checks passed (`fun`, the parsed options, the shape,
    dtype and sharding of `points`, the x64 mode), so that the same call again (a loop over batches) goes straight to
    its compiled program. At 10 points (Rosenbrock, d = 2, float32, 2-core CPU) this took batch_grad's time over the
    hand-written central difference's from 3.0 to 1.5 times the latter's own (~20 µs). Only for the plain call: one
    concrete JAX array in a dtype computed as it is (float32; float64 with x64), traceable, without `sharding` or
    `progress`; None for anything else (pytrees, NumPy input, traced points, other dtypes, an unhashable `fun`), checked
    at every call. Everything the checks read is in the key; a step that vanishes is still reported at every call."""
    if sharding is not None or not options[4] or options[5] or not isinstance(points, jax.Array):
        return None
    if isinstance(points, jax.core.Tracer) or points.dtype not in as_is_dtypes():
        return None
    return fun, options, points.shape, points.dtype, points.sharding, jax.config.jax_enable_x64


def _checked_before(key) -> _Ready | None:
    """The `_Ready` remembered under a `_plain_call` key, or None: none, or a key that cannot be hashed (an
    unhashable `fun` or step)."""
    try:
        return None if key is None else _CHECKED_CALLS.get(key)
    except TypeError:
        return None


def _remember(key, ready) -> None:
    """Keep a checked call's `ready()` under its `_plain_call` key (None: a call not remembered)."""
    try:
        if key is None or key in _CHECKED_CALLS:
            return
    except TypeError:  # cannot be hashed: not remembered
        return
    if len(_CHECKED_CALLS) >= CHECKED_CALLS_KEPT:
        _CHECKED_CALLS.pop(next(iter(_CHECKED_CALLS)), None)
    _CHECKED_CALLS[key] = ready()


def num_evaluations(
    dim: int, *, method="central", order: int | None = None, with_error: bool = False, step=None
) -> int:
    """Evaluations of `fun` per point of `dim` coordinates for a method and order (2d for central order 2); with
    the error estimate, the stencil at h and 2h plus f(x); with step="auto", the scout's 4·d + 1 more and for central
    stencils the long step's trial (`jaxgrad._auto.scout_evaluations`; none for the complex step, whose step is not
    chosen).

    Example:
      >>> num_evaluations(8), num_evaluations(8, with_error=True), num_evaluations(8, method="complex")
      (16, 33, 8)
      >>> num_evaluations(8, step="auto"), num_evaluations(8, step="auto", with_error=True)
      (49, 66)
      >>> num_evaluations(8, order=4, step="auto"), num_evaluations(8, method="forward", step="auto")
      (113, 42)
    """
    dim = validate.integer("dim", dim, minimum=0)
    scheme = as_scheme(method, order)
    own = scheme.evaluations(dim, validate.boolean("with_error", with_error))
    scouted = as_step_rule(step).adaptive and not scheme.imaginary and dim > 0
    return own + (scout_evaluations(dim, scheme, with_error) if scouted else 0)
