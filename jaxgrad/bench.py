"""The benchmark: `batch_grad` (A) against the six lines a user would write instead (B, `hand_written`), the floor
(D: fun alone on the stencil points already in memory), jax.grad, the NumPy reference and scipy.differentiate, over
functions, dimensions, batch sizes, dtypes and methods.

Run it as `jaxgrad bench` (or `--quick`), and the side-by-side A/B/D matrix as `jaxgrad bench --compare` (`compare`).
Every time is the median of `repeats` timed runs after a warm-up run, with the device synchronised
(`block_until_ready`); compile time is the first call minus that median. Ratios are medians over rounds of per-round
ratios, the calls interleaved, so that the load of a shared machine hits both alike. All figures of a table come from
one run on one machine; the machines are shared and noisy.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
import time

import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np

from . import functions, reference
from ._batching import default_memory_budget, plan
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
    hand_s: float | None = None  # B, `hand_written` (central order 2 only)
    hand_ratio: float | None = None  # median over rounds of (batch_grad time / B time), interleaved
    hand_compile_s: float | None = None

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
    times = _interleaved({"base": base, "other": other}, max(repeats, MIN_ROUNDS))
    return statistics.median(times["other"]), _ratio(times, "other", "base")


def _rel(g, exact) -> float:
    return float(np.median(relative_error(g, exact)))


def hand_written(fun):
    """B, the baseline: the central differences a JAX user writes by hand instead of installing jaxgrad, with
    jaxgrad's default step (eps^(1/3)·max(|x_i|, 1) rounded to a power of two, as `batch_grad`'s default):
    g_i = (f(x + h_i e_i) − f(x − h_i e_i)) / (2 h_i), error O(h²) + O(eps·|f|/h). Jitted, vmapped over points.

    Example:
      >>> import jax.numpy as jnp
      >>> from jaxgrad import functions
      >>> print(hand_written(functions.sphere)(jnp.array([[3.0, 4.0]])))
      [[6. 8.]]
    """

    def gradient(x):
        h = default_step(x, 2)
        H = jnp.diag(h)  # H = h·eye(d): row i moves coordinate i by h_i
        return (jax.vmap(fun)(x[None] + H) - jax.vmap(fun)(x[None] - H)) / (2 * h)

    return jax.jit(jax.vmap(gradient))


def stencil_rows(points):
    """The 2·d·N points of B's stencil, x ± h_i e_i for every point x, as one (2·d·N, d) array (materialised).

    Example:
      >>> import jax.numpy as jnp
      >>> print(stencil_rows(jnp.array([[3.0, 4.0]], jnp.float32)))  # h = 2^-6 = eps^(1/3)·|x_i| rounded, float32
      [[3.015625 4.      ]
       [3.       4.015625]
       [2.984375 4.      ]
       [3.       3.984375]]
    """

    def rows(x):
        H = jnp.diag(default_step(x, 2))
        return jnp.concatenate([x[None] + H, x[None] - H])

    return jax.jit(jax.vmap(rows))(points).reshape(-1, points.shape[-1])


MIN_ROUNDS = 3
"""Rounds every interleaved measurement makes, whatever its time budget."""


def _interleaved(calls: dict, rounds: int, budget_s: float | None = None, inner: int = 1) -> dict[str, list[float]]:
    """Every call `inner` times in a row per round, the calls in the given order, synchronised (the callers have
    made each call once already): the time of one call per round, by name. With `budget_s`, no new round starts
    after that many seconds, once `MIN_ROUNDS` are done."""
    times = {name: [] for name in calls}
    start_all = time.perf_counter()
    for done in range(rounds):
        if budget_s is not None and done >= MIN_ROUNDS and time.perf_counter() - start_all > budget_s:
            break
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(inner):
                jax.block_until_ready(call())
            times[name].append((time.perf_counter() - start) / inner)
    return times


TIMING_S = 0.02
"""--compare repeats calls faster than this within a round (timeit's `number`), so that each timing spans at least
this long and a shared machine's scheduling noise weighs less."""


BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
_compiles: list[float] | None = None
"""The backend compile durations seen while `_compiling` counts them, else None."""


def _on_duration(event: str, duration: float, **kwargs) -> None:
    if _compiles is not None and event == BACKEND_COMPILE:
        _compiles.append(duration)


@functools.cache
def _listen() -> None:
    """Register `_on_duration` with jax.monitoring, once per process (older JAX cannot unregister a listener)."""
    jax.monitoring.register_event_duration_secs_listener(_on_duration)


def _compiling(call) -> tuple[float, int, float]:
    """One synchronised call: (its seconds, the XLA compiles it made, their seconds of backend compile), counted
    with a `jax.monitoring` listener, so the compile time is free of the run's noise."""
    global _compiles
    _listen()
    events = _compiles = []
    try:
        start = time.perf_counter()
        jax.block_until_ready(call())
        seconds = time.perf_counter() - start
    finally:
        _compiles = None
    return seconds, len(events), sum(events)


def _ratio(times: dict, top: str, bottom: str) -> float:
    """The median over rounds of times[top] / times[bottom]."""
    return statistics.median(a / b for a, b in zip(times[top], times[bottom], strict=True))


def _first_call(call) -> float:
    """Seconds of one synchronised call (the first: tracing and compiling included)."""
    start = time.perf_counter()
    jax.block_until_ready(call())
    return time.perf_counter() - start


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
    hand_s = hand_ratio = hand_compile_s = None
    if (stencil.method, stencil.order) == ("central", 2) and stencil_bytes(dim, num_points, dtype) <= FLOOR_LIMIT:
        hand = hand_written(fun)  # it may hold its whole stencil in memory, as the floor does
        calls = {"A": lambda: batch_grad(fun, points, method=method, order=order), "B": lambda: hand(points)}
        first_b = _first_call(calls["B"])
        times = _interleaved(calls, max(repeats, MIN_ROUNDS))
        hand_s, hand_ratio = statistics.median(times["B"]), _ratio(times, "A", "B")
        hand_compile_s = max(first_b - hand_s, 0.0)
    chosen = plan(points, DefaultStep(), default_memory_budget(), fun=fun, scheme=stencil)
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
    memory = chosen.temp_bytes
    device = jax.devices()[0]
    return BenchRow(
        name, dim, num_points, dtype, f"{stencil.method} {stencil.order}", _describe(device),
        max(first - batch_s, 0.0), batch_s, error, floor_s, jax_grad_s, per_ref * num_points, ref_error,
        None if per_scipy is None else per_scipy * num_points, scipy_error, chosen.chunk, memory, auto_s, auto_ratio,
        auto_error, hand_s, hand_ratio, hand_compile_s,
    )  # fmt: skip


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def format_rows(rows) -> str:
    """The benchmark table."""
    body = [
        [r.function, r.dim, f"{r.num_points:,}", r.dtype, r.method, f"{r.compile_s:.2f}", f"{r.batch_grad_s * 1e3:.2f}",
         _fmt(None if r.hand_s is None else r.hand_s * 1e3, ".2f"), _fmt(r.hand_ratio, ".2f"),
         _fmt(r.hand_compile_s, ".2f"),
         f"{r.num_points / r.batch_grad_s:.3g}", f"{r.num_points * r.dim / r.batch_grad_s:.3g}", f"{r.error:.1e}",
         _fmt(None if r.floor_s is None else r.floor_s * 1e3, ".2f"), _fmt(r.ratio_to_floor, ".2f"),
         f"{r.jax_grad_s * 1e3:.2f}", f"{r.reference_s:.3g}", f"{r.speedup_over_reference:,.0f}x",
         _fmt(r.scipy_s, ".3g"), _fmt(r.scipy_error, ".1e"), _fmt(r.speedup_over_scipy, ",.0f"),
         f"{r.chunk:,}", _fmt(r.program_bytes / 2**20 if r.program_bytes else None, ".1f"),
         _fmt(None if r.auto_s is None else r.auto_s * 1e3, ".2f"), _fmt(r.auto_ratio, ".2f"),
         _fmt(r.auto_error, ".1e")]
        for r in rows
    ]  # fmt: skip
    headers = ["fun", "d", "N", "dtype", "method", "compile s", "batch_grad ms", "B ms", "A/B", "B compile s",
               "points/s", "coords/s", "error", "floor ms", "ratio", "jax.grad ms", "numpy s", "vs numpy", "scipy s",
               "scipy error", "vs scipy", "chunk", "MiB", "auto ms", "auto/fixed", "auto error"]  # fmt: skip
    device = rows[0].device if rows else "?"
    title = f"jaxgrad bench on {device}; times are medians of --repeats runs after a warm-up, device synchronised"
    return format_table(headers, body, title=title) + "\n" + LEGEND


LEGEND = """\
compile s      the first call's extra time (tracing and compiling)
batch_grad ms  jg.batch_grad on all N points (A); points/s and coords/s are N and N·d per second
B ms           the central differences a user writes by hand, same step (jaxgrad.bench.hand_written; central 2 only,
               "-" where its stencil would not fit, as for the floor)
A/B            median over rounds of batch_grad / B, the two called in turn; > 1: jaxgrad is slower; B compile s as
               compile s
error          median over points of |g − g*| / |g*|, g* the analytic gradient
floor ms       fun alone, vmapped over the same stencil points already in memory ("-": they would not fit)
ratio          batch_grad / floor: what the perturbation and the differencing cost beyond evaluating fun
jax.grad ms    jax.jit(jax.vmap(jax.grad(fun))) on the same points
numpy s        the NumPy reference loop (jaxgrad.reference), timed on --reference-points points, scaled to N
vs numpy       numpy s / batch_grad
scipy s        scipy.differentiate.jacobian, float64 only, timed on up to 2,000 points, scaled to N; scipy error
               as error above; vs scipy = scipy s / batch_grad (compare rows of similar error)
chunk          points per chunk of the compiled map (N: one pass)
MiB            temporaries of one pass over all N points, as the plan estimates them (above the budget: chunks)
auto ms        batch_grad with step="auto" (steps chosen per point and coordinate: 4·d + 1 more evaluations for
               central 2, 10·d + 1 for central 4, 12·d + 1 for Richardson 6: jg.num_evaluations)
auto/fixed     median over rounds of auto / batch_grad, the two timed alternately in one run; auto error as error"""


def _describe(device) -> str:
    """E.g. "gpu (NVIDIA H200)" or "cpu"."""
    kind = device.device_kind
    return device.platform if kind == device.platform else f"{device.platform} ({kind})"


QUICK = {"functions": ("sphere", "rosenbrock", "mlp"), "dims": (2, 10), "sizes": (10_000,),
         "dtypes": ("float32", "float64"), "methods": (("central", 2), ("richardson", 6))}  # fmt: skip
"""18 rows, about half a minute on 2 idle CPU cores (`jaxgrad bench --quick` promises under a minute)."""
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
    chosen = plan(points, DefaultStep(), default_memory_budget(), fun=fun, scheme=as_scheme())
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


# ------------------------------------------------------------------------------------------------- the A/B/D matrix
COMPARE = {"functions": ("sphere", "rosenbrock", "mlp"), "dims": (2, 10, 100), "sizes": (10_000, 100_000),
           "dtypes": ("float32", "float64")}  # fmt: skip
COMPARE_QUICK = {"functions": ("sphere", "rosenbrock", "mlp"), "dims": (2, 10), "sizes": (10_000,),
                 "dtypes": ("float32", "float64")}  # fmt: skip
COMPARE_MAX_GB = 2.0
"""Configurations whose stencil points and values (D's input and output) exceed this many GB (1e9 bytes) are left
out: of the default matrix, d = 100 with N = 1e5 (8 and 16 GB), which leaves the issue's 30 configurations."""

PEAK_BANDWIDTH_GBS = (
    ("GH200", 4000), ("H200", 4800), ("H100 NVL", 3900), ("H100 PCIe", 2000), ("H100", 3350), ("H800", 3350),
    ("A100-SXM4-80GB", 2039), ("A100 80GB PCIe", 1935), ("A100", 1555), ("A800", 2039), ("L40S", 864), ("L40", 864),
    ("L4", 300), ("A10G", 600), ("A10", 600), ("T4", 320), ("V100", 900), ("RTX 4090", 1008), ("RTX 3090", 936),
)  # fmt: skip
"""Peak memory bandwidth in GB/s (1e9 bytes) of common NVIDIA GPUs, from the vendor's data sheets, first match of the
name in `device_kind` wins. Assumed: where the name does not tell the variant, the SXM one (an "NVIDIA H100 80GB HBM3"
is an H100 SXM at 3,350 GB/s; an A100 of unnamed memory is the 40 GB one at 1,555 GB/s)."""


def peak_bandwidth(device_kind: str) -> float | None:
    """The peak memory bandwidth in GB/s of a GPU named `device_kind` (as `jax.devices()[0].device_kind` gives it),
    from `PEAK_BANDWIDTH_GBS`; None for a device not in the table (a CPU, say).

    Example:
      >>> peak_bandwidth("NVIDIA H200"), peak_bandwidth("NVIDIA A100-SXM4-80GB"), peak_bandwidth("cpu")
      (4800, 2039, None)
    """
    return next((peak for name, peak in PEAK_BANDWIDTH_GBS if name in device_kind), None)


def stencil_bytes(dim: int, num_points: int, dtype) -> int:
    """Bytes of B's stencil: the 2·d·N points of d coordinates and their 2·d·N values, N·2d·(d + 1)·itemsize."""
    return num_points * 2 * dim * (dim + 1) * np.dtype(dtype).itemsize


@dataclasses.dataclass(frozen=True)
class CompareRow:
    """One configuration of the A/B/D matrix: median times in seconds, medians over rounds of per-round ratios,
    compile times (first call minus the median), and the stencil's bytes (for the bandwidth figures)."""

    function: str
    dim: int
    num_points: int
    dtype: str
    device: str
    rounds: int
    a_s: float
    b_s: float
    d_s: float
    a_over_b: float
    a_over_d: float
    compile_a_s: float
    compile_b_s: float
    compiles_a: int
    compiles_b: int
    stencil_bytes: int
    peak_gbs: float | None = None

    @property
    def a_gbs(self) -> float:
        """The stencil's bytes per second of A, in GB/s: the bandwidth A would need if it moved them through memory."""
        return self.stencil_bytes / self.a_s / 1e9

    @property
    def a_peak(self) -> float | None:
        return None if self.peak_gbs is None else self.a_gbs / self.peak_gbs

    @property
    def d_peak(self) -> float | None:
        return None if self.peak_gbs is None else self.stencil_bytes / self.d_s / 1e9 / self.peak_gbs

    def to_dict(self) -> dict:
        """The row as plain Python, with the bandwidth figures."""
        return dict(dataclasses.asdict(self), a_gbs=self.a_gbs, a_peak=self.a_peak, d_peak=self.d_peak)


def compare_configurations(matrix=COMPARE, functions_=None, dims=None, sizes=None, dtypes=None,
                           max_gb=COMPARE_MAX_GB):  # fmt: skip
    """Every (function, d, N, dtype) of an A/B/D matrix whose stencil fits `max_gb`."""
    for name in functions_ or matrix["functions"]:
        for dim in dims or matrix["dims"]:
            for n in sizes or matrix["sizes"]:
                for dtype in dtypes or matrix["dtypes"]:
                    if stencil_bytes(dim, n, dtype) <= max_gb * 1e9:
                        yield name, dim, n, dtype


COMPARE_BUDGET_S = 5.0
"""Seconds of timed rounds per configuration of --compare, after which no new round starts (at least 3 rounds)."""


def compare_one(name: str, dim: int, num_points: int, dtype: str, *, rounds: int = 9, seed: int = 0,
                peak_gbs: float | None = None, budget_s: float | None = COMPARE_BUDGET_S) -> CompareRow:  # fmt: skip
    """A = `batch_grad(fun, x)` (its defaults: central order 2, default step), B = `hand_written(fun)(x)` and
    D = jit(vmap(fun)) on B's 2·d·N stencil points already in memory, at N points of dimension d: first calls (their
    XLA backend compile time, from `jax.monitoring`), then up to `rounds` rounds of A, B, D in turn (none started
    after `budget_s` seconds, once 3 are done). Run under `jax.enable_x64(True)` for float64.

    Example:
      >>> row = compare_one("sphere", 2, 100, "float32", rounds=3)
      >>> row.stencil_bytes, row.rounds  # 100 points · 2·2 stencil points · (2 coordinates + 1 value) · 4 bytes
      (4800, 3)
    """
    fun = _function(name, dim)
    points = jax.device_put(fun.sample(num_points, dim, seed=seed, dtype=dtype))
    if points.dtype != np.dtype(dtype):
        raise ValueError(f"`dtype`={dtype} needs jax_enable_x64 (e.g. JAX_ENABLE_X64=1, or `jaxgrad bench`).")
    hand = hand_written(fun)
    floor = jax.jit(jax.vmap(fun))
    calls = {"A": lambda: batch_grad(fun, points), "B": lambda: hand(points)}
    first = {name_: _compiling(call) for name_, call in calls.items()}
    rows = jax.block_until_ready(stencil_rows(points))
    calls["D"] = lambda: floor(rows)
    fastest = min(_first_call(calls["D"]), first["A"][0], first["B"][0])  # compiles included: an upper bound
    if fastest < 5 * TIMING_S:  # short calls: time one of each, and repeat them within a round to span TIMING_S
        fastest = min(_first_call(call) for call in calls.values())
    inner = min(100, max(1, math.ceil(TIMING_S / max(fastest, 1e-6))))
    times = _interleaved(calls, rounds, budget_s, inner)
    median = {name_: statistics.median(t) for name_, t in times.items()}
    return CompareRow(
        name, dim, num_points, dtype, _describe(jax.devices()[0]), len(times["A"]), median["A"], median["B"],
        median["D"], _ratio(times, "A", "B"), _ratio(times, "A", "D"), first["A"][2], first["B"][2], first["A"][1],
        first["B"][1], stencil_bytes(dim, num_points, dtype), peak_gbs,
    )  # fmt: skip


def _percent(fraction):
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def compare_summary(rows) -> str:
    """One line: in how many configurations A is slower than B, the median A/B, A/D and compile ratio."""
    ratios = [r.a_over_b for r in rows]
    floor = [r.a_over_d for r in rows if r.dim >= 10]
    compile_ratio = [r.compile_a_s / r.compile_b_s for r in rows if r.compile_b_s > 0]
    compiles = sum(r.compiles_a for r in rows), sum(r.compiles_b for r in rows)
    parts = [
        f"A/B > 1 in {sum(x > 1 for x in ratios)} of {len(rows)} configurations",
        f"median A/B {statistics.median(ratios):.2f} (range {min(ratios):.2f}–{max(ratios):.2f})",
    ]
    if floor:
        parts.append(f"median A/D {statistics.median(floor):.2f} where d ≥ 10")
    if compile_ratio:
        parts.append(
            f"compile A/B {statistics.median(compile_ratio):.2f}× (median; {compiles[0]} and {compiles[1]} "
            "XLA compiles)"
        )
    return "summary: " + "; ".join(parts)


def format_compare(rows) -> str:
    """The A/B/D matrix as a table, with its summary line and legend."""
    body = [
        [r.function, r.dim, f"{r.num_points:,}", r.dtype, f"{r.a_s * 1e3:.3f}", f"{r.b_s * 1e3:.3f}",
         f"{r.d_s * 1e3:.3f}", f"{r.a_over_b:.2f}", f"{r.a_over_d:.2f}", f"{r.compile_a_s:.3f}",
         f"{r.compile_b_s:.3f}", r.rounds, f"{r.a_gbs:.3g}", _percent(r.a_peak), _percent(r.d_peak)]
        for r in rows
    ]  # fmt: skip
    headers = ["fun", "d", "N", "dtype", "A ms", "B ms", "D ms", "A/B", "A/D", "compile A s", "compile B s",
               "rounds", "A GB/s", "A % peak", "D % peak"]  # fmt: skip
    first = rows[0] if rows else None
    device = first.device if first else "?"
    peak = f"peak {first.peak_gbs:,.0f} GB/s" if first and first.peak_gbs else "peak bandwidth unknown"
    title = (
        f"jaxgrad bench --compare on {device} ({peak}); A, B, D called in turn each round; medians of per-round ratios"
    )
    return "\n".join([format_table(headers, body, title=title), compare_summary(rows) if rows else "", COMPARE_LEGEND])


COMPARE_LEGEND = """\
A            jg.batch_grad(f, x): its defaults, central order 2, h_i = eps^(1/3)·max(|x_i|, 1) rounded to a power of 2
B            the six lines a user writes instead: jit(vmap(lambda x: (vmap(f)(x + H) − vmap(f)(x − H)) / 2h)),
             H = h·eye(d), the same step (jaxgrad.bench.hand_written)
D            jit(vmap(f)) alone on B's 2·d·N stencil points, already in memory: the floor
A/B, A/D     medians over rounds of the per-round ratio (A, B, D called in turn each round); > 1: A is slower
compile s    XLA's backend compile time in the first call (jax.monitoring), every program it compiled; tracing
             not included (A's and B's numbers of compiles are in --json)
rounds       rounds timed: up to --repeats, none started after --round-seconds (5 s) once 3 are done
A GB/s       the stencil's bytes, N·2d·(d + 1)·itemsize (points and values), per second of A
% peak       A's (and D's) GB/s over the device's peak memory bandwidth (--peak-bandwidth, or the table of GPUs in
             jaxgrad.bench.PEAK_BANDWIDTH_GBS; "-": unknown, e.g. a CPU)"""
