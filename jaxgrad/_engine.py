"""The engine: central/forward/backward difference gradients as one vmap of `fun` per point, batched and jitted."""

from __future__ import annotations

import collections
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from ._stencils import Stencil, make_stencil
from ._steps import check_step, default_step, representable_step, working_dtype


# ----------------------------------------------------------------------------------------------------------- one point
def _as_working_leaf(leaf):
    leaf = jnp.asarray(leaf)
    return leaf.astype(working_dtype(leaf.dtype))


def _leaf_steps(x, step, order: int):
    """The step of every coordinate, as a pytree like `x`, each leaf in its own dtype and exactly representable."""
    if step is None:
        return jax.tree_util.tree_map(lambda leaf: default_step(leaf, order), x)
    if not isinstance(step, (list, tuple, dict)) and np.ndim(step) == 0:
        return jax.tree_util.tree_map(lambda leaf: representable_step(leaf, jnp.asarray(step, leaf.dtype)), x)
    x_def, step_def = jax.tree_util.tree_structure(x), jax.tree_util.tree_structure(step)
    if x_def != step_def:
        raise ValueError(f"`step` must be a scalar or have the structure of the input {x_def}, got {step_def}.")

    def leaf_step(leaf, h):
        h = jnp.asarray(h, leaf.dtype)
        if h.shape not in ((), leaf.shape):
            raise ValueError(
                f"`step` has shape {h.shape} where the input has shape {leaf.shape}; pass a scalar step or an "
                f"array of shape {leaf.shape}."
            )
        return representable_step(leaf, jnp.broadcast_to(h, leaf.shape))

    return jax.tree_util.tree_map(leaf_step, x, step)


def _stencil_points(x, h, offsets, with_center: bool):
    """All points `fun` is evaluated at for one flat point x: shape (K·d [+ 1], d).

    Row k·d + i is x + offsets[k]·h[i]·e_i; `with_center` appends x itself. Coordinates other than i are copied
    unchanged, so each row differs from x in exactly one coordinate.
    """
    d = x.shape[0]
    delta = jnp.asarray(offsets, x.dtype)[:, None] * h[None, :]  # (K, d): offsets[k] * h[i]
    on_diagonal = jnp.eye(d, dtype=bool)[None]  # (1, d, d)
    rows = x[None, None, :] + jnp.where(on_diagonal, delta[:, :, None], jnp.zeros((), x.dtype))
    rows = rows.reshape(len(offsets) * d, d)
    if with_center:
        rows = jnp.concatenate([rows, x[None, :]])
    return rows


def _check_output(values, x):
    if not isinstance(values, jax.Array):
        raise TypeError(
            f"`fun` must return a scalar array, got {type(values).__name__}. Return one number, e.g. jnp.sum(...)."
        )
    if values.ndim != 1:
        raise ValueError(
            f"`fun` must return a scalar, but it returned shape {values.shape[1:]} for the input {_describe(x)}. "
            "Reduce it to one number (e.g. jnp.sum), or differentiate each output separately."
        )


def _describe(x) -> str:
    if isinstance(x, jax.Array):
        return f"of shape {x.shape}"
    shapes = jax.tree_util.tree_map(lambda leaf: leaf.shape, x)
    return f"with leaf shapes {shapes}"


class _Evaluation(NamedTuple):
    """`fun` at the stencil points of one point: the values and what is needed to combine and unravel them."""

    values: Any  # (K·d [+ 1],): f at each row of `_stencil_points`
    x: Any  # (d,) the flat point in its working dtype
    h: Any  # (d,) the exactly representable step of each coordinate
    unravel: Any  # flat (d,) -> the input's pytree


def _evaluate(fun, x, step, offsets, with_center: bool, order: int) -> _Evaluation:
    """Evaluate `fun` at x + k·h_i·e_i for every offset k and coordinate i, as one vmap (no loop over coordinates)."""
    x = jax.tree_util.tree_map(_as_working_leaf, x)
    flat_x, unravel = ravel_pytree(x)
    flat_h, _ = ravel_pytree(_leaf_steps(x, step, order))
    rows = _stencil_points(flat_x, flat_h, offsets, with_center)
    values = jax.vmap(lambda row: fun(unravel(row)))(rows)
    _check_output(values, x)
    return _Evaluation(values, flat_x, flat_h, unravel)


def _combine(values, h, weights, center_weight: float = 0.0):
    """(w_0 f(x) + sum_k w_k f(x + k h_i e_i)) / h_i for every coordinate i, from the rows of `_stencil_points`.

    `weights` are aligned with the offsets the rows were built from (zeros are skipped); the result has h's dtype.
    """
    d = h.shape[0]
    total = jnp.zeros((d,), values.dtype)
    for k, weight in enumerate(weights):  # K ≤ 16 terms, unrolled at trace time: no loop over coordinates
        if weight:
            total = total + weight * values[k * d : (k + 1) * d]
    if center_weight:
        total = total + center_weight * values[-1]
    return (total / h.astype(total.dtype)).astype(h.dtype)


def _vanished(e: _Evaluation):
    """Whether a step vanished (x + h == x) at a finite coordinate: the difference there is 0/0."""
    return jnp.any(jnp.isfinite(e.x) & (e.h == 0))


def _point_gradient(fun, stencil: Stencil, x, step):
    """Gradient of `fun` at one point `x` (a pytree), and whether a step vanished at a finite coordinate."""
    if sum(jnp.size(leaf) for leaf in jax.tree_util.tree_leaves(x)) == 0:
        return jax.tree_util.tree_map(_as_working_leaf, x), jnp.zeros((), bool)
    e = _evaluate(fun, x, step, stencil.offsets, stencil.uses_center, stencil.order)
    return e.unravel(_combine(e.values, e.h, stencil.weights, stencil.center_weight)), _vanished(e)


def _raise_if_step_vanished(vanished, step):
    if isinstance(vanished, jax.core.Tracer) or not bool(jnp.any(vanished)):
        return
    raise ValueError(
        f"`step`={step!r} is below the resolution of the input's dtype: x + step == x for some coordinate, so the "
        "difference is 0/0. Use a step larger than eps·|x| (jnp.finfo(dtype).eps), or step=None for the default."
    )


# ------------------------------------------------------------------------------------------------------- public: grad
def grad(fun, *, method: str = "central", order: int | None = None, step=None):
    """Numerical gradient by finite differences, as a transformation like `jax.grad`.

    The stencil's evaluations at one point are one `jax.vmap` of `fun` over the perturbed points x + k·h_i·e_i (no
    Python loop over coordinates); the result is (sum_k w_k f(x + k h_i e_i)) / h_i per coordinate. Costs: central
    order p takes p·d evaluations of `fun`, forward/backward order p take p·d + 1.

    Args:
      fun: a JAX-traceable function of one argument (an array of any shape, or a pytree of arrays) returning a scalar.
      method: "central" (default), "forward" or "backward".
      order: order p of the truncation error O(h^p); None means 2 for central, 1 for forward/backward.
      step: None for the default eps^(1/(p+1))·max(|x|, 1) per coordinate, rounded to a power of two; or an absolute
        step, a positive scalar or an array (pytree) of the input's shape. Every step is made exactly representable,
        h = (x + h) - x.

    Returns:
      A function x -> gradient with x's structure and shapes. Float inputs keep their dtype; integer inputs are
      promoted to the default float dtype, float16/bfloat16 to float32. It composes with `jax.jit` and `jax.vmap`.

    Raises:
      ValueError: bad `method`, `order` or `step`; `fun` returning a non-scalar; a user step so small that
        x + step == x (checked when called outside `jax.jit`; under jit such coordinates come out NaN).

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> def function_2(x): return x[0] ** 2 + x[1] ** 2
      >>> print(jg.grad(function_2)(jnp.array([3.0, 4.0])))
      [6. 8.]
    """
    stencil = make_stencil(method, order)
    if step is not None:
        check_step(step)
    compiled = jax.jit(functools.partial(_point_gradient, fun, stencil))

    @functools.wraps(fun)
    def gradient(x):
        result, vanished = compiled(x, step)
        if step is not None:
            _raise_if_step_vanished(vanished, step)
        return result

    return gradient


# ------------------------------------------------------------------------------------------------- public: batch_grad
CPU_MEMORY_BUDGET = 8 * 2**20
"""Default budget on CPU (8 MiB): temporaries about the size of a cache run faster than one pass through RAM."""
ACCELERATOR_MEMORY_BUDGET = 2**30
"""Default budget on GPU/TPU (1 GiB)."""


def default_memory_budget(platform: str | None = None) -> int:
    """The default `memory_budget` of `batch_grad` on a platform ("cpu", "gpu", "tpu"; None: the default device's)."""
    platform = platform or jax.devices()[0].platform
    return CPU_MEMORY_BUDGET if platform == "cpu" else ACCELERATOR_MEMORY_BUDGET


def map_points(per_point, points, step, chunk: int):
    """`per_point(x, step)` at every point (leading axis of `points`), inside a traced program.

    One vmap if chunk ≥ N; else a loop over chunks of `chunk` points whose outputs are written into buffers of N
    rows. The last chunk starts at N - chunk (it overlaps the one before and recomputes a few points identically), so
    the points are never padded or copied and `per_point` is traced once.
    """
    batched = jax.vmap(per_point, in_axes=(0, None))
    n = jax.tree_util.tree_leaves(points)[0].shape[0]
    if chunk >= n:
        return batched(points, step)

    def take(tree, start):
        return jax.tree_util.tree_map(lambda leaf: lax.dynamic_slice_in_dim(leaf, start, chunk), tree)

    shapes = jax.eval_shape(batched, take(points, 0), step)
    out = jax.tree_util.tree_map(lambda s: jnp.zeros((n, *s.shape[1:]), s.dtype), shapes)

    def body(i, out):
        start = jnp.minimum(i * chunk, n - chunk)
        results = batched(take(points, start), step)
        return jax.tree_util.tree_map(lambda o, r: lax.dynamic_update_slice_in_dim(o, r, start, 0), out, results)

    return lax.fori_loop(0, -(-n // chunk), body, out)


@functools.partial(jax.jit, static_argnames=("fun", "stencil", "chunk"))
def _batch_gradient(points, step, *, fun, stencil: Stencil, chunk: int):
    """Gradients and per-point "step vanished" flags at all points, in one program."""
    return map_points(functools.partial(_point_gradient, fun, stencil), points, step, chunk)


class _Plan(NamedTuple):
    chunk: int
    one_pass: Any  # the compiled single-pass program when chunk == N, else None
    temp_bytes: int  # XLA's temporary memory for a single pass


_PLANS: collections.OrderedDict = collections.OrderedDict()
_MAX_PLANS = 128


def _aval_key(tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple(
        (type(leaf), np.shape(leaf), getattr(leaf, "dtype", None), getattr(leaf, "sharding", None)) for leaf in leaves
    )


def _estimated_temp_bytes(points, num_points: int, stencil: Stencil | None) -> int:
    """Fallback when XLA gives no memory analysis: twice the stencil points of `num_points` points."""
    leaves = jax.tree_util.tree_leaves(points)
    dim = sum(math.prod(leaf.shape[1:]) for leaf in leaves)
    itemsize = max(working_dtype(leaf.dtype).itemsize for leaf in leaves)
    return 2 * num_points * (stencil or make_stencil()).evaluations(dim) * max(dim, 1) * itemsize


def plan(program, points, step, budget: int, **static) -> _Plan:
    """Choose the chunk for `program(points, step, chunk=..., **static)` (a jitted `map_points` program).

    One pass if XLA's plan for it needs at most `budget` bytes of temporaries, else chunks of about
    budget / (temporaries per point) points. The single-pass program is compiled once to ask XLA
    (`memory_analysis`) and reused when it is chosen; plans are cached per shapes and options.
    """
    n = jax.tree_util.tree_leaves(points)[0].shape[0]
    key = (program, tuple(sorted(static.items())), _aval_key(points), _aval_key(step), budget)
    try:
        cached = _PLANS.get(key)
    except TypeError:  # an unhashable `fun`: no caching; jit raises its own clear error below
        cached, key = None, None
    if cached is not None:
        _PLANS.move_to_end(key)
        return cached
    compiled = program.lower(points, step, chunk=n, **static).compile()
    temp = getattr(compiled.memory_analysis(), "temp_size_in_bytes", None)
    if temp is None:
        temp = _estimated_temp_bytes(points, n, static.get("stencil"))
    chunk = n if temp <= budget else max(1, n * budget // temp)
    result = _Plan(chunk, compiled if chunk == n else None, temp)
    if key is not None:
        _PLANS[key] = result
        if len(_PLANS) > _MAX_PLANS:
            _PLANS.popitem(last=False)
    return result


def run_program(program, points, step, *, chunk_size, memory_budget, **static):
    """Run a jitted `map_points` program with the chunk the caller gave, or the planned one."""
    n = jax.tree_util.tree_leaves(points)[0].shape[0]
    if chunk_size is not None:
        return program(points, step, chunk=min(chunk_size, n), **static)
    budget = memory_budget or default_memory_budget()
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(points)):
        per_point = _estimated_temp_bytes(points, 1, static.get("stencil"))  # under an outer jit: estimate
        return program(points, step, chunk=min(n, max(1, budget // per_point)), **static)
    chosen = plan(program, points, step, budget, **static)
    if chosen.one_pass is not None:
        return chosen.one_pass(points, step)
    return program(points, step, chunk=chosen.chunk, **static)


def check_batch_arguments(step, chunk_size, memory_budget):
    """Validate the knobs shared by the batched entry points."""
    if step is not None:
        check_step(step)
    for name, value in (("chunk_size", chunk_size), ("memory_budget", memory_budget)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"`{name}` must be a positive integer or None, got {value!r}.")


def leading_size(points) -> int:
    """N, the leading (batch) size shared by every leaf of `points`, with a clear error when there is none."""
    leaves = jax.tree_util.tree_leaves(points)
    if not leaves:
        raise ValueError("`points` has no arrays; pass an array of shape (N, ...) with one point per row.")
    if any(leaf.ndim == 0 for leaf in leaves):
        raise ValueError(
            "`points` needs a leading batch axis, got a scalar. For one point use jg.grad(fun)(x); for a batch of "
            "N scalars pass shape (N,)."
        )
    sizes = {leaf.shape[0] for leaf in leaves}
    if len(sizes) > 1:
        raise ValueError(f"Every leaf of `points` must have the same leading (batch) size, got sizes {sorted(sizes)}.")
    return sizes.pop()


def raise_if_missing_batch_axis(fun, points, error: Exception) -> None:
    """Explain a failure on a 1-D `points` whose rows `fun` cannot take but whose whole array it can: one point
    passed where a batch was expected."""
    if not isinstance(points, jax.Array) or points.ndim != 1:
        return
    try:
        out = jax.eval_shape(fun, points)
    except Exception:  # any failure means the whole array is no valid point either
        return
    if getattr(out, "shape", None) == ():
        n = points.shape[0]
        raise ValueError(
            f"`points` has shape {points.shape}, which is read as {n} points of shape (), but `fun` takes the "
            f"whole array as one point. Add the batch axis: points[None] (shape (1, {n})), or use jg.grad(fun)(x) "
            "for a single point."
        ) from error


def batch_grad(
    fun,
    points,
    *,
    method: str = "central",
    order: int | None = None,
    step=None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
):
    """Numerical gradients of `fun` at N points in one compiled call: `grad` vmapped over the leading axis.

    Compiles once per shape, dtype and options; later calls with the same ones reuse the program. When one pass over
    all N points would need more temporary memory than `memory_budget` (as XLA's own memory analysis of the compiled
    program reports; the naive stencil of N points holds N · evaluations(d) · d values), the points are processed in
    chunks by a loop inside the same program, with the same result bit for bit.

    Args:
      fun: a JAX-traceable function of one point (array or pytree) returning a scalar.
      points: an array of shape (N, ...) or a pytree whose leaves all have leading size N; row n is one point.
      method, order, step: as in `grad`; a step is a scalar or has the shape of one point, shared by all points.
      chunk_size: points per chunk; None picks it from `memory_budget`.
      memory_budget: bytes of temporary memory one pass may use; None means 8 MiB on CPU (cache-sized temporaries
        are faster there) and 1 GiB on GPU/TPU.

    Returns:
      Gradients with the structure and shapes of `points`. A NaN or Inf in one point makes only that point's
      gradient non-finite. An empty batch gives an empty result.

    Raises:
      ValueError: as `grad`; also `points` without a batch axis (with the fix), `chunk_size` or `memory_budget` < 1.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> points = jnp.array([[3.0, 4.0], [0.0, 2.0], [3.0, 0.0]])
      >>> print(jg.batch_grad(lambda x: x[0] ** 2 + x[1] ** 2, points))
      [[6. 8.]
       [0. 4.]
       [6. 0.]]
    """
    stencil = make_stencil(method, order)
    check_batch_arguments(step, chunk_size, memory_budget)
    points = jax.tree_util.tree_map(jnp.asarray, points)
    n = leading_size(points)
    if n == 0:
        return jax.tree_util.tree_map(lambda leaf: jnp.zeros(leaf.shape, working_dtype(leaf.dtype)), points)
    try:
        result, vanished = run_program(
            _batch_gradient, points, step, chunk_size=chunk_size, memory_budget=memory_budget, fun=fun, stencil=stencil
        )
    except Exception as error:
        raise_if_missing_batch_axis(fun, points, error)
        raise
    if step is not None:
        _raise_if_step_vanished(vanished, step)
    return result


def num_evaluations(dim: int, *, method: str = "central", order: int | None = None) -> int:
    """Evaluations of `fun` per point of `dim` coordinates for a method and order (2d for central order 2).

    Example:
      >>> num_evaluations(8)
      16
    """
    return make_stencil(method, order).evaluations(dim)
