"""The benchmark: `batch_grad` against the floor (fun alone on the stencil points), jax.grad, the NumPy reference and
scipy.differentiate, over functions, dimensions, batch sizes, dtypes and methods.

Run it as `jaxgrad bench` (or `--quick`). Every time is the median of `repeats` timed runs after a warm-up run, with
the device synchronised (`block_until_ready`); compile time is the first call minus that median. All figures of a
table come from one run on one machine, so their ratios are comparable; the machines are shared and noisy.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from . import functions, reference
from ._batching import default_memory_budget, gradient_program, plan
from ._grad import batch_grad
from ._schemes import as_scheme
from ._steps import DefaultStep, default_step
from ._table import format_table
from .numerics import relative_error

FLOOR_LIMIT = 2**30
"""The floor materialises N·evaluations·d stencil values; above this many bytes it is not measured."""


def mlp(dim: int):
    """A small MLP loss as a function of its d inputs: f(x) = ½ (w2 · tanh(W1 x + b1))², 16 hidden units, fixed
    weights drawn from `dim`. Works on NumPy and JAX arrays, with its gradient by hand."""
    rng = np.random.default_rng(dim)
    w1, b1, w2 = rng.normal(size=(16, dim)) / math.sqrt(dim), rng.normal(size=16), rng.normal(size=16) / 4

    def fun(x):
        xp = np if isinstance(x, np.ndarray) else jnp
        y = xp.tanh(x @ xp.asarray(w1, x.dtype).T + xp.asarray(b1, x.dtype)) @ xp.asarray(w2, x.dtype)
        return 0.5 * y**2

    def gradient(x):
        a = np.tanh(x @ w1.T + b1)
        y = a @ w2
        return (y[..., None] * (w2 * (1 - a**2))) @ w1

    fun.__name__ = "mlp"
    return functions.BuiltinFunction("mlp", fun, gradient, (-2.0, 2.0), 1, None, "½ (w2·tanh(W1 x + b1))²")


def _function(name: str, dim: int):
    return mlp(dim) if name == "mlp" else functions.get(name)


@dataclasses.dataclass(frozen=True)
class BenchRow:
    """One configuration: times in seconds (None where not measured), errors as median |g − g*|/|g*|."""

    function: str
    dim: int
    num_points: int
    dtype: str
    method: str
    device: str
    compile_s: float
    batch_grad_s: float
    error: float
    floor_s: float | None
    jax_grad_s: float
    reference_s: float
    reference_error: float
    scipy_s: float | None
    scipy_error: float | None
    chunk: int
    program_bytes: int
    auto_s: float | None = None
    auto_ratio: float | None = None  # median over rounds of (step="auto" time / fixed-step time), interleaved
    auto_error: float | None = None

    def to_dict(self) -> dict:
        """The row as plain Python, with the derived ratios."""
        derived = {"ratio_to_floor": self.ratio_to_floor, "speedup_over_reference": self.speedup_over_reference,
                   "speedup_over_scipy": self.speedup_over_scipy}  # fmt: skip
        return dict(dataclasses.asdict(self), **derived)

    @property
    def ratio_to_floor(self) -> float | None:
        return None if self.floor_s is None else self.batch_grad_s / self.floor_s

    @property
    def speedup_over_reference(self) -> float:
        return self.reference_s / self.batch_grad_s

    @property
    def speedup_over_scipy(self) -> float | None:
        return None if self.scipy_s is None else self.scipy_s / self.batch_grad_s


def _median_time(call, repeats: int) -> tuple[float, float]:
    """(first call, median of `repeats` later calls), in seconds, each synchronised."""
    start = time.perf_counter()
    jax.block_until_ready(call())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def _interleaved_ratio(base, other, repeats: int) -> tuple[float, float]:
    """(median time of `other`, median over rounds of other/base), the two calls alternating after a warm-up of
    each, so that the load of a shared machine hits both alike."""
    jax.block_until_ready(base())
    jax.block_until_ready(other())
    times, ratios = [], []
    for _ in range(max(repeats, 3)):
        start = time.perf_counter()
        jax.block_until_ready(base())
        middle = time.perf_counter()
        jax.block_until_ready(other())
        end = time.perf_counter()
        times.append(end - middle)
        ratios.append((end - middle) / (middle - start))
    return statistics.median(times), statistics.median(ratios)


def _rel(g, exact) -> float:
    return float(np.median(relative_error(g, exact)))


def _floor_time(fun, points, stencil, repeats: int) -> float | None:
    """Time of `fun` alone, vmapped over the same stencil points, materialised in memory beforehand."""
    n, d = points.shape
    if n * stencil.evaluations(d) * d * points.dtype.itemsize > FLOOR_LIMIT:
        return None

    def rows_of(x):
        return stencil.points(x, default_step(x, exponent=stencil.step_exponent))

    rows = jax.block_until_ready(jax.jit(jax.vmap(rows_of))(points))
    evaluate = jax.jit(jax.vmap(jax.vmap(fun)))
    return _median_time(lambda: evaluate(rows), repeats)[1]


def _scipy_time(fun, points: np.ndarray):
    """scipy.differentiate.jacobian (vectorised over the points) on `points`: (seconds, its gradients) or None."""
    try:
        from scipy.differentiate import jacobian
    except ImportError:
        return None
    start = time.perf_counter()
    result = jacobian(lambda xi: fun(np.moveaxis(xi, 0, -1)), points.T)
    return time.perf_counter() - start, result.df.T


def bench_one(name, dim, num_points, dtype, method, order, *, repeats=5, reference_points=200, scipy_points=2000,
              seed=0, cache=None) -> BenchRow:  # fmt: skip
    """One row: batch_grad, the floor, jax.grad, the NumPy reference and scipy at one configuration."""
    cache = {} if cache is None else cache
    fun = _function(name, dim)
    points_np = fun.sample(num_points, dim, seed=seed, dtype=dtype)
    exact = fun.gradient(points_np.astype(np.float64))
    points = jax.device_put(points_np)
    stencil = as_scheme(method, order)
    first, batch_s = _median_time(lambda: batch_grad(fun, points, method=method, order=order), repeats)
    error = _rel(batch_grad(fun, points, method=method, order=order), exact)
    auto = functools.partial(batch_grad, fun, points, method=method, order=order, step="auto")
    auto_s, auto_ratio = _interleaved_ratio(lambda: batch_grad(fun, points, method=method, order=order), auto, repeats)
    auto_error = _rel(auto(), exact)
    chosen = plan(gradient_program, points, DefaultStep(), default_memory_budget(), fun=fun, scheme=stencil)
    floor_s = _floor_time(fun, points, stencil, repeats)
    autodiff = jax.jit(jax.vmap(jax.grad(fun)))
    jax_grad_s = _median_time(lambda: autodiff(points), repeats)[1]
    key = (name, dim, dtype)
    if key not in cache:  # the baselines do not depend on the method or on N: measure them once, scale to N
        sample = points_np[:reference_points]
        start = time.perf_counter()
        ref = reference.batch_numerical_gradient(fun, sample)
        per_ref = (time.perf_counter() - start) / len(sample)
        cache[key] = {"reference": (per_ref, _rel(ref, exact[: len(sample)]))}
        scipy_run = _scipy_time(fun, points_np[:scipy_points].astype(np.float64)) if dtype == "float64" else None
        if scipy_run is not None:
            seconds, grads = scipy_run
            cache[key]["scipy"] = (seconds / len(grads), _rel(grads, exact[: len(grads)]))
    per_ref, ref_error = cache[key]["reference"]
    per_scipy, scipy_error = cache[key].get("scipy", (None, None))
    memory = 0
    if chosen.one_pass is not None:
        analysis = chosen.one_pass.memory_analysis()
        memory = sum(getattr(analysis, f, 0) for f in ("temp_size_in_bytes", "argument_size_in_bytes",
                                                        "output_size_in_bytes"))  # fmt: skip
    device = jax.devices()[0]
    return BenchRow(
        name, dim, num_points, dtype, f"{stencil.method} {stencil.order}", _describe(device),
        max(first - batch_s, 0.0), batch_s, error, floor_s, jax_grad_s, per_ref * num_points, ref_error,
        None if per_scipy is None else per_scipy * num_points, scipy_error, chosen.chunk, memory, auto_s, auto_ratio,
        auto_error,
    )  # fmt: skip


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def format_rows(rows) -> str:
    """The benchmark table."""
    body = [
        [r.function, r.dim, f"{r.num_points:,}", r.dtype, r.method, f"{r.compile_s:.2f}", f"{r.batch_grad_s * 1e3:.2f}",
         f"{r.num_points / r.batch_grad_s:.3g}", f"{r.num_points * r.dim / r.batch_grad_s:.3g}", f"{r.error:.1e}",
         _fmt(None if r.floor_s is None else r.floor_s * 1e3, ".2f"), _fmt(r.ratio_to_floor, ".2f"),
         f"{r.jax_grad_s * 1e3:.2f}", f"{r.reference_s:.3g}", f"{r.speedup_over_reference:,.0f}x",
         _fmt(r.scipy_s, ".3g"), _fmt(r.scipy_error, ".1e"), _fmt(r.speedup_over_scipy, ",.0f"),
         f"{r.chunk:,}", _fmt(r.program_bytes / 2**20 if r.program_bytes else None, ".1f"),
         _fmt(None if r.auto_s is None else r.auto_s * 1e3, ".2f"), _fmt(r.auto_ratio, ".2f"),
         _fmt(r.auto_error, ".1e")]
        for r in rows
    ]  # fmt: skip
    headers = ["fun", "d", "N", "dtype", "method", "compile s", "batch_grad ms", "points/s", "coords/s", "error",
               "floor ms", "ratio", "jax.grad ms", "numpy s", "vs numpy", "scipy s", "scipy error", "vs scipy",
               "chunk", "MiB", "auto ms", "auto/fixed", "auto error"]  # fmt: skip
    device = rows[0].device if rows else "?"
    title = f"jaxgrad bench on {device}; times are medians of --repeats runs after a warm-up, device synchronised"
    return format_table(headers, body, title=title) + "\n" + LEGEND


LEGEND = """\
compile s      the first call's extra time (tracing and compiling)
batch_grad ms  jg.batch_grad on all N points; points/s and coords/s are N and N·d per second
error          median over points of |g − g*| / |g*|, g* the analytic gradient
floor ms       fun alone, vmapped over the same stencil points already in memory ("-": they would not fit)
ratio          batch_grad / floor: what the perturbation and the differencing cost beyond evaluating fun
jax.grad ms    jax.jit(jax.vmap(jax.grad(fun))) on the same points
numpy s        the NumPy reference loop (jaxgrad.reference), timed on --reference-points points, scaled to N
vs numpy       numpy s / batch_grad
scipy s        scipy.differentiate.jacobian, float64 only, timed on up to 2,000 points, scaled to N; scipy error
               as error above; vs scipy = scipy s / batch_grad (compare rows of similar error)
chunk          points per chunk of the compiled map (N: one pass)
MiB            memory of the one-pass program, from XLA's analysis ("-": too large, so it runs chunked)
auto ms        batch_grad with step="auto" (steps chosen per point and coordinate: 4·d + 1 more evaluations)
auto/fixed     median over rounds of auto / batch_grad, the two timed alternately in one run; auto error as error"""


def _describe(device) -> str:
    """E.g. "gpu (NVIDIA H200)" or "cpu"."""
    kind = device.device_kind
    return device.platform if kind == device.platform else f"{device.platform} ({kind})"


QUICK = {"functions": ("sphere", "rosenbrock", "mlp"), "dims": (2, 10, 100), "sizes": (10_000, 100_000),
         "dtypes": ("float32", "float64"), "methods": (("central", 2), ("richardson", 6))}  # fmt: skip
FULL = {"functions": ("sphere", "rosenbrock", "mlp"), "dims": (2, 10, 100, 1000),
        "sizes": (1_000, 10_000, 100_000, 1_000_000), "dtypes": ("float32", "float64"),
        "methods": (("central", 2), ("central", 4), ("richardson", 6))}  # fmt: skip
MATCHED_ACCURACY_ONLY = {("richardson", 6): ("float64",)}
"""Methods run only in some dtypes: Richardson is there to meet scipy.differentiate's float64 accuracy (~1e-14)."""
MAX_WORK = 2e10
"""Skip configurations whose stencil work N·evaluations(d)·d exceeds this (a minute or more on two CPU cores)."""


def configurations(matrix, functions_=None, dims=None, sizes=None, dtypes=None):
    """Every (function, d, N, dtype, method, order) of a matrix, without the ones too big to run."""
    for name in functions_ or matrix["functions"]:
        for dim in dims or matrix["dims"]:
            for n in sizes or matrix["sizes"]:
                for dtype in dtypes or matrix["dtypes"]:
                    for method, order in matrix["methods"]:
                        if dtype not in MATCHED_ACCURACY_ONLY.get((method, order), (dtype,)):
                            continue
                        if n * as_scheme(method, order).evaluations(dim) * dim <= MAX_WORK:
                            yield name, dim, n, dtype, method, order


def run(matrix=QUICK, *, functions_=None, dims=None, sizes=None, dtypes=None, repeats=5, reference_points=200,
        seed=0, progress=None):  # fmt: skip
    """All rows of a benchmark matrix."""
    cache, rows = {}, []
    for name, dim, n, dtype, method, order in configurations(matrix, functions_, dims, sizes, dtypes):
        if progress:
            progress(f"{name} d={dim} N={n:,} {dtype} {method} {order}")
        rows.append(bench_one(name, dim, n, dtype, method, order, repeats=repeats, reference_points=reference_points,
                              seed=seed, cache=cache))  # fmt: skip
    return rows


def large(num_points=1_000_000, dim=100, name="rosenbrock", dtype="float32", seed=0) -> str:
    """One memory-bounded run of N points of dimension d (default 1e6 × 100 float32, whose naive stencil needs
    N·2d·d·4 = 80 GB): the time, the chunk the plan chose and the accuracy on a sample. Peak memory is best read
    from outside, e.g. `/usr/bin/time -v jaxgrad bench --large`."""
    fun = _function(name, dim)
    low, high = fun.domain
    points = jax.random.uniform(jax.random.key(seed), (num_points, dim), jnp.dtype(dtype), low, high)
    jax.block_until_ready(points)
    start = time.perf_counter()
    grads = jax.block_until_ready(batch_grad(fun, points))
    seconds = time.perf_counter() - start
    chosen = plan(gradient_program, points, DefaultStep(), default_memory_budget(), fun=fun, scheme=as_scheme())
    sample = np.arange(0, num_points, max(1, num_points // 1000))
    error = _rel(np.asarray(grads[sample]), fun.gradient(np.asarray(points[sample], np.float64)))
    naive = num_points * as_scheme().evaluations(dim) * dim * jnp.dtype(dtype).itemsize
    rows = [
        [
            name,
            dim,
            f"{num_points:,}",
            dtype,
            f"{seconds:.2f}",
            f"{num_points / seconds:.3g}",
            f"{chosen.chunk:,}",
            f"{chosen.temp_bytes / 1e9:.1f}",
            f"{naive / 1e9:.1f}",
            f"{2 * points.nbytes / 1e9:.2f}",
            f"{error:.1e}",
        ]
    ]
    headers = ["fun", "d", "N", "dtype", "seconds (incl. compile)", "points/s", "chunk", "one-pass temp GB",
               "naive stencil GB", "inputs+outputs GB", "error"]  # fmt: skip
    device = jax.devices()[0]
    return format_table(headers, rows, title=f"jaxgrad bench --large on {_describe(device)}")
