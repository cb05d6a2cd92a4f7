"""Scale: spreading points over devices (sharding) and streaming results chunk by chunk to the host.

Several devices: `batch_grad(..., sharding="auto")` puts the points on a 1-D mesh over `jax.devices()` (a
`NamedSharding` with `PartitionSpec("points")`), pads N to a multiple of the device count with copies of the last
point, runs the same chunked program on every device's shard (`jax.shard_map`), and drops the padding. The same code
runs on several GPUs of one host. On several hosts, call `jax.distributed.initialize()` first in every process; then
`jax.devices()` lists the devices of all hosts and "auto" spans them (each process passes the same global `points`,
or builds them with `jax.make_array_from_process_local_data` and the sharding of `points_sharding()`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from . import _batching
from . import _validate as validate
from ._batching import Batching, gradient_program, raise_if_missing_batch_axis
from ._compile import program
from ._evaluate import gradient_values, hashable, lazily_repaired, working_dtype, working_dtypes
from ._schemes import Scheme, as_scheme
from ._steps import as_step_rule, raise_if_step_vanished

AXIS = "points"


def points_sharding(sharding="auto") -> NamedSharding:
    """The `NamedSharding` that splits the leading (points) axis: "auto" builds a 1-D mesh over `jax.devices()`; a
    `Mesh` is split along its first axis; a `NamedSharding` is taken as it is (its spec's first entry names the
    axis the points are split along). With `jax.distributed` initialized, "auto" spans every process's devices: pass
    it to `jax.make_array_from_process_local_data` to build the points from each process's own rows.

    Example:
      >>> import jaxgrad as jg
      >>> sharding = jg.points_sharding()
      >>> tuple(sharding.spec), sharding.mesh.axis_names
      (('points',), ('points',))
    """
    if isinstance(sharding, NamedSharding):
        return sharding
    if isinstance(sharding, Mesh):
        return NamedSharding(sharding, P(sharding.axis_names[0]))
    if isinstance(sharding, str) and sharding == "auto":
        return NamedSharding(Mesh(np.asarray(jax.devices()), (AXIS,)), P(AXIS))
    raise ValueError(
        f"`sharding` must be None, 'auto', a jax.sharding.Mesh or a NamedSharding, got {sharding!r}. Use 'auto' to "
        "spread the points over every device."
    )


def _axis_of(sharding: NamedSharding):
    """The mesh axis (a name, or a tuple of names) the points are split along."""
    first = sharding.spec[0] if len(sharding.spec) else None
    if first is None:
        raise ValueError("the `sharding`'s PartitionSpec must split the leading (points) axis, e.g. P('points').")
    return first


def _devices_along(mesh, axis) -> int:
    """How many shards the points are split into along `axis` (a product over a tuple of mesh axes)."""
    names = axis if isinstance(axis, tuple) else (axis,)
    return int(np.prod([mesh.shape[name] for name in names]))


def pad_points(points, multiple: int):
    """Pad the leading axis to a multiple of `multiple` with copies of the last point; returns (padded, N)."""
    n = jax.tree_util.tree_leaves(points)[0].shape[0]
    pad = (-n) % multiple
    if not pad:
        return points, n
    return jax.tree_util.tree_map(lambda leaf: jnp.concatenate([leaf, jnp.repeat(leaf[-1:], pad, axis=0)]), points), n


@functools.partial(program, static_argnames=("fun", "scheme", "with_error", "batching", "mesh", "axis", "repair"))
def _sharded_gradient(points, rule, progress=None, *, fun, scheme, with_error, batching, mesh, axis, repair=True):
    def local(shard, st, bar):  # traced with one device's shard, so the chunks are planned for one device
        return gradient_program(shard, st, fun=fun, scheme=scheme, chunk=batching, with_error=with_error,
                                repair=repair, progress=bar)  # fmt: skip

    mapped = jax.shard_map(local, mesh=mesh, in_specs=(P(axis), P(), P()), out_specs=P(axis), check_vma=False)
    return mapped(points, rule, progress)


def run_sharded(fun, scheme: Scheme, with_error: bool, points, rule, sharding, batching: Batching, progress=None,
                repair: bool = True):  # fmt: skip
    """`batch_grad` with the points split across devices: pad, place, run the chunked map on every shard, unpad.

    Every device runs the one-device program (`gradient_program`) on its shard, with the chunks that `batching`
    plans for one shard. Works across processes (`jax.distributed`): each process places and computes only its own
    devices' shards. With `progress` (a bar id), every device ticks the bar per chunk of its own shard and the call
    waits for the results; the bar counts N (the padding is not shown), or the rows this process's devices compute
    when that differs (a share of N on each of several hosts; replicas on a mesh of several axes count each time).
    `repair`: with the domain repair (`_evaluate.lazily_repaired`). Returns (gradients, per-point "step vanished"
    flags).
    """
    sharding = points_sharding(sharding)
    axis = _axis_of(sharding)
    padded, n = pad_points(points, _devices_along(sharding.mesh, axis))
    placed = jax.device_put(padded, sharding)
    if progress is not None:  # the rows this process's devices compute, when not N once (other hosts, replicas)
        leaf = jax.tree_util.tree_leaves(placed)[0]
        local = sum(shard.data.shape[0] for shard in leaf.addressable_shards)
        if local != leaf.shape[0]:
            _batching.set_total(progress, local)
    result = _sharded_gradient(placed, rule, progress, fun=fun, scheme=scheme, with_error=with_error,
                               batching=batching, mesh=sharding.mesh, axis=axis, repair=repair)  # fmt: skip
    if progress is not None:
        result = jax.block_until_ready(result)
    return jax.tree_util.tree_map(lambda leaf: leaf[:n], result)


def stream_grad(
    fun,
    points,
    *,
    chunk_size: int = 65536,
    method="central",
    order: int | None = None,
    step=None,
    out=None,
    progress: bool = False,
):
    """Gradients chunk by chunk, on the host's schedule: yields (start, stop, gradients) for each chunk as it
    finishes, and writes it into `out` (a NumPy array or `np.lib.format.open_memmap` of the result's shape) when
    given. An interrupted run keeps every finished chunk, e.g. in the memmapped .npy file.

    Every chunk has the same shape (the last one starts at N − chunk and overlaps the one before), so one compiled
    program serves them all. For results that fit in memory, one `batch_grad` call is simpler and as fast.

    Args:
      fun: scalar function of one point (an array), traceable by JAX.
      points: (N, ...) array (NumPy arrays stay on the host; each chunk is moved to the device when its turn comes).
      chunk_size: points per chunk.
      method, order, step: as in `grad`.
      out: optional array of shape points.shape to write the gradients into.
      progress: True shows a tqdm bar on stderr, in points, advanced as each chunk finishes (each chunk is one
        program call, so the host ticks it; the overlap of the last chunk is not counted twice). It closes when the
        loop ends, is broken off, or the generator is closed. False (the default): no bar.

    Example:
      >>> import numpy as np, jaxgrad as jg
      >>> points = np.random.default_rng(0).normal(size=(10, 3))
      >>> out = np.zeros_like(points)
      >>> [(a, b) for a, b, _ in jg.stream_grad(jg.functions.sphere, points, chunk_size=4, out=out)]
      [(0, 4), (4, 8), (6, 10)]
      >>> bool(np.allclose(out, 2 * points, rtol=1e-3, atol=1e-3))
      True
    """
    scheme = as_scheme(method, order)
    rule = as_step_rule(step)
    fun = hashable(fun)
    progress = validate.boolean("progress", progress)
    Batching(chunk_size=chunk_size)  # validates chunk_size
    if not hasattr(points, "shape") or np.ndim(points) < 1:
        raise TypeError(
            f"`points` must be an (N, ...) array for stream_grad, got {type(points).__name__}. For a pytree of "
            "points use batch_grad, or ravel each point into one array first."
        )
    n = len(points)
    rule.check(working_dtypes(points[:1]), scheme.reach)
    if out is not None and tuple(out.shape) != tuple(np.shape(points)):
        raise ValueError(f"`out` must have the shape of `points`, {np.shape(points)}, got {tuple(out.shape)}.")
    if out is not None:
        result = np.dtype(jax.dtypes.canonicalize_dtype(working_dtype(np.result_type(points))))
        if not (np.issubdtype(out.dtype, np.floating) and np.finfo(out.dtype).bits >= np.finfo(result).bits):
            raise TypeError(f"`out` has dtype {out.dtype}, which would truncate the {result} gradients; pass an "
                            f"array of dtype {result}.")  # fmt: skip
    chunk = min(chunk_size, n)
    done = 0
    bar = _batching.new_bar(n, "stream_grad") if progress else None
    try:
        while done < n:
            start = min(done, n - chunk)
            part = jnp.asarray(points[start : start + chunk])
            try:
                grads, vanished = lazily_repaired(
                    lambda repair, part=part: gradient_program(part, rule, fun=fun, scheme=scheme, chunk=chunk,
                                                               repair=repair),
                    scheme, part, gradient_values,
                )  # fmt: skip
            except Exception as error:  # one point of d coordinates passed as d points of shape ()
                raise_if_missing_batch_axis(fun, points, error)
                raise
            raise_if_step_vanished(vanished, rule)
            grads = np.asarray(grads)
            if out is not None:
                out[start : start + chunk] = grads
                if hasattr(out, "flush"):
                    out.flush()
            if bar is not None:
                bar.update(start + chunk - done)
            yield start, start + chunk, grads
            done = start + chunk
    finally:
        if bar is not None:
            bar.close()
