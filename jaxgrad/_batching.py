"""Many points: the batch's checks, the map over points inside one program, and the chunk planner."""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import _validate as validate
from ._evaluate import point_result, warn_if_low_precision, working_dtype
from ._schemes import Central, Scheme

CPU_MEMORY_BUDGET = 8 * 2**20
"""Default budget on CPU (8 MiB): temporaries about the size of a cache run faster than one pass through RAM."""
ACCELERATOR_MEMORY_BUDGET = 2**30
"""Default budget on GPU/TPU (1 GiB)."""


PLATFORMS = ("cpu", "gpu", "cuda", "rocm", "tpu", "metal")
"""The platforms JAX names."""


def default_memory_budget(platform: str | None = None) -> int:
    """The default `memory_budget` of `batch_grad` on a platform ("cpu", "gpu", "tpu"; None: the default device's).

    Example:
      >>> default_memory_budget("cpu") // 2**20, default_memory_budget("gpu") // 2**20
      (8, 1024)
    """
    platform = platform or jax.devices()[0].platform
    if not isinstance(platform, str) or platform.lower() not in PLATFORMS:
        raise ValueError(f"`platform` must be one of {', '.join(PLATFORMS)} or None, got {platform!r}.")
    return CPU_MEMORY_BUDGET if platform.lower() == "cpu" else ACCELERATOR_MEMORY_BUDGET


@dataclasses.dataclass(frozen=True)
class Batching:
    """How a batch is cut into chunks: `chunk_size` points per chunk, or None to plan it from `memory_budget` bytes
    of temporaries (None: `default_memory_budget()`). Validated once, where the user's arguments come in."""

    chunk_size: int | None = None
    memory_budget: int | None = None

    def __post_init__(self):
        hint = " None plans it from the memory budget."
        object.__setattr__(self, "chunk_size", validate.integer("chunk_size", self.chunk_size, minimum=1, none=True,
                                                                hint=hint))  # fmt: skip
        budget = validate.integer("memory_budget", self.memory_budget, minimum=1, none=True,
                                  hint=" In bytes; None is 8 MiB on CPU, 1 GiB on GPU/TPU.")  # fmt: skip
        object.__setattr__(self, "memory_budget", budget)

    def budget(self, platform: str | None = None) -> int:
        """The memory budget in bytes on `platform` (None: the default device's)."""
        return self.memory_budget or default_memory_budget(platform)


# ------------------------------------------------------------------------------------------------- the batch
def as_points(points):
    """`points` with every leaf a JAX array. Nested lists or tuples of numbers are one array (as NumPy reads them),
    not a pytree of scalars; any other pytree keeps its structure."""

    def numbers_only(value):
        if isinstance(value, (list, tuple)):
            return all(numbers_only(v) for v in value)
        return isinstance(value, (int, float, np.number, np.bool_))

    if isinstance(points, (list, tuple)) and numbers_only(points):
        points = np.asarray(points)
    for leaf in jax.tree_util.tree_leaves(points):  # JAX's own error for a dtype it lacks names no fix
        working_dtype(np.result_type(leaf) if not hasattr(leaf, "dtype") else leaf.dtype)
    warn_if_low_precision(points, stacklevel=4)  # before JAX turns float64 into float32 without a word
    return jax.tree_util.tree_map(jnp.asarray, points)


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


def point_dim(points) -> int:
    """d, the number of coordinates of one point of the batch `points`."""
    return sum(math.prod(np.shape(leaf)[1:]) for leaf in jax.tree_util.tree_leaves(points))


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


# ------------------------------------------------------------------------------------------------- the map
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


@functools.partial(jax.jit, static_argnames=("fun", "scheme", "chunk", "with_error"))
def gradient_program(points, rule, *, fun, scheme: Scheme, chunk: int, with_error: bool = False):
    """Gradients (or `Estimate`s) and per-point "step vanished" flags at all points, in one program."""
    return map_points(functools.partial(point_result(with_error), fun, scheme), points, rule, chunk)


# ------------------------------------------------------------------------------------------------- the plan
class Plan(NamedTuple):
    """The chunk chosen for a program and shapes, with what it was chosen from."""

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


def estimated_temp_bytes(points, num_points: int, scheme: Scheme | None) -> int:
    """Fallback when XLA gives no memory analysis: twice the stencil points of `num_points` points."""
    leaves = jax.tree_util.tree_leaves(points)
    dim = sum(math.prod(leaf.shape[1:]) for leaf in leaves)
    itemsize = max(working_dtype(leaf.dtype).itemsize for leaf in leaves)
    return 2 * num_points * (scheme or Central()).evaluations(dim) * max(dim, 1) * itemsize


def plan(program, points, step, budget: int, **static) -> Plan:
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
        temp = estimated_temp_bytes(points, n, static.get("scheme"))
    chunk = n if temp <= budget else max(1, n * budget // temp)
    result = Plan(chunk, compiled if chunk == n else None, temp)
    if key is not None:
        _PLANS[key] = result
        if len(_PLANS) > _MAX_PLANS:
            _PLANS.popitem(last=False)
    return result


def run_program(program, points, step, batching: Batching, **static):
    """Run a jitted `map_points` program with the chunk the caller gave, or the planned one."""
    n = jax.tree_util.tree_leaves(points)[0].shape[0]
    if batching.chunk_size is not None:
        return program(points, step, chunk=min(batching.chunk_size, n), **static)
    budget = batching.budget()
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(points)):
        per_point = estimated_temp_bytes(points, 1, static.get("scheme"))  # under an outer jit: estimate
        return program(points, step, chunk=min(n, max(1, budget // per_point)), **static)
    chosen = plan(program, points, step, budget, **static)
    if chosen.one_pass is not None:
        return chosen.one_pass(points, step)
    return program(points, step, chunk=chosen.chunk, **static)
