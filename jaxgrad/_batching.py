"""Many points: the batch's checks, the map over points inside one program, and the chunk planner."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import math
import sys
import threading
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.core import jaxprs_in_params

from . import _validate as validate
from ._compile import program
from ._evaluate import REPAIR_SCOPE, leaves_of, point_result, trace_and_replay, warn_if_low_precision, working_dtype
from ._schemes import Scheme

CPU_MEMORY_BUDGET = 32 * 2**20
"""Default budget on CPU (32 MiB): chunks of temporaries about that size ran faster than one pass through RAM
(d = 10 to 100: 1.1-2x), and smaller budgets made cheap small-d jobs loop needlessly (4x slower at d = 2, N = 1e5).
The budget is checked against `peak_bytes`, an unfused upper bound of what XLA keeps."""
ACCELERATOR_MEMORY_BUDGET = 2**30
"""Default budget on GPU/TPU (1 GiB)."""


PLATFORMS = ("cpu", "gpu", "cuda", "rocm", "tpu", "metal")
"""The platforms JAX names."""


def default_memory_budget(platform: str | None = None) -> int:
    """The default `memory_budget` of `batch_grad` on a platform ("cpu", "gpu", "tpu"; None: the default device's).

    Example:
      >>> default_memory_budget("cpu") // 2**20, default_memory_budget("gpu") // 2**20
      (32, 1024)
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
        if self.chunk_size is None and self.memory_budget is None:  # the defaults: nothing to check
            return
        hint = " None plans it from the memory budget."
        object.__setattr__(self, "chunk_size", validate.integer("chunk_size", self.chunk_size, minimum=1, none=True,
                                                                hint=hint))  # fmt: skip
        budget = validate.integer("memory_budget", self.memory_budget, minimum=1, none=True,
                                  hint=" In bytes; None is 32 MiB on CPU, 1 GiB on GPU/TPU.")  # fmt: skip
        object.__setattr__(self, "memory_budget", budget)

    def budget(self, platform: str | None = None) -> int:
        """The memory budget in bytes on `platform` (None: the default device's)."""
        return self.memory_budget or default_memory_budget(platform)


# ------------------------------------------------------------------------------------------------- the batch
def numbers_as_array(points):
    """A nested list or tuple of numbers as one NumPy array (as NumPy reads it), not a pytree of scalars; anything
    else as it is.

    >>> numbers_as_array([3, 4]).tolist(), numbers_as_array({"w": [3, 4]})
    ([3, 4], {'w': [3, 4]})
    """

    def numbers_only(value):
        if isinstance(value, (list, tuple)):
            return all(numbers_only(v) for v in value)
        return isinstance(value, (int, float, np.number, np.bool_))

    return np.asarray(points) if isinstance(points, (list, tuple)) and numbers_only(points) else points


def as_points(points):
    """`points` with every leaf a JAX array. Nested lists or tuples of numbers are one array (as NumPy reads them),
    not a pytree of scalars; any other pytree keeps its structure."""

    points = numbers_as_array(points)
    plain = isinstance(points, jax.Array)  # the usual case: no pytree walk (a few µs a call)
    for leaf in [points] if plain else jax.tree_util.tree_leaves(points):  # JAX's own error for a dtype it lacks
        working_dtype(np.result_type(leaf) if not hasattr(leaf, "dtype") else leaf.dtype)  # names no fix
    warn_if_low_precision(points, stacklevel=4)  # before JAX turns float64 into float32 without a word
    if plain:
        return points
    return jax.tree_util.tree_map(_as_array, points)


def _as_array(leaf):
    """A leaf as a JAX array: a NumPy one is copied and put on the device (jnp.asarray compiled a program per shape
    to copy it; the copy is made on the host, as device_put alone may share the caller's buffer on a CPU), in the
    dtype jnp.asarray gives."""
    if isinstance(leaf, jax.Array):
        return leaf
    if isinstance(leaf, (np.ndarray, np.generic)):
        return jax.device_put(np.array(leaf, copy=True))
    return jnp.asarray(leaf)


def leading_size(points) -> int:
    """N, the leading (batch) size shared by every leaf of `points`, with a clear error when there is none."""
    leaves = leaves_of(points)
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
    if not isinstance(points, (jax.Array, np.ndarray)) or points.ndim != 1:
        return
    try:
        out = jax.eval_shape(fun, jax.ShapeDtypeStruct(points.shape, jax.dtypes.canonicalize_dtype(points.dtype)))
    except Exception:  # any failure means the whole array is no valid point either
        return
    if getattr(out, "shape", None) == ():
        n = points.shape[0]
        raise ValueError(
            f"`points` has shape {points.shape}, which is read as {n} points of shape (), but `fun` takes the "
            f"whole array as one point. Add the batch axis: points[None] (shape (1, {n})), or use jg.grad(fun)(x) "
            "for a single point."
        ) from error


# ------------------------------------------------------------------------------------------------- the plan
def _nbytes(aval) -> int:
    shape, dtype = getattr(aval, "shape", None), getattr(aval, "dtype", None)
    if shape is None or dtype is None:
        return 0
    try:
        return math.prod(shape) * np.dtype(dtype).itemsize
    except TypeError:  # extended dtypes (PRNG keys)
        return math.prod(shape) * 8


def _variables(atoms) -> set:
    return {v for v in atoms if not hasattr(v, "val")}  # literals carry a value


def peak_bytes(jaxpr) -> int:
    """The peak bytes of `jaxpr`'s intermediate values when each is written to memory and freed after its last use
    (nested programs counted at their own peak): an upper bound of XLA's temporaries for it, which XLA lowers by
    fusing, read without compiling anything. The domain repair (`REPAIR_SCOPE`) adds nothing to the peak, only its
    result (the same bytes as the value it replaces) to what is live: its predicate is a few booleans per
    coordinate, and its branch runs only for chunks where a stencil left f's domain, in the stencil's own coordinate
    blocks (its temporaries are the stencil's and a few vectors of d). Counting it would change the plan, so the
    results (a block's coordinates share a noise estimate), of every batch that needs no repair."""
    last_use = {}
    for i, eqn in enumerate(jaxpr.eqns):
        last_use.update(dict.fromkeys(_variables(eqn.invars), i))
    last_use.update(dict.fromkeys(_variables(jaxpr.outvars), len(jaxpr.eqns)))
    given = {*jaxpr.invars, *jaxpr.constvars}
    live = peak = 0
    for i, eqn in enumerate(jaxpr.eqns):
        made = sum(_nbytes(v.aval) for v in eqn.outvars)
        if REPAIR_SCOPE not in str(eqn.source_info.name_stack):
            inner = max((peak_bytes(sub) for sub in jaxprs_in_params(eqn.params)), default=0)
            peak = max(peak, live + inner + made)
        live += made
        live -= sum(_nbytes(v.aval) for v in _variables(eqn.invars) if last_use.get(v) == i and v not in given)
    return peak


class Traced(NamedTuple):
    """`per_point` traced once at one point of the batch: the bytes of its temporaries (`peak_bytes`) and the
    function that replays the trace, so that `fun` is traced once per program, not once more to plan it."""

    bytes: int
    replay: Any


def trace_point(per_point, points, step) -> Traced:
    """Trace `per_point(x, step)` at the first point of the (traced or concrete) batch `points`."""
    one = jax.tree_util.tree_map(lambda leaf: leaf[0], points)
    closed, replay = trace_and_replay(per_point, one, step)
    return Traced(max(peak_bytes(closed.jaxpr), 1), replay)


def balanced(count: int, size: int) -> int:
    """The part size that cuts `count` items into ceil(count / size) parts as equal as possible: the last part is
    then never a sliver that costs a whole part (ceil(N / ceil(N / chunk)))."""
    size = max(1, min(size, count))
    return -(-count // -(-count // size))


class Plan(NamedTuple):
    """How a batch runs: `chunk` points at a time, each point `block` coordinates at a time (None: all at once),
    from the estimate `temp_bytes` of one pass's temporaries (the whole stencil's bytes of one point, times N)."""

    chunk: int
    block: int | None
    temp_bytes: int
    per_point: Any  # the function to map: the replayed trace of the one made to plan (`fun` traced once)


class Fit(NamedTuple):
    """One point's stencil fitted to the budget: the trace to replay, its `block` (None: the whole stencil at once)
    and `whole_bytes`, the temporaries of the whole stencil at once."""

    traced: Traced
    block: int | None
    whole_bytes: int


def fit_blocks(per_point, points, step, batching: Batching, *, units: int, unit: str = "coordinate",
               fix: str = "check fewer coordinates at once (compare(..., directions=K))") -> Fit:  # fmt: skip
    """`per_point` traced at the first of `points`, with its stencil evaluated `block` of its `units` (coordinates,
    pairs of coordinates) at a time when one point's temporaries exceed `batching`'s memory budget: the one planner
    of gradients, Jacobians and Hessians.

    The bytes are read from traces (`peak_bytes`, nothing compiled): the whole stencil first; if it does not fit,
    one unit at a time, whose bytes are the part every block needs (the outputs, d, d·m or d² values, and their
    working copies) plus one unit's own; each unit's own bytes, (whole − one unit) / (units − 1), give the block,
    budget // (bytes per unit), balanced (three traces in all). The budget bounds what grows with the block; the part
    every block needs comes on top, whatever the block. `units` ≤ 1 (a `per_point` that takes no `block=`), or a
    stencil that blocks do not make smaller: the whole stencil at once.

    Raises:
      ValueError: an explicit `memory_budget` below the whole stencil's bytes where blocks cannot help, or below one
        unit's own bytes, naming them and `fix` (checked at trace time, before anything is allocated).
    """
    budget, explicit = batching.budget(), batching.memory_budget
    whole = trace_point(per_point, points, step)
    if whole.bytes <= budget:
        return Fit(whole, None, whole.bytes)
    one = trace_point(functools.partial(per_point, block=1), points, step) if units > 1 else whole
    if one.bytes >= whole.bytes:  # no block would be smaller
        if explicit is not None:
            raise over_budget(whole.bytes, None, explicit, unit, fix)
        return Fit(whole, None, whole.bytes)
    per_unit = -(-(whole.bytes - one.bytes) // (units - 1))
    if per_unit > budget and explicit is not None:
        raise over_budget(per_unit, 1, explicit, unit, fix, fixed=one.bytes - per_unit)
    block = balanced(units, max(1, budget // per_unit))
    if block >= units:  # the whole stencil is within the budget's reach once its fixed part is set aside
        return Fit(whole, None, whole.bytes)
    traced = one if block == 1 else trace_point(functools.partial(per_point, block=block), points, step)
    return Fit(traced, block, whole.bytes)


def plan_for(per_point, points, step, batching, blockable: bool = False) -> Plan:
    """The chunk (and coordinate block) for `per_point` over `points` within `batching`'s memory budget.

    One pass when N points fit the budget, else balanced chunks of about budget / (bytes per point) points. When
    one point alone does not fit and `per_point` takes `block=` (gradients: `blockable`), its coordinates are
    evaluated in blocks (`fit_blocks`). Traced, never compiled: no program is built twice.

    Raises:
      ValueError: one point does not fit an explicit `memory_budget` even a coordinate at a time, the part every
        block needs set aside (`fit_blocks`).
    """
    n = jax.tree_util.tree_leaves(points)[0].shape[0]
    if isinstance(batching, int):
        batching = Batching(chunk_size=batching)
    fit = fit_blocks(per_point, points, step, batching, units=point_dim(points) if blockable else 1)
    chunk = batching.chunk_size or batching.budget() // fit.traced.bytes
    return Plan(balanced(n, chunk), fit.block, n * fit.whole_bytes, fit.traced.replay)


def over_budget(needed: int, block: int | None, memory_budget: int, unit: str = "coordinate",
                fix: str = "check fewer coordinates at once (compare(..., directions=K))",
                fixed: int | None = None) -> ValueError:  # fmt: skip
    """The error for one point whose temporaries (`needed` bytes, `block` units at a time; with `fixed`, `needed` is
    one unit's own bytes beyond the `fixed` ones every block needs) exceed an explicit `memory_budget`: it names
    them and the fix."""
    if fixed is None:
        what = f"One point needs about {needed:,} bytes of temporaries" + (
            f" ({block} {unit}{'s' if block > 1 else ''} at a time)" if block else ""
        )
    else:
        what = (f"One point's stencil needs about {needed:,} bytes of temporaries per {unit}, beyond the {fixed:,} "
                f"that every block of {unit}s needs")  # fmt: skip
    return ValueError(
        f"{what}, more than `memory_budget`={memory_budget:,}. Raise memory_budget to at least {needed:,} "
        f"(or leave it None for the default), or {fix}."
    )


def fit_point(per_point, x, step, batching: Batching | None = None, *, units: int | None = None, **names):
    """`per_point` (traced once) for the single point x, its stencil evaluated in blocks of its `units` (None: its
    coordinates) when it does not fit the memory budget (`fit_blocks`, which `names` the unit and the fix in its
    error; default budget: `default_memory_budget()`): the replay of the chosen trace, so the program does not trace
    `fun` once more."""
    one = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[None], x)
    units = point_dim(one) if units is None else units
    return fit_blocks(per_point, one, step, batching or Batching(), units=units, **names).traced.replay


# ------------------------------------------------------------------------------------------------- progress
MAX_TICKS = 100
"""The most progress ticks one program (one device's shard) sends: more chunks are grouped between ticks."""
_BARS: dict[int, Any] = {}
_BAR_IDS = itertools.count(1)
_BARS_LOCK = threading.Lock()


def new_bar(total: int, desc: str):
    """The bar `progress_bar` shows: tqdm on stderr, in points."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="pt", unit_scale=total >= 10_000, file=sys.stderr, dynamic_ncols=True)


def tick(bar_id, count) -> None:
    """Advance the open bar `bar_id` by `count` points, never past its total (a sharded run's padding points are not
    shown); a bar already closed (the program ran under the user's own jit) is ignored. Runs on the host: called by
    the program's `jax.debug.callback`, or directly by host code."""
    with _BARS_LOCK:
        bar = _BARS.get(int(bar_id))
        if bar is not None:
            bar.update(max(0, min(int(count), bar.total - bar.n)))


def progress_bar(total: int, enabled: bool, desc: str = "batch_grad"):
    """A progress bar of `total` points while the `with` block runs: yields the bar's id (an int32 scalar to pass
    to a `map_points` program as `progress`), or None when not `enabled` (no bar, no callback in the program). The
    block must wait for its results (`jax.block_until_ready`) before it ends; the bar closes after every tick."""
    return _bar(total, desc) if enabled else contextlib.nullcontext()


def set_total(bar_id, total: int) -> None:
    """Make the open bar `bar_id` count to `total` points (a process that computes only some of them)."""
    with _BARS_LOCK:
        bar = _BARS.get(int(bar_id))
        if bar is not None:
            bar.total = total
            bar.refresh()


@contextlib.contextmanager
def _bar(total: int, desc: str):
    bar_id = next(_BAR_IDS)
    with _BARS_LOCK:
        _BARS[bar_id] = new_bar(total, desc)
    try:
        yield np.int32(bar_id)
    finally:
        jax.effects_barrier()  # every tick of the program has reached the bar
        with _BARS_LOCK:
            _BARS.pop(bar_id).close()


def _ticked(results, count, progress):
    """`results`, with the host told `count` more points are done once they are computed (nothing if `progress` is
    None). The optimization barrier makes the callback wait for this chunk's results, not fire as it starts."""
    if progress is None:
        return results
    results, count = lax.optimization_barrier((results, jnp.asarray(count, jnp.int32)))
    jax.debug.callback(tick, progress, count)  # unordered: ordered effects cannot run on several devices (shard_map)
    return results


# ------------------------------------------------------------------------------------------------- the map
def map_points(per_point, points, step, chunk, blockable: bool = False, progress=None):
    """`per_point(x, step)` at every point (leading axis of `points`), inside a traced program.

    `chunk` is a `Batching` (the chunk planned by `plan_for`, within its memory budget) or a number of points. One
    vmap if the chunk is N; else a loop over balanced chunks whose outputs are written into buffers of N rows. The
    last chunk starts at N - chunk (overlapping the one before by less than a chunk, recomputed identically), so
    the points are never padded or copied and `per_point` is traced once.

    With `progress` (a bar id from `progress_bar`) one host callback ticks the bar by the new points of each chunk
    as it finishes (one tick of N for one pass; the ticks sum to N). Beyond `MAX_TICKS` chunks, consecutive chunks
    are grouped (an inner loop) and each group ticks once: a callback cost ~0.5-1 ms on a busy 2-core CPU, and one
    per chunk made 1,924 chunks of 52 points 1.8× slower. With None the program has no callback at all.
    """
    n = jax.tree_util.tree_leaves(points)[0].shape[0]
    if isinstance(chunk, Batching) or blockable:
        chosen = plan_for(per_point, points, step, chunk, blockable)
        chunk, per_point = chosen.chunk, chosen.per_point
    batched = jax.vmap(per_point, in_axes=(0, None))
    if chunk >= n:
        return _ticked(batched(points, step), n, progress)

    def take(tree, start):
        return jax.tree_util.tree_map(lambda leaf: lax.dynamic_slice_in_dim(leaf, start, chunk), tree)

    shapes = jax.eval_shape(batched, take(points, 0), step)
    out = jax.tree_util.tree_map(lambda s: jnp.zeros((n, *s.shape[1:]), s.dtype), shapes)

    def body(i, out):
        start = jnp.minimum(i * chunk, n - chunk)
        results = batched(take(points, start), step)
        return jax.tree_util.tree_map(lambda o, r: lax.dynamic_update_slice_in_dim(o, r, start, 0), out, results)

    chunks = -(-n // chunk)
    if progress is None:
        return lax.fori_loop(0, chunks, body, out)
    group = -(-chunks // MAX_TICKS)  # chunks per tick

    def ticking(g, out):
        first, stop = g * group, jnp.minimum((g + 1) * group, chunks)
        out = body(first, out) if group == 1 else lax.fori_loop(first, stop, body, out)
        return _ticked(out, jnp.minimum(n, stop * chunk) - first * chunk, progress)

    return lax.fori_loop(0, -(-chunks // group), ticking, out)


@functools.partial(program, static_argnames=("fun", "scheme", "chunk", "with_error", "repair"))
def gradient_program(points, rule, *, fun, scheme: Scheme, chunk, with_error: bool = False, repair: bool = True,
                     progress=None):  # fmt: skip
    """Gradients (or `Estimate`s) and per-point "step vanished" flags at all points, in one program; `chunk` and
    `progress` (None, or a bar id: an argument, so one program serves every bar) as in `map_points` (a `Batching`
    plans chunks and coordinate blocks); `repair`: with the domain repair (`_evaluate.lazily_repaired`). The flags
    are None for rules whose steps cannot vanish (not `reports_vanished`): XLA then need not compute them (a boolean
    output costs ~35 µs a call on CPU)."""
    per_point = functools.partial(point_result(with_error, repair), fun, scheme)
    result, vanished = map_points(per_point, points, rule, chunk, isinstance(chunk, Batching), progress)
    return result, (vanished if rule.reports_vanished else None)  # only the user's own steps can vanish


def plan(points, step, budget: int, *, fun, scheme: Scheme, with_error: bool = False) -> Plan:
    """The `Plan` (chunk, coordinate block, estimated temporaries) `gradient_program` makes for these points within
    `budget` bytes, read by tracing one point (nothing is compiled)."""
    per_point = functools.partial(point_result(with_error, repair=False), fun, scheme)  # the repair: not in the plan
    return plan_for(per_point, points, step, Batching(memory_budget=budget), blockable=True)


def run_batching(batching: Batching, points) -> Batching:
    """The `Batching` a program runs `points` with: a `chunk_size` of N or more is one pass of N (one program for
    every such size)."""
    if batching.chunk_size is not None and batching.chunk_size >= (n := jax.tree_util.tree_leaves(points)[0].shape[0]):
        return Batching(n, batching.memory_budget)
    return batching


def run_program(program, points, step, batching: Batching, progress=None, **static):
    """Run a jitted `map_points` program within `batching`: its own chunk size, or one planned inside the program
    from the memory budget (one compile per shapes and options, called through jit's fast path). With `progress` (a
    bar id from `progress_bar`; the program must take it) it waits for the results, so every tick has arrived."""
    batching = run_batching(batching, points)
    if progress is None:
        return program(points, step, chunk=batching, **static)
    return jax.block_until_ready(program(points, step, chunk=batching, progress=progress, **static))
