"""The engine benchmark: `batch_grad` against the floor (fun alone on the stencil points), jax.grad and NumPy.

Run it as `jaxgrad bench` (or `python -m jaxgrad bench`). Every figure is the median of `repeats` timed runs after a
warm-up run, with the device synchronised (`block_until_ready`); the ratios compare figures of the same run.
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import jax

from . import functions, reference
from ._engine import _stencil_points, batch_grad
from ._stencils import make_stencil
from ._steps import default_step
from ._table import format_table


@dataclasses.dataclass(frozen=True)
class BenchRow:
    """One benchmark configuration and its timings (seconds)."""

    function: str
    dtype: str
    num_points: int
    dim: int
    device: str
    compile_s: float
    batch_grad_s: float
    floor_s: float
    jax_grad_s: float
    reference_s: float
    reference_points: int

    @property
    def ratio_to_floor(self) -> float:
        return self.batch_grad_s / self.floor_s

    @property
    def speedup_over_reference(self) -> float:
        return self.reference_s / self.batch_grad_s


def _median_time(call, repeats: int) -> float:
    jax.block_until_ready(call())  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _floor_time(fun, points, stencil, repeats: int) -> float:
    """Time of `fun` alone, vmapped over the same N·2d stencil points, materialised in memory beforehand."""
    rows_of = lambda x: _stencil_points(x, default_step(x, stencil.order), stencil.offsets, stencil.uses_center)  # noqa: E731
    make_rows = jax.jit(jax.vmap(rows_of))
    rows = jax.block_until_ready(make_rows(points))
    evaluate = jax.jit(jax.vmap(jax.vmap(fun)))
    return _median_time(lambda: evaluate(rows), repeats)


def bench_one(
    fun_name: str, num_points: int, dim: int, dtype: str, *, repeats: int, reference_points: int, seed: int = 0
) -> BenchRow:
    """Time batch_grad, the floor, jax.vmap(jax.grad) and the NumPy reference for one configuration."""
    fun = functions.get(fun_name)
    points_np = fun.sample(num_points, dim, seed=seed, dtype=dtype)
    points = jax.device_put(points_np)
    stencil = make_stencil("central", 2)

    start = time.perf_counter()
    jax.block_until_ready(batch_grad(fun, points))
    compile_s = time.perf_counter() - start
    batch_s = _median_time(lambda: batch_grad(fun, points), repeats)

    # The floor: fun alone, vmapped over the same 2·d·N stencil points, already materialised in memory.
    floor_s = _floor_time(fun, points, stencil, repeats)

    autodiff = jax.jit(jax.vmap(jax.grad(fun)))
    jax_grad_s = _median_time(lambda: autodiff(points), repeats)

    sample = points_np[:reference_points]
    start = time.perf_counter()
    reference.batch_numerical_gradient(fun, sample)
    reference_s = (time.perf_counter() - start) * num_points / len(sample)
    device = jax.devices()[0]
    return BenchRow(
        fun_name,
        dtype,
        num_points,
        dim,
        f"{device.platform}:{device.device_kind}",
        compile_s,
        batch_s,
        floor_s,
        jax_grad_s,
        reference_s,
        len(sample),
    )


def format_rows(rows) -> str:
    """The benchmark table: one line per configuration."""
    body = [
        [
            r.function,
            r.dtype,
            f"{r.num_points:,}",
            r.dim,
            f"{r.compile_s:.2f}",
            f"{r.batch_grad_s * 1e3:.1f}",
            f"{r.num_points / r.batch_grad_s:.3g}",
            f"{r.floor_s * 1e3:.1f}",
            f"{r.ratio_to_floor:.2f}",
            f"{r.jax_grad_s * 1e3:.2f}",
            f"{r.reference_s:.1f}",
            f"{r.speedup_over_reference:,.0f}x",
        ]
        for r in rows
    ]
    headers = [
        "function",
        "dtype",
        "N",
        "d",
        "compile s",
        "batch_grad ms",
        "points/s",
        "floor ms",
        "ratio",
        "jax.grad ms",
        "numpy ref s",
        "vs ref",
    ]
    device = rows[0].device if rows else "?"
    return format_table(
        headers,
        body,
        title=f"jaxgrad bench on {device} (medians; numpy ref: "
        f"{rows[0].reference_points if rows else 0} points, scaled to N)",
    )


def run(
    function: str = "rosenbrock",
    num_points: int = 100_000,
    dim: int = 8,
    dtypes=("float32", "float64"),
    repeats: int = 5,
    reference_points: int = 1000,
    seed: int = 0,
    progress=None,
):
    """All rows of the benchmark, one per dtype."""
    rows = []
    for dtype in dtypes:
        if progress:
            progress(f"{function} d={dim} N={num_points:,} {dtype} ...")
        rows.append(
            bench_one(function, num_points, dim, dtype, repeats=repeats, reference_points=reference_points, seed=seed)
        )
    return rows
