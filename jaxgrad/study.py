"""Step studies: the error of a finite-difference gradient against the step, per dtype and method, with the theory."""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from ._batching import Batching, as_points, leading_size, run_program
from ._compile import program
from ._evaluate import evaluate, hashable, point_gradient, settled
from ._files import write_csv, write_json
from ._grad import batch_grad
from ._schemes import FiniteDifference, Scheme, as_scheme
from ._steps import AutoStep, Relative, default_step
from ._table import format_table
from .numerics import relative_error
from .verify._compare import batch_exact

SMALLEST_STEP = {"float32": 1e-6, "float64": 1e-13}
EDGE_MARK = {"above": "≥", "below": "≤", "": ""}
"""How the summary marks a theory step on the largest / smallest step of the grid (`Curve.theory_beyond`)."""
"""Where the default step grid ends, per dtype: round-off has long dominated there."""


def default_steps(dtype, num: int = 40) -> np.ndarray:
    """The default grid of step factors s (h = s·max(|x|, 1)): log-spaced from 1 down to SMALLEST_STEP[dtype]."""
    return np.logspace(0, math.log10(SMALLEST_STEP[np.dtype(dtype).name]), num)


def _parse_dtypes(dtypes) -> list[np.dtype]:
    if isinstance(dtypes, str):
        dtypes = (dtypes,)
    wanted = []
    for d in dtypes:
        try:
            dtype = np.dtype(d)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"`dtypes` may hold 'float32' and 'float64', got {d!r}: a step study in a 16-bit float "
                             "measures nothing but rounding.")  # fmt: skip
        wanted.append(dtype)
    if not wanted:
        raise ValueError("`dtypes` is empty; pass e.g. ('float32', 'float64').")
    return wanted


def _step_grid(steps) -> np.ndarray:
    try:
        grid = np.asarray(steps, np.float64)
    except (TypeError, ValueError):
        grid = None
    if grid is None or grid.ndim != 1 or not grid.size or not np.all(np.isfinite(grid) & (grid > 0)):
        raise ValueError(f"`steps` must be a 1-D array of positive finite step factors, e.g. np.logspace(-1, -6, 20); "
                         f"got {steps!r}.")  # fmt: skip
    return grid


def _parse_methods(methods) -> list[FiniteDifference]:
    stencils = []
    for spec in methods:
        method, order = (spec, None) if isinstance(spec, (str, Scheme)) else spec
        scheme = as_scheme(method, order)
        if not isinstance(scheme, FiniteDifference):
            raise ValueError(f"`methods`: a step study sweeps one stencil along every axis; {scheme!r} is not one.")
        stencils.append(scheme)
    if not stencils:
        raise ValueError("`methods` is empty; pass e.g. ('central', ('central', 4), 'forward').")
    return stencils


@functools.partial(program, static_argnames=("fun", "stencil"))
def _errors_over_steps(points, factors, exact, *, fun, stencil):
    """Relative error (norm per point) of the numeric gradient at every point and step factor: shape (S, N).

    The step grid is an argument, so the whole sweep is one compiled program (no retrace per step); steps run one
    after another (lax.map) to bound memory. Each step's stencil is taken as it is: where it leaves f's domain the
    error is NaN (the point is flagged), not that of the domain repair's shorter one-sided step.
    """

    def at_factor(factor):  # the stencil at this step as it is, never repaired where it leaves f's domain
        g = jax.vmap(lambda x: point_gradient(fun, stencil, x, Relative(factor), repair=False)[0])(points)
        g = g.astype(exact.dtype)
        return relative_error(g, exact)

    return jax.lax.map(at_factor, factors)


@functools.partial(program, static_argnames=("fun", "stencil"))
def _steps_taken(points, *, fun, stencil):
    """The steps the stencil takes at every point, as factors h / max(|x|, 1), (N, d): the default step's, and
    step="auto"'s with the gradients it gives, (N, d)."""

    def one(x):
        e = evaluate(fun, x, AutoStep(), stencil)
        g, h = settled(e.values, e.h, stencil, e.fallback)
        scale = jnp.maximum(jnp.abs(e.x), 1)
        return default_step(x, exponent=stencil.step_exponent) / scale, h / scale, g

    return jax.vmap(one)(points)


def _share_per_step(grid, chosen) -> np.ndarray:
    """The share of `chosen` step factors nearest (in log scale) to each step of `grid`."""
    logs = np.log(np.asarray(grid))
    nearest = np.argmin(np.abs(np.log(np.ravel(chosen))[:, None] - logs[None, :]), axis=1)
    return np.bincount(nearest, minlength=len(grid)) / max(nearest.size, 1)


def truncation_constant(stencil: FiniteDifference) -> float:
    """C with g(h) − g* ≈ C·f^(p+1)·h^p: sum_k w_k k^(p+1) / (p+1)! (1/6 for central order 2, 1/2 for forward)."""
    p = stencil.order
    total = sum(w * k ** (p + 1) for k, w in zip(stencil.offsets, stencil.weights, strict=True))
    return abs(total) / math.factorial(p + 1)


def _axis_derivatives(fun, x, order: int):
    """d^order f(x + t e_i)/dt^order at t = 0 for every coordinate i of a flat point x (by autodiff)."""

    def along(i):
        def line(t):
            return fun(x + t * jax.nn.one_hot(i, x.shape[0], dtype=x.dtype))

        derivative = line
        for _ in range(order):
            derivative = jax.grad(derivative)
        return derivative(jnp.zeros((), x.dtype))

    return jax.vmap(along)(jnp.arange(x.shape[0]))


@functools.partial(program, static_argnames=("fun", "order"))
def _theory_inputs(points, *, fun, order):
    """|f(x)| and |f^(p+1)| along each axis, per point: what the error model needs."""
    values = jax.vmap(fun)(points)
    derivatives = jax.vmap(lambda x: _axis_derivatives(fun, x, order))(points)
    return jnp.abs(values), jnp.abs(derivatives)


def theory_errors(stencil: FiniteDifference, dtype, factors, points, f_abs, f_deriv, exact) -> np.ndarray:
    """The error model at each step factor, (S, N): per coordinate C·|f^(p+1)|·h^p (truncation) + eps·|f|·sum|w|/h
    (the rounding of the f values; eps·|g*| for the complex step, which subtracts nothing), h = s·max(|x|, 1); its
    norm over coordinates, relative to |g*|."""
    eps = float(np.finfo(dtype).eps)
    scale = np.maximum(np.abs(points), 1)[None]  # (1, N, d)
    h = np.asarray(factors)[:, None, None] * scale
    per_coordinate = truncation_constant(stencil) * f_deriv[None] * h**stencil.order
    if stencil.imaginary:  # no subtraction: the rounding is that of the derivative itself
        per_coordinate = per_coordinate + eps * np.abs(exact)[None]
    else:
        per_coordinate = per_coordinate + eps * f_abs[None, :, None] * stencil.weight_sum / h
    return np.linalg.norm(per_coordinate, axis=2) / np.linalg.norm(exact, axis=1)[None]


def _safe_ratio(a: float, b: float) -> float:
    """a / b, with 0/0 = 1 (both exact) and a/0 = inf."""
    if b == 0:
        return 1.0 if a == 0 else math.inf
    return a / b


def _theory_best_step(steps, errors) -> float:
    """The largest step whose modelled error is within 1% of the minimum: the bottom of a V, or where the flat
    floor of the complex step begins."""
    return float(np.max(steps[errors <= 1.01 * np.min(errors)]))


def _beyond(step: float, grid) -> str:
    """ "above" / "below" when `step` sits on the largest / smallest step of `grid` (the model's error still falls
    towards that edge, so its best step lies there or beyond), else ""."""
    if step >= np.max(grid) * (1 - 1e-9):
        return "above"
    return "below" if step <= np.min(grid) * (1 + 1e-9) else ""


@dataclasses.dataclass(frozen=True, eq=False)
class Curve:
    """Error against step for one (dtype, method): arrays over the step grid, with the theory and the default step.

    Attributes:
      dtype, method, order: what was run.
      steps: the step factors s of the grid (h = s·max(|x|, 1)).
      median, p90, max: the relative error over the points at each step.
      theory: the error model's median at each step.
      theory_step, theory_error: the model's best step and its error, searched on a finer grid over the same range
        (never off the grid); `theory_beyond` says when it sits on an edge of the grid.
      default_step, default_error: the median factor h/max(|x|, 1) of jaxgrad's default steps at the points
        (eps^(1/(p+1)) rounded to a power of two per coordinate) and the median error they give.
      auto_share: over the step grid, the share of the coordinates' steps that step="auto" chose nearest each step
        (the curve to overlay); auto_step, auto_error: the median chosen factor and the median error it gives.
    """

    dtype: str
    method: str
    order: int
    steps: np.ndarray
    median: np.ndarray
    p90: np.ndarray
    max: np.ndarray
    theory: np.ndarray
    theory_step: float
    theory_error: float
    default_step: float
    default_error: float
    auto_share: np.ndarray | None = None
    auto_step: float = math.nan
    auto_error: float = math.nan

    @property
    def label(self) -> str:
        """E.g. "float32 central 2"."""
        return f"{self.dtype} {self.method} {self.order}"

    @property
    def theory_beyond(self) -> str:
        """ "above" when the model's error still falls at the grid's largest step (e.g. a truncation term of 0: the
        (p+1)-th derivative vanishes, as the 5th of Rosenbrock's quartic for central order 4), so its best step is
        there or beyond; "below" at the smallest step; "" for a best step inside the grid."""
        return _beyond(self.theory_step, self.steps)


@dataclasses.dataclass(frozen=True)
class Best:
    """One curve's summary: the best step found and its error, the theory's, and the default step's."""

    dtype: str
    method: str
    order: int
    best_step: float
    best_error: float
    theory_step: float
    theory_error: float
    default_step: float
    default_error: float
    auto_step: float = math.nan
    auto_error: float = math.nan
    theory_beyond: str = ""

    @property
    def step_ratio(self) -> float:
        """The best step found over the theory's best step."""
        return self.best_step / self.theory_step

    @property
    def default_vs_best(self) -> float:
        """The default step's error over the best error found (0/0 = 1)."""
        return _safe_ratio(self.default_error, self.best_error)

    def to_dict(self) -> dict:
        return dict(dataclasses.asdict(self), step_ratio=self.step_ratio, default_vs_best=self.default_vs_best,
                    auto_vs_best=self.auto_vs_best)  # fmt: skip

    @property
    def auto_vs_best(self) -> float:
        """step="auto"'s error over the best error found on the grid (0/0 = 1)."""
        return _safe_ratio(self.auto_error, self.best_error)


@dataclasses.dataclass(frozen=True, eq=False)
class Study:
    """Error against step for every (dtype, method): medians, 90th percentiles and maxima over the points, the best
    step found, and the theoretical best step and error beside it.

    Steps are factors s of the relative step h_i = s·max(|x_i|, 1) (jaxgrad's default is s = eps^(1/(p+1))); errors
    are norm-wise relative, |g − g*| / |g*| per point, against `grad_fn` (default jax.grad in the widest dtype).
    """

    function: str
    num_points: int
    dim: int
    curves: tuple[Curve, ...]  # one per (dtype, method)
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Study({self.function}, d={self.dim}, {self.num_points:,} points, {len(self.curves)} curves)"

    def joined(self, other: Study) -> Study:
        """This study with the curves and notes of `other` (the same function and points) after its own."""
        return dataclasses.replace(self, curves=self.curves + other.curves, notes=self.notes + other.notes)

    def best(self) -> list[Best]:
        """Per (dtype, method): the best step found, its error, the theoretical best, and the default step's error."""
        out = []
        for c in self.curves:
            i = int(np.nanargmin(c.median))
            out.append(Best(c.dtype, c.method, c.order, float(c.steps[i]), float(c.median[i]), c.theory_step,
                            c.theory_error, c.default_step, c.default_error, c.auto_step, c.auto_error,
                            c.theory_beyond))  # fmt: skip
        return out

    def rows(self) -> list[dict]:
        """One row per (dtype, method, order, step): median, 90th percentile and max error, and the theory."""
        return [
            {"function": self.function, "dtype": c.dtype, "method": c.method, "order": c.order,
             "step": float(s), "median": float(m), "p90": float(q), "max": float(x), "theory": float(t),
             "auto_share": float(a)}
            for c in self.curves
            for s, m, q, x, t, a in zip(c.steps, c.median, c.p90, c.max, c.theory, _shares(c), strict=True)
        ]  # fmt: skip

    def summary(self) -> str:
        body = [
            [b.dtype, f"{b.method} {b.order}", f"{b.best_step:.2e}", f"{b.best_error:.2e}",
             f"{EDGE_MARK[b.theory_beyond]}{b.theory_step:.2e}".rjust(11),  # 11: its header's width
             f"{b.theory_error:.2e}", f"{b.step_ratio:.2f}", f"{b.default_step:.2e}", f"{b.default_error:.2e}",
             f"{b.default_vs_best:.2f}", f"{b.auto_step:.2e}", f"{b.auto_error:.2e}", f"{b.auto_vs_best:.2f}"]
            for b in self.best()
        ]  # fmt: skip
        # a ratio of steps, then ratios of errors (named so: a reader took them for alike)
        headers = ["dtype", "method", "best step", "best error", "theory step", "theory error", "steps best/theory",
                   "default step", "default error", "errors default/best", "auto step", "auto error",
                   "errors auto/best"]  # fmt: skip
        title = (
            f"step study {self.function}: d={self.dim}, {self.num_points:,} points; steps are factors s of "
            "h = s·max(|x|, 1); errors are median |g − g*|/|g*|"
        )
        lines = [format_table(headers, body, title=title)]
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"function": self.function, "num_points": self.num_points, "dim": self.dim,
                "best": [b.to_dict() for b in self.best()], "rows": self.rows(), "notes": list(self.notes)}  # fmt: skip

    def to_json(self, path) -> None:
        """Write `to_dict()` as JSON (atomically)."""
        write_json(path, self.to_dict())

    def to_csv(self, path) -> None:
        """Write `rows()` as CSV (atomically)."""
        write_csv(path, self.rows())


def _edge_note(c: Curve) -> str:
    """Why a curve's theory step sits on the edge of its grid."""
    above = c.theory_beyond == "above"
    edge, beyond, mark = ("largest", "larger", "≥") if above else ("smallest", "smaller", "≤")
    why = f"its truncation term ∝ f^({c.order + 1}) is negligible here" if above else "its rounding is negligible"
    return (
        f"{c.label}: the model's error is lowest at the grid's {edge} step {c.theory_step:.2e} ({why}), so its best "
        f"step is there or {beyond}, off the grid: marked {mark} in the table and by a triangle in the picture"
    )


def _shares(curve: Curve) -> np.ndarray:
    return np.zeros(len(curve.steps)) if curve.auto_share is None else curve.auto_share


def step_study(
    fun,
    points,
    *,
    steps=None,
    dtypes=("float32", "float64"),
    methods=("central",),
    grad_fn=None,
    name: str | None = None,
    progress=None,
) -> Study:
    """Sweep the step of the numerical gradient and measure its error, per dtype and method, beside the theory and
    beside the steps that step="auto" chooses (`Curve.auto_share`, `auto_step`, `auto_error`).

    For each dtype and method the whole step grid is one compiled program (the grid is an array argument, never a
    Python loop that retraces). The theory is the textbook error model per coordinate, truncation C·|f^(p+1)|·h^p
    plus the rounding of f, eps·|f|·sum|w_k|/h, with f^(p+1) from autodiff; its minimum over the grid is the
    theoretical best step (for central order 2: h* = (3 eps |f| / |f'''|)^(1/3)).

    Args:
      fun: scalar function of one point (a 1-D array of d coordinates), traceable by JAX.
      points: (N, d) array of points.
      steps: step factors s (h = s·max(|x|, 1)), or None for `default_steps(dtype)`.
      dtypes: dtypes to run in; float64 needs jax_enable_x64 (it is dropped, with a warning, when disabled).
      methods: method names, scheme objects or (method, order) pairs, e.g. ("central", ("central", 4), "forward").
      grad_fn: the exact gradient (None: jax.grad(fun) in the widest dtype).
      name: the function's name in the result.
      progress: optional callable, called with a message before each (dtype, method).

    Returns:
      A `Study`.

    Example:
      >>> import jaxgrad as jg
      >>> study = jg.step_study(jg.functions.rosenbrock, jg.functions.rosenbrock.sample(100, 4), dtypes=("float32",))
      >>> 0.25 <= study.best()[0].step_ratio <= 4
      True
    """
    name = name or getattr(fun, "name", None) or getattr(fun, "__name__", "f")
    fun, grad_fn = hashable(fun), None if grad_fn is None else hashable(grad_fn)
    points = as_points(points)
    n = leading_size(points)
    if not isinstance(points, jax.Array) or points.ndim != 2:
        raise ValueError(
            f"`points` must be an (N, d) array for a step study, got {jax.tree_util.tree_structure(points)}."
        )
    if n == 0:
        raise ValueError("`points` is empty: a step study needs at least one point.")
    out = jax.eval_shape(fun, jax.ShapeDtypeStruct(points.shape[1:], points.dtype))
    if getattr(out, "shape", None) != ():
        raise ValueError(f"`fun` must return a scalar, but it returned {getattr(out, 'shape', type(out).__name__)}.")
    notes = []
    wanted = _parse_dtypes(dtypes)
    if progress is not None and not callable(progress):
        raise TypeError(f"`progress` must be a callable taking a message, or None, got {type(progress).__name__}.")
    x64 = bool(jax.config.jax_enable_x64)
    if not x64 and any(d == np.float64 for d in wanted):
        warnings.warn("step_study: float64 needs jax.config.update('jax_enable_x64', True); running float32 only.",
                      stacklevel=2)  # fmt: skip
        notes.append("float64 was asked for but jax_enable_x64 is off: float32 only")
        wanted = [d for d in wanted if d != np.float64]
    if not wanted:
        raise ValueError("`dtypes` has nothing to run; pass dtypes=('float32',) or enable x64.")
    widest = np.dtype(np.float64) if x64 else np.dtype(np.float32)
    reference_points = jnp.asarray(points, widest)
    exact = jnp.asarray(run_program(batch_exact, reference_points, None, Batching(), fun=fun, grad_fn=grad_fn), widest)
    exact_np = np.asarray(exact, np.float64)
    bad = ~(np.all(np.isfinite(np.asarray(points, np.float64)), axis=1) & np.all(np.isfinite(exact_np), axis=1))
    if bad.any():  # NaN/Inf points: flagged, and left out of the statistics (they would make every median NaN)
        notes.append(f"{int(bad.sum())} of {n} points are not finite (or their gradient is not) and are left out")
        keep = np.flatnonzero(~bad)
        if not keep.size:
            raise ValueError("every point (or its gradient) is NaN or infinite: nothing to study.")
        points, reference_points, exact = points[keep], reference_points[keep], exact[keep]
        exact_np = exact_np[keep]
    curves = []
    for dtype in wanted:
        grid = default_steps(dtype) if steps is None else _step_grid(steps)
        x = jnp.asarray(points, dtype)
        for stencil in _parse_methods(methods):
            if progress:
                progress(f"{dtype.name} {stencil.method} {stencil.order}")
            errors = np.asarray(
                _errors_over_steps(x, jnp.asarray(grid, dtype), exact.astype(dtype),
                                   fun=fun, stencil=stencil), np.float64)  # fmt: skip
            f_abs, f_deriv = _theory_inputs(reference_points, fun=fun, order=stencil.order + 1)
            f_abs, f_deriv = np.asarray(f_abs, np.float64), np.asarray(f_deriv, np.float64)
            fine = np.geomspace(np.max(grid), np.min(grid), 400)  # the theory's best step: searched on the grid's range
            theory_fine = np.median(theory_errors(stencil, dtype, fine, np.asarray(points, np.float64), f_abs, f_deriv,
                                                  exact_np), axis=1)  # fmt: skip
            # the steps' factors as taken (the default's rounded to powers of two per coordinate)
            default, chosen, g_auto = _steps_taken(x, fun=fun, stencil=stencil)
            default = float(np.median(np.asarray(default, np.float64)))
            g_default = np.asarray(batch_grad(fun, x, method=stencil.method, order=stencil.order), np.float64)
            default_error = relative_error(g_default, exact_np)
            chosen = np.asarray(chosen, np.float64)
            auto_error = float(np.median(relative_error(np.asarray(g_auto, np.float64), exact_np)))
            curves.append(Curve(
                dtype.name, stencil.method, stencil.order, grid, np.median(errors, axis=1),
                np.percentile(errors, 90, axis=1), np.max(errors, axis=1),
                np.median(theory_errors(stencil, dtype, grid, np.asarray(points, np.float64), f_abs, f_deriv, exact_np),
                          axis=1),
                _theory_best_step(fine, theory_fine), float(np.min(theory_fine)), default,
                float(np.median(default_error)), _share_per_step(grid, chosen), float(np.median(chosen)), auto_error,
            ))  # fmt: skip
            if curves[-1].theory_beyond:
                notes.append(_edge_note(curves[-1]))
    return Study(name, n, int(points.shape[1]),
                 tuple(curves), tuple(notes))  # fmt: skip
