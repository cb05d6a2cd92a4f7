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


def _leaf_steps(x, step, stencil: Stencil):
    """The step of every coordinate, as a pytree like `x`, each leaf in its own dtype and exactly representable."""
    if step is None:
        return jax.tree_util.tree_map(lambda leaf: default_step(leaf, stencil.order), x)
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


def _stencil_points(x, h, stencil: Stencil):
    """All points `fun` is evaluated at for one flat point x: shape (K·d [+ 1], d).

    Row k·d + i is x + offsets[k]·h[i]·e_i; one-sided stencils append x itself. Coordinates other than i are copied
    unchanged, so each row differs from x in exactly one coordinate.
    """
    d = x.shape[0]
    delta = jnp.asarray(stencil.offsets, x.dtype)[:, None] * h[None, :]  # (K, d): offsets[k] * h[i]
    on_diagonal = jnp.eye(d, dtype=bool)[None]  # (1, d, d)
    rows = x[None, None, :] + jnp.where(on_diagonal, delta[:, :, None], jnp.zeros((), x.dtype))
    rows = rows.reshape(len(stencil.offsets) * d, d)
    if stencil.center_weight:
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


def _combine(values, h, stencil: Stencil):
    """(w_0 f(x) + sum_k w_k f(x + k h e_i)) / h_i for every coordinate i, from the rows of `_stencil_points`."""
    d = h.shape[0]
    total = None
    for k, weight in enumerate(stencil.weights):  # K ≤ 8 terms, unrolled at trace time: no loop over coordinates
        term = weight * values[k * d : (k + 1) * d]
        total = term if total is None else total + term
    if stencil.center_weight:
        total = total + stencil.center_weight * values[-1]
    return (total / h.astype(total.dtype)).astype(h.dtype)


def _point_gradient(fun, stencil: Stencil, x, step):
    """Gradient of `fun` at one point `x` (a pytree), and whether a step vanished (x + h == x) at a finite x."""
    x = jax.tree_util.tree_map(_as_working_leaf, x)
    flat_x, unravel = ravel_pytree(x)
    flat_h, _ = ravel_pytree(_leaf_steps(x, step, stencil))
    if flat_x.size == 0:
        return x, jnp.zeros((), bool)
    rows = _stencil_points(flat_x, flat_h, stencil)
    values = jax.vmap(lambda row: fun(unravel(row)))(rows)
    _check_output(values, x)
    vanished = jnp.any(jnp.isfinite(flat_x) & (flat_h == 0))
    return unravel(_combine(values, flat_h, stencil)), vanished


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


@functools.partial(jax.jit, static_argnames=("fun", "stencil", "chunk"))
def _batch_gradient(points, step, *, fun, stencil: Stencil, chunk: int):
    """Gradients at all points in one program: one vmap if chunk ≥ N, else a loop over chunks of `chunk` points.

    The last chunk starts at N - chunk (it overlaps the one before and recomputes a few points identically), so the
    points are never padded or copied and `fun` is traced once.
    """
    per_point = jax.vmap(functools.partial(_point_gradient, fun, stencil), in_axes=(0, None))
    n = jax.tree_util.tree_leaves(points)[0].shape[0]
    if chunk >= n:
        return per_point(points, step)

    def take(tree, start):
        return jax.tree_util.tree_map(lambda leaf: lax.dynamic_slice_in_dim(leaf, start, chunk), tree)

    out_shape = jax.eval_shape(per_point, take(points, 0), step)
    out = jax.tree_util.tree_map(lambda s: jnp.zeros((n, *s.shape[1:]), s.dtype), out_shape[0])

    def body(i, carry):
        out, vanished = carry
        start = jnp.minimum(i * chunk, n - chunk)
        grads, flags = per_point(take(points, start), step)
        out = jax.tree_util.tree_map(lambda o, g: lax.dynamic_update_slice_in_dim(o, g, start, 0), out, grads)
        return out, vanished | flags.any()

    out, vanished = lax.fori_loop(0, -(-n // chunk), body, (out, jnp.zeros((), bool)))
    return out, vanished


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


def _estimated_temp_bytes(n: int, dim: int, itemsize: int, stencil: Stencil) -> int:
    """Fallback when XLA gives no memory analysis: twice the stencil points, n · evaluations(d) · d values."""
    return 2 * n * stencil.evaluations(dim) * max(dim, 1) * itemsize


def _plan(points, step, fun, stencil: Stencil, n: int, budget: int) -> _Plan:
    """Choose the chunk: one pass if XLA's plan for it needs at most `budget` bytes of temporaries, else chunks of
    about budget / (temporaries per point) points. The single-pass program is compiled once to ask XLA
    (`memory_analysis`) and reused when it is chosen."""
    key = (fun, stencil, _aval_key(points), _aval_key(step), budget)
    try:
        plan = _PLANS.get(key)
    except TypeError:  # an unhashable `fun`: no caching; jit raises its own clear error below
        plan, key = None, None
    if plan is not None:
        _PLANS.move_to_end(key)
        return plan
    leaves = jax.tree_util.tree_leaves(points)
    dim = sum(math.prod(leaf.shape[1:]) for leaf in leaves)
    itemsize = max(working_dtype(leaf.dtype).itemsize for leaf in leaves)
    compiled = _batch_gradient.lower(points, step, fun=fun, stencil=stencil, chunk=n).compile()
    analysis = compiled.memory_analysis()
    temp = getattr(analysis, "temp_size_in_bytes", None)
    if temp is None:
        temp = _estimated_temp_bytes(n, dim, itemsize, stencil)
    chunk = n if temp <= budget else max(1, n * budget // temp)
    plan = _Plan(chunk, compiled if chunk == n else None, temp)
    if key is not None:
        _PLANS[key] = plan
        if len(_PLANS) > _MAX_PLANS:
            _PLANS.popitem(last=False)
    return plan


def _leading_size(points) -> int:
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


def _missing_batch_axis(fun, points) -> bool:
    """True when `fun` fails on a row of a 1-D `points` but takes the whole array: one point passed as a batch."""
    if not isinstance(points, jax.Array) or points.ndim != 1:
        return False
    try:
        out = jax.eval_shape(fun, points)
    except Exception:
        return False
    return getattr(out, "shape", None) == ()


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
    if step is not None:
        check_step(step)
    for name, value in (("chunk_size", chunk_size), ("memory_budget", memory_budget)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"`{name}` must be a positive integer or None, got {value!r}.")
    points = jax.tree_util.tree_map(jnp.asarray, points)
    n = _leading_size(points)
    if n == 0:
        return jax.tree_util.tree_map(lambda leaf: jnp.zeros(leaf.shape, working_dtype(leaf.dtype)), points)
    try:
        if chunk_size is not None:
            result, vanished = _batch_gradient(points, step, fun=fun, stencil=stencil, chunk=min(chunk_size, n))
        elif any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(points)):
            leaves = jax.tree_util.tree_leaves(points)
            dim = sum(math.prod(leaf.shape[1:]) for leaf in leaves)
            itemsize = max(working_dtype(leaf.dtype).itemsize for leaf in leaves)
            per_point = _estimated_temp_bytes(1, dim, itemsize, stencil)
            chunk = min(n, max(1, (memory_budget or default_memory_budget()) // per_point))
            result, vanished = _batch_gradient(points, step, fun=fun, stencil=stencil, chunk=chunk)
        else:
            plan = _plan(points, step, fun, stencil, n, memory_budget or default_memory_budget())
            if plan.one_pass is not None:
                result, vanished = plan.one_pass(points, step)
            else:
                result, vanished = _batch_gradient(points, step, fun=fun, stencil=stencil, chunk=plan.chunk)
    except Exception as error:
        if _missing_batch_axis(fun, points):
            raise ValueError(
                f"`points` has shape {points.shape}, which batch_grad reads as {n} points of shape (), but `fun` "
                f"takes the whole array as one point. Add the batch axis: points[None] (shape (1, {n})), or use "
                "jg.grad(fun)(x) for a single point."
            ) from error
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
