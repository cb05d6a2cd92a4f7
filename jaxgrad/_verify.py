"""Verification: jaxgrad's numeric gradient vs an exact gradient (jax.grad or yours) vs the NumPy reference."""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import reference as _reference
from ._engine import (
    NOT_TRACEABLE,
    _as_working_leaf,
    _combine,
    _raise_if_step_vanished,
    as_points,
    check_batch_arguments,
    estimate_positions,
    host_estimate_parts,
    leading_size,
    map_points,
    point_estimate,
    raise_if_missing_batch_axis,
    run_program,
    warn_if_low_precision,
)
from ._errors import ROUNDING, error_estimate, noise_estimate
from ._stencils import Stencil, make_stencil
from ._steps import round_to_power_of_two, working_dtype
from ._table import format_table

# ------------------------------------------------------------------------------------------------------ the rule
SAFETY = 16.0
"""Margin on the estimated error, for the spread of rounding errors and of the estimates across points."""
INCONCLUSIVE_SHARE = 0.1
"""A run with no mismatch is INCONCLUSIVE when more than this share of its points cannot be resolved."""


def tolerance(dtype, step, weight_sum, f_noise, g_step, g_double_step, order, exact, *, rtol=0.0, atol=0.0):
    """The largest |numeric − exact| a correct gradient can show, per point and coordinate.

    It is SAFETY times [the numeric gradient's own error estimate, `jg.error_estimate` (round-off from the measured
    noise of f, plus a Richardson truncation estimate from steps h and 2h), plus the exact gradient's own rounding
    ROUNDING·eps·|exact|], plus the user's atol + rtol·|exact|. The round-off part does not shrink with the gradient,
    which keeps gradients near zero from false alarms; the truncation part never involves the exact gradient, so a
    wrong gradient cannot inflate its own tolerance. SAFETY = 16 leaves a margin of 3 over the largest ratio of error
    to (unscaled) estimate seen on 16 functions × 10,000 points × 2 dtypes (tests/test_verify.py).

    Its limit: a wave much shorter than the step (sin x at |x| ≈ 1400 in float32, order 4: h = 32) is aliased alike
    at h and 2h, so the estimate cannot see the error; `check_grad`'s Taylor hint then calls the mismatch
    inconclusive. Use float64 or a step shorter than the wave.

    Args:
      dtype: the dtype the numeric gradient was computed in.
      step: h per coordinate (or a scalar).
      weight_sum: sum |w_k| of the stencil, center weight included.
      f_noise: the error of one evaluation of f near the point (`noise_estimate`).
      g_step, g_double_step: the numeric gradient at steps h and 2h.
      order: p, the stencil's order.
      exact: the gradient being checked.
      rtol, atol: added by the user.

    Returns:
      An array of tolerances (float64), broadcast from the arguments.
    """
    eps = float(jnp.finfo(dtype).eps)
    step, f_noise, exact, g_step, g_double_step = (
        np.asarray(a, np.float64) for a in (step, f_noise, exact, g_step, g_double_step)
    )
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN points and vanished steps are reported, not warned
        estimate = error_estimate(step, weight_sum, f_noise, g_step, g_double_step, order)
        return SAFETY * (estimate + ROUNDING * eps * np.abs(exact)) + atol + rtol * np.abs(exact)


# ------------------------------------------------------------------------------------------------------ programs
def _point_check(fun, stencil: Stencil, x, step):
    """At one point: g(h), g(2h) and the noise of f per coordinate (from f at 0, ±h, ±2h along each axis)."""
    parts = point_estimate(fun, stencil, x, step)
    return {key: parts[key] for key in ("h", "g", "g_double", "f_noise", "vanished")}


@functools.partial(jax.jit, static_argnames=("fun", "stencil", "chunk"))
def _batch_check(points, step, *, fun, stencil: Stencil, chunk: int):
    return map_points(functools.partial(_point_check, fun, stencil), points, step, chunk)


def _flat_exact(grad_fn, x):
    x = jax.tree_util.tree_map(_as_working_leaf, x)
    g = grad_fn(x)
    if jax.tree_util.tree_structure(g) != jax.tree_util.tree_structure(x):
        raise ValueError(
            "`grad_fn` must return a gradient with the structure of its input: got "
            f"{jax.tree_util.tree_structure(g)} for an input {jax.tree_util.tree_structure(x)}."
        )
    leaves = zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(x), strict=True)
    shapes = [(np.shape(a), np.shape(b)) for a, b in leaves]
    if any(a != b for a, b in shapes):
        got, want = next((a, b) for a, b in shapes if a != b)
        raise ValueError(f"`grad_fn` must return a gradient shaped like its input: got shape {got} for shape {want}.")
    flat_x, _ = ravel_pytree(x)
    return ravel_pytree(g)[0].astype(flat_x.dtype)


@functools.partial(jax.jit, static_argnames=("fun", "chunk"))
def _batch_exact(points, step, *, fun, chunk: int):
    del step
    return map_points(lambda x, _: _flat_exact(fun, x), points, None, chunk)


def _directions(key, index, count: int, dim: int, dtype):
    """`count` random unit directions (rows) in R^dim for the point with this index: reproducible per point."""
    v = jax.random.normal(jax.random.fold_in(key, index), (count, dim), dtype)
    return v / jnp.linalg.norm(v, axis=1, keepdims=True)


def _point_directional(fun, stencil: Stencil, count: int, inputs, key):
    """At one point and `count` random directions v: the numeric directional derivative D(t) and D(2t) and, for the
    same displaced points, the analytic prediction A = sum_k w_k <g, fl(x + k t v) − x> / t."""
    x, g, index = inputs
    x = jax.tree_util.tree_map(_as_working_leaf, x)
    flat_x, unravel = ravel_pytree(x)
    g = g.astype(flat_x.dtype)
    v = _directions(key, index, count, flat_x.shape[0], flat_x.dtype)  # (count, d)
    eps = float(jnp.finfo(flat_x.dtype).eps)
    t = round_to_power_of_two(eps**stencil.step_exponent * jnp.maximum(jnp.max(jnp.abs(flat_x)), 1))
    double = stencil.scaled(2)
    positions = estimate_positions(stencil)
    moved = flat_x[None, None] + jnp.asarray(positions, flat_x.dtype)[:, None, None] * t * v[None]  # (P, count, d)
    displacement = moved - flat_x[None, None]
    values = jax.vmap(lambda row: fun(unravel(row)))(moved.reshape(-1, flat_x.shape[0]))
    predicted = jnp.einsum("kcd,d->kc", displacement, g).reshape(-1)  # <g, Δ> per row
    h = jnp.broadcast_to(t, (count,))
    weights, weights_double = stencil.weights_at(positions), double.weights_at(positions)
    center = positions.index(0)
    center_weights = {"g": stencil.center_weight, "g_double": double.center_weight}
    combined = {
        name: _combine(values, h, [*w[:center], c, *w[center + 1 :]])
        for name, w, c in (
            ("g", weights, center_weights["g"]),
            ("g_double", weights_double, center_weights["g_double"]),
        )
    }
    return {
        "h": h,
        **combined,
        "exact": _combine(predicted, h, weights),
        "exact_double": _combine(predicted, h, weights_double),
        "f_noise": noise_estimate(values.reshape(len(positions), count), positions, flat_x.dtype).astype(flat_x.dtype),
        "dot_scale": (jnp.max(jnp.einsum("kcd,d->kc", jnp.abs(displacement), jnp.abs(g)), axis=0) / t).astype(
            flat_x.dtype
        ),
    }


@functools.partial(jax.jit, static_argnames=("fun", "stencil", "count", "chunk"))
def _batch_directional(inputs, key, *, fun, stencil: Stencil, count: int, chunk: int):
    return map_points(functools.partial(_point_directional, fun, stencil, count), inputs, key, chunk)


# ------------------------------------------------------------------------------------------------------ results
@dataclasses.dataclass(frozen=True)
class PairStats:
    """How two methods agree over the points where both ran."""

    name: str
    points: int
    max_abs_error: float
    median_abs_error: float
    max_ratio: float
    median_ratio: float
    pass_rate: float
    median_rel_error: float


@dataclasses.dataclass(frozen=True)
class Worst:
    """The point and coordinate (or direction) whose error is largest relative to its tolerance."""

    point: int
    coordinate: int
    name: str
    numeric: float
    exact: float
    reference: float | None
    error: float
    tolerance: float

    @property
    def ratio(self) -> float:
        return self.error / self.tolerance if self.tolerance > 0 else math.inf

    def describe(self, exact_name: str = "exact") -> str:
        ref = "" if self.reference is None else f", numpy ref {self.reference:.8g}"
        if not (math.isfinite(self.error) and math.isfinite(self.tolerance)):
            return (
                f"point {self.point}, {self.name}: non-finite values, jaxgrad {self.numeric:.8g}, "
                f"{exact_name} {self.exact:.8g}{ref} (f or a gradient is NaN or infinite there)"
            )
        return (
            f"point {self.point}, {self.name}: jaxgrad {self.numeric:.8g}, {exact_name} {self.exact:.8g}{ref}; "
            f"|error| {self.error:.3g} vs tolerance {self.tolerance:.3g} ({self.ratio:.3g}× the tolerance)"
        )


def _rel_error(a, b):
    norm = np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.linalg.norm(a - b, axis=-1) / norm
    return rel[np.isfinite(rel)]


def _ratio(err, tol):
    """err / tol, 0 where err is 0, inf where either is not finite."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(err == 0, 0.0, err / tol)
    return np.where(np.isfinite(err) & np.isfinite(tol), ratio, np.inf)


def _pair(name, a, b, tol) -> PairStats:
    err = np.abs(a - b)
    ratio = _ratio(err, tol)
    per_point = np.all(ratio <= 1, axis=-1) if err.ndim > 1 else ratio <= 1
    rel = _rel_error(a, b)
    finite = err[np.isfinite(err)]
    return PairStats(
        name,
        int(err.shape[0]),
        float(finite.max()) if finite.size else math.nan,
        float(np.median(finite)) if finite.size else math.nan,
        float(ratio.max()) if ratio.size else 0.0,
        float(np.median(ratio)) if ratio.size else 0.0,
        float(per_point.mean()) if per_point.size else 1.0,
        float(np.median(rel)) if rel.size else math.nan,
    )


@dataclasses.dataclass(frozen=True, eq=False)
class Comparison:
    """Numeric vs exact (vs NumPy reference) gradients at N points; arrays are float64, one row per point.

    In coordinate mode a column is a coordinate of the flattened point; in directional mode it is a random
    direction and the values are directional derivatives. `ok` is True when every point's numeric and exact values
    agree within the tolerance of `tolerance()`; the NumPy reference (on a sample of points) is a second opinion,
    reported beside it. `verdict` adds INCONCLUSIVE: no mismatch, but at more than INCONCLUSIVE_SHARE of the points
    the tolerance is as large as the gradient, so the check could not have seen an error there.
    """

    function: str
    exact_name: str
    dtype: str
    mode: str
    method: str
    order: int
    dim: int
    numeric: np.ndarray
    exact: np.ndarray
    tolerance: np.ndarray
    reference_index: np.ndarray
    reference: np.ndarray | None
    reference_tolerance: np.ndarray | None
    coordinate_names: tuple[str, ...]
    times: dict[str, float]
    notes: tuple[str, ...] = ()
    points: np.ndarray | None = None  # (N, d) the flattened points, float64, for pictures and studies

    @property
    def num_points(self) -> int:
        return int(self.numeric.shape[0])

    @property
    def error(self) -> np.ndarray:
        return np.abs(self.numeric - self.exact)

    def __repr__(self) -> str:
        worst = self.worst
        ratio = f", worst {worst.ratio:.3g}× the tolerance at point {worst.point}, {worst.name}" if worst else ""
        return (
            f"Comparison({self.function}, d={self.dim}, {self.dtype}, {self.num_points:,} points, "
            f"{self.verdict}{ratio})"
        )

    @property
    def nonfinite(self) -> np.ndarray:
        """Per point: a numeric, exact or tolerance value is NaN or infinite (f or a gradient is not finite there)."""
        finite = np.isfinite(self.numeric) & np.isfinite(self.exact) & np.isfinite(self.tolerance)
        return ~np.all(finite, axis=1)

    @property
    def ratio(self) -> np.ndarray:
        """error / tolerance per point and column (inf where a value is not finite)."""
        return _ratio(self.error, self.tolerance)

    @property
    def passed(self) -> np.ndarray:
        """Per point: every column within its tolerance (a non-finite value fails)."""
        return np.all(self.ratio <= 1, axis=1)

    @property
    def ok(self) -> bool:
        return bool(self.passed.all())

    @property
    def resolution(self) -> np.ndarray:
        """Per point, ‖tolerance‖ / ‖exact‖: the relative size a gradient error must exceed to be caught there."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.linalg.norm(self.tolerance, axis=1) / np.linalg.norm(self.exact, axis=1)

    @property
    def unresolved(self) -> int:
        """Points where the tolerance is as large as the gradient itself: the check cannot vouch for them (f is
        too noisy or too wiggly at this step to pin the gradient down); they still count as passed when in tolerance."""
        return int(np.sum(~(self.resolution < 1) & ~self.nonfinite))

    @property
    def verdict(self) -> str:
        """ "MISMATCH" (some point fails), "INCONCLUSIVE" (none fails, but too many points are unresolved) or "OK"."""
        if not self.ok:
            return "MISMATCH"
        return "INCONCLUSIVE" if self.unresolved > INCONCLUSIVE_SHARE * self.num_points else "OK"

    @property
    def worst(self) -> Worst | None:
        """The point and column with the largest error relative to its tolerance (None for an empty batch)."""
        if self.numeric.size == 0:
            return None
        ratio = self.ratio
        point, column = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        ref = None
        if self.reference is not None and self.mode == "coordinates":
            where = np.flatnonzero(self.reference_index == point)
            ref = float(self.reference[where[0], column]) if where.size else None
        return Worst(
            int(point),
            int(column),
            self.coordinate_names[column],
            float(self.numeric[point, column]),
            float(self.exact[point, column]),
            ref,
            float(self.error[point, column]),
            float(self.tolerance[point, column]),
        )

    @property
    def pairs(self) -> list[PairStats]:
        """Agreement of each pair of methods."""
        out = [_pair(f"jaxgrad vs {self.exact_name}", self.numeric, self.exact, self.tolerance)]
        if self.reference is not None:
            idx = self.reference_index
            exact = self.exact if self.mode == "coordinates" else None
            if exact is not None:
                out.append(
                    _pair(f"numpy ref vs {self.exact_name}", self.reference, exact[idx], self.reference_tolerance)
                )
                out.append(
                    _pair(
                        "jaxgrad vs numpy ref",
                        self.numeric[idx],
                        self.reference,
                        self.tolerance[idx] + self.reference_tolerance,
                    )
                )
        return out

    def summary(self) -> str:
        """A readable table: per method pair, the errors, their ratio to the tolerance, the pass rate; then the
        times, the worst point and the verdict."""
        head = (
            f"compare {self.function}: d={self.dim}, {self.dtype}, {self.num_points:,} points, "
            f"{self.method} order {self.order}, {self.mode}"
        )
        rows = [
            [p.name, f"{p.points:,}", f"{p.max_abs_error:.2e}", f"{p.median_abs_error:.2e}", f"{p.max_ratio:.3g}",
             f"{p.median_ratio:.3g}", f"{p.median_rel_error:.2e}", f"{100 * p.pass_rate:.2f}%"]
            for p in self.pairs
        ]  # fmt: skip
        headers = ["pair", "points", "max |err|", "median |err|", "max err/tol", "median err/tol", "median rel err",
                   "pass"]  # fmt: skip
        lines = [format_table(headers, rows, title=head)]
        lines.append("times: " + ", ".join(f"{k} {v:.3g} s" for k, v in self.times.items()))
        worst = self.worst
        if worst is not None:
            lines.append("worst: " + worst.describe(self.exact_name))
        if self.num_points:
            lines.append(
                f"resolution: a gradient error above {np.nanmedian(self.resolution):.2g} relative would be caught at "
                f"the median point; {self.unresolved:,} point{'' if self.unresolved == 1 else 's'} cannot be resolved "
                "(tolerance ≥ |gradient|)"
            )
        lines.extend(f"note: {n}" for n in self.notes)
        nonfinite = int(self.nonfinite.sum())
        if nonfinite:
            lines.append(
                f"non-finite: at {nonfinite:,} point{'' if nonfinite == 1 else 's'} f, the numeric or the exact "
                "gradient is NaN or infinite"
            )
        failed = int((~self.passed).sum())
        if self.verdict == "OK":
            lines.append(f"verdict: OK, all {self.num_points:,} points within tolerance")
        elif self.verdict == "INCONCLUSIVE":
            lines.append(
                f"verdict: INCONCLUSIVE, no mismatch, but {self.unresolved:,} of {self.num_points:,} points cannot be "
                "resolved: try float64, another step (step=...) or method='richardson'"
            )
        else:
            lines.append(f"verdict: MISMATCH at {failed:,} of {self.num_points:,} points")
        return "\n".join(lines)

    def rows(self) -> list[dict[str, Any]]:
        """One row per point: whether it passed, its worst column and values there, its errors."""
        ratio, error = self.ratio, self.error  # computed once: each property is a whole-array pass
        n = self.num_points
        if not ratio.shape[1]:
            columns = {"numeric": [math.nan] * n, "exact": [math.nan] * n, "abs_error": [0.0] * n,
                       "tolerance": [math.inf] * n, "max_ratio": [0.0] * n, "worst_column": [""] * n}  # fmt: skip
        else:
            worst = np.argmax(ratio, axis=1)[:, None]
            columns = {
                name: np.take_along_axis(values, worst, axis=1)[:, 0].astype(np.float64).tolist()
                for name, values in (("numeric", self.numeric), ("exact", self.exact), ("abs_error", error),
                                     ("tolerance", self.tolerance), ("max_ratio", ratio))
            }  # fmt: skip
            columns["worst_column"] = [self.coordinate_names[c] if self.coordinate_names else "" for c in worst[:, 0]]
        with np.errstate(invalid="ignore", divide="ignore"):
            norm = np.maximum(np.linalg.norm(self.exact, axis=1), 1e-300)
            rel = (np.linalg.norm(self.numeric - self.exact, axis=1) / norm).tolist()
        passed = np.all(ratio <= 1, axis=1).tolist()
        return [
            {"point": i, "passed": passed[i], "worst_column": columns["worst_column"][i],
             **{k: columns[k][i] for k in ("numeric", "exact", "abs_error", "tolerance", "max_ratio")},
             "rel_error": rel[i]}
            for i in range(n)
        ]  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """Summary statistics and the per-point rows, as plain Python (JSON-ready)."""
        worst = self.worst
        return {
            "function": self.function,
            "exact": self.exact_name,
            "dtype": self.dtype,
            "mode": self.mode,
            "method": self.method,
            "order": self.order,
            "dim": self.dim,
            "num_points": self.num_points,
            "ok": self.ok,
            "verdict": self.verdict,
            "failed_points": int((~self.passed).sum()),
            "nonfinite_points": int(self.nonfinite.sum()),
            "median_resolution": float(np.nanmedian(self.resolution)) if self.num_points else math.nan,
            "unresolved_points": self.unresolved,
            "pairs": [dataclasses.asdict(p) for p in self.pairs],
            "times": dict(self.times),
            "worst": None if worst is None else dict(dataclasses.asdict(worst), ratio=worst.ratio),
            "reference_points": int(self.reference_index.size) if self.reference is not None else 0,
            "notes": list(self.notes),
            "rows": self.rows(),
        }

    def to_json(self, path) -> None:
        with open(path, "w") as stream:
            json.dump(self.to_dict(), stream, indent=1, default=float)

    def to_csv(self, path) -> None:
        write_rows_csv(path, self.rows(), {"function": self.function, "dtype": self.dtype})


def write_rows_csv(path, rows, constant_columns=None) -> None:
    """Write per-point rows (dicts) to CSV, with `constant_columns` prepended to each row."""
    constant_columns = constant_columns or {}
    rows = [dict(constant_columns, **row) for row in rows]
    with open(path, "w", newline="") as stream:
        if not rows:
            return
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# ------------------------------------------------------------------------------------------------------ compare
def _coordinate_names(point) -> tuple[str, ...]:
    """A readable name for each flattened coordinate of one point: "x[3]", "x[1, 2]" or "x['w'][1, 2]"."""
    names = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(point)[0]:
        prefix = "x" + jax.tree_util.keystr(path)
        shape = np.shape(leaf)
        names.extend(f"{prefix}[{', '.join(map(str, index))}]" if shape else prefix for index in np.ndindex(shape))
    return tuple(names)


def _name_of(fun) -> str:
    return getattr(fun, "name", None) or getattr(fun, "__name__", None) or type(fun).__name__


def _timed(call):
    start = time.perf_counter()
    out = jax.block_until_ready(call())
    return out, time.perf_counter() - start


def _exact_gradients(grad_fn, points, chunk_size, memory_budget):
    """grad_fn at every point as flat rows: jitted and vmapped when it traces, else point by point."""
    try:
        flat = run_program(_batch_exact, points, None, chunk_size=chunk_size, memory_budget=memory_budget, fun=grad_fn)
        return np.asarray(flat, np.float64), None
    except TypeError as error:  # also every NOT_TRACEABLE error: JAX's tracer errors are TypeErrors
        n = leading_size(points)
        rows = []
        for i in range(n):
            point = jax.tree_util.tree_map(lambda leaf, i=i: np.asarray(leaf[i]), points)
            rows.append(np.asarray(ravel_pytree(grad_fn(point))[0], np.float64))
        note = f"`grad_fn` does not trace under jax.jit ({type(error).__name__}); it ran point by point"
        return np.stack(rows), note


def _reference_gradients(fun, points, index, h):
    """The NumPy reference at the sampled points, at steps h and 2h (the second for its truncation estimate), as
    flat rows. A pytree point is flattened and `fun` called on its unraveled form."""
    steps = (h, 2 * h)
    if isinstance(points, jax.Array):
        rows = [
            [_reference.numerical_gradient(fun, np.asarray(points[i]), s).reshape(-1) for s in steps] for i in index
        ]
    else:
        point0 = jax.tree_util.tree_map(lambda leaf: _as_working_leaf(leaf[0]), points)
        _, unravel = ravel_pytree(point0)

        def flat_fun(v):
            return fun(unravel(v))

        rows = []
        for i in index:
            flat = np.asarray(
                ravel_pytree(jax.tree_util.tree_map(lambda leaf, i=i: _as_working_leaf(leaf[i]), points))[0]
            )
            rows.append([_reference.numerical_gradient(flat_fun, flat, s) for s in steps])
    rows = np.asarray(rows, np.float64)
    return rows[:, 0], rows[:, 1]


def _check_scalar_output(fun, point) -> None:
    """The clear errors `grad` gives for a non-scalar or non-traceable `fun`, before jax.grad gives its own."""
    try:
        out = jax.eval_shape(fun, point)
    except NOT_TRACEABLE as error:
        raise TypeError(
            f"`fun` is not traceable by JAX ({type(error).__name__}), so jax.grad cannot give the gradient to compare "
            "with. Write fun with jax.numpy, or pass traceable=False and your gradient as grad_fn= (command line: "
            "--numpy --grad module:attr)."
        ) from error
    except Exception:  # let the real evaluation report it
        return
    if not hasattr(out, "shape"):
        raise TypeError(f"`fun` must return a scalar array, got {type(out).__name__}.")
    if out.shape != ():
        raise ValueError(
            f"`fun` must return a scalar, but it returned shape {out.shape} for one point. Reduce it to one number "
            "(e.g. jnp.sum), or compare each output separately."
        )


def _empty_comparison(name, exact_name, dtype, stencil, dim, point) -> Comparison:
    empty = np.zeros((0, dim))
    return Comparison(name, exact_name, np.dtype(dtype).name, "coordinates", stencil.method, stencil.order, dim,
                      empty, empty, empty, np.zeros(0, int), None, None, _coordinate_names(point), {})  # fmt: skip


def default_reference_points(num_points: int, dim: int) -> int:
    """How many points the (slow, one coordinate at a time) NumPy reference runs on by default: at most 100, and
    at most about 40,000 evaluations of f (4·d per point: steps h and 2h)."""
    return int(min(num_points, 100, max(1, 40_000 // max(4 * dim, 1))))


def compare(
    fun,
    points,
    *,
    grad_fn=None,
    reference: bool = True,
    reference_points: int | None = None,
    method: str = "central",
    order: int | None = None,
    step=None,
    directions: int | None = None,
    rtol: float = 0.0,
    atol: float = 0.0,
    seed: int = 0,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    name: str | None = None,
    traceable: bool = True,
) -> Comparison:
    """Compare jaxgrad's numeric gradient with `grad_fn` (default `jax.grad(fun)`) and the NumPy reference, per point.

    Each point passes when |numeric − exact| ≤ `tolerance(...)` in every coordinate: a bound derived from the dtype,
    the step, the stencil, the local size of f and a Richardson estimate of the truncation error (the numeric gradient
    is also computed at step 2h, so the check costs 2× `batch_grad`). The NumPy reference (the notes' loop, h = 1e-4)
    runs on a random sample of the points and is reported beside it.

    Coordinate mode (the default for d ≤ 4096) checks every coordinate: 4·d evaluations per point for central
    order 2. Directional mode (`directions=K`, the default above 4096) checks K random unit directions per point:
    4·K evaluations whatever d, compared with <grad_fn(x), v> for the same displaced points. The trade-off: a bug
    confined to one coordinate i shows in a random direction only with weight |v_i| ≈ 1/√d, so it is caught when its
    size exceeds about √d times the tolerance; more directions raise the chance that some v weights it strongly.

    Args:
      fun: scalar function of one point (array or pytree), traceable by JAX.
      points: a batch, shape (N, ...) or a pytree with leading axis N.
      grad_fn: the gradient to check, x -> pytree like x; None means `jax.grad(fun)`. It need not be traceable
        (it then runs point by point).
      reference: also run the NumPy reference (coordinate mode only).
      reference_points: points the reference runs on; None: `default_reference_points(N, d)`.
      method, order, step: the numeric stencil, as in `grad`.
      directions: None (automatic), or the number of random directions per point (directional mode).
      rtol, atol: added to the tolerance.
      seed: picks the reference sample and the random directions.
      chunk_size, memory_budget: as in `batch_grad`.
      name: the function's name in the report.
      traceable: False for a `fun` written with NumPy: it is called on the host (see `grad`); `grad_fn` must then be
        given (jax.grad cannot differentiate it), and only coordinate mode is available.

    Returns:
      A `Comparison`.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> points = jg.functions.rosenbrock.sample(500, 4, dtype="float32")
      >>> rep = jg.compare(jg.functions.rosenbrock, points)
      >>> rep.ok, rep.passed.shape
      (True, (500,))
    """
    stencil = make_stencil(method, order)
    check_batch_arguments(step, chunk_size, memory_budget)
    points = as_points(points)
    n = leading_size(points)
    point0 = jax.tree_util.tree_map(lambda leaf: _as_working_leaf(leaf[0] if n else jnp.zeros(leaf.shape[1:])), points)
    dim = sum(math.prod(np.shape(leaf)[1:]) for leaf in jax.tree_util.tree_leaves(points))
    dtype = np.result_type(*[working_dtype(leaf.dtype) for leaf in jax.tree_util.tree_leaves(points)])
    exact_name = "jax.grad" if grad_fn is None else _name_of(grad_fn)
    if n == 0:
        return _empty_comparison(name or _name_of(fun), exact_name, dtype, stencil, dim, point0)
    if not traceable and (grad_fn is None or directions is not None):
        raise ValueError(
            "traceable=False needs `grad_fn` (jax.grad cannot differentiate a function JAX cannot trace) and "
            "coordinate mode (directions=None)."
        )
    warn_if_low_precision(points)
    if grad_fn is None:
        _check_scalar_output(fun, point0)
        grad_fn = jax.grad(fun)
    if directions is None and dim > 4096:
        directions = 16
    if directions is not None and (isinstance(directions, bool) or not isinstance(directions, int) or directions < 1):
        raise ValueError(f"`directions` must be a positive integer or None, got {directions!r}.")
    if directions is not None and step is not None:
        raise ValueError(
            "`step` applies to coordinate mode; directional mode steps t = eps^(1/(p+1))·max(|x|, 1) along each "
            "direction. Pass step=None, or directions=None to check every coordinate with your step."
        )
    notes = []
    times = {}
    knobs = {"chunk_size": chunk_size, "memory_budget": memory_budget}
    try:
        exact, times[exact_name] = _timed(lambda: _exact_gradients(grad_fn, points, **knobs))
        exact, note = exact
        if note:
            notes.append(note)
        if directions is None:
            if traceable:
                values, times["jaxgrad (h and 2h)"] = _timed(
                    lambda: run_program(_batch_check, points, step, fun=fun, stencil=stencil, **knobs)
                )
            else:
                values, times["jaxgrad (h and 2h), fun on the host"] = _timed(
                    lambda: host_estimate_parts(fun, stencil, points, step)
                )
            if step is not None:
                _raise_if_step_vanished(values["vanished"], step)
            values = {k: np.asarray(v, np.float64) for k, v in values.items()}
            numeric, exact_columns = values["g"], exact
            tol = tolerance(dtype, values["h"], stencil.weight_sum, values["f_noise"], values["g"],
                            values["g_double"], stencil.order, exact, rtol=rtol, atol=atol)  # fmt: skip
            names = _coordinate_names(point0)
            mode = "coordinates"
        else:
            inputs = (points, jnp.asarray(exact, dtype), jnp.arange(n))
            key = jax.random.key(seed)
            values, times["jaxgrad directional"] = _timed(
                lambda: run_program(
                    _batch_directional, inputs, key, fun=fun, stencil=stencil, count=directions, **knobs
                )
            )
            values = {k: np.asarray(v, np.float64) for k, v in values.items()}
            numeric, exact_columns = values["g"], values["exact"]
            # the truncation estimate is taken on the error e(t) = D(t) − A(t), which a wrong g cannot shrink
            tol = tolerance(dtype, values["h"], stencil.weight_sum, values["f_noise"], values["g"] - values["exact"],
                            values["g_double"] - values["exact_double"], stencil.order, values["dot_scale"],
                            rtol=rtol, atol=atol)  # fmt: skip
            names = tuple(f"direction {k}" for k in range(directions))
            mode = f"{directions} random directions"
            reference = False
    except Exception as error:
        raise_if_missing_batch_axis(fun, points, error)
        raise
    ref = ref_tol = None
    index = np.zeros(0, int)
    if reference and n:
        m = default_reference_points(n, dim) if reference_points is None else min(int(reference_points), n)
        index = np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))
        (ref, ref_double), times[f"numpy ref ({m} pts)"] = _timed(
            lambda: _reference_gradients(fun, points, index, _reference.DEFAULT_H)
        )
        noise = np.max(values["f_noise"], axis=1, keepdims=True)[index]  # the noise of f at these points
        ref_tol = tolerance(dtype, _reference.DEFAULT_H, 1.0, noise, ref, ref_double, 2,
                            exact[index])  # fmt: skip
        if m < n:
            notes.append(f"the NumPy reference ran on {m:,} of {n:,} points, drawn at random (seed {seed})")
    return Comparison(
        function=name or _name_of(fun),
        exact_name=exact_name,
        dtype=np.dtype(dtype).name,
        mode=mode,
        method=stencil.method,
        order=stencil.order,
        dim=dim,
        numeric=numeric.reshape(n, -1),
        exact=exact_columns.reshape(n, -1),
        tolerance=tol.reshape(n, -1),
        reference_index=index,
        reference=ref,
        reference_tolerance=ref_tol,
        coordinate_names=names,
        times=times,
        notes=tuple(notes),
        points=np.asarray(jax.vmap(lambda p: ravel_pytree(p)[0].astype(dtype))(points), np.float64),
    )


# ------------------------------------------------------------------------------------------------------ taylor test
@dataclasses.dataclass(frozen=True, eq=False)
class TaylorResult:
    """The Taylor remainder r(t) = |f(x + t v) − f(x) − <g, fl(x + t v) − x>| at halving steps t, and its slope.

    r(t) ≈ ½ t² |vᵀ H v| when g is the gradient (slope 2 on a log-log plot) and ≈ t |<g − ∇f, v>| when it is not
    (slope 1), down to the rounding floor of f. `used` marks the steps the slope was fitted on: the smallest ones whose
    remainder is still well above that floor, where a linear term, if any, dominates. `resolution` is r(t)/t at the
    smallest of them: an error <g − ∇f, v> below it would not bend the slope, so "correct" means "correct to within
    the resolution" (in float32 that can be a sizable fraction of the gradient).
    """

    slope: float
    steps: np.ndarray
    remainders: np.ndarray
    noise_floor: np.ndarray
    used: np.ndarray
    verdict: str  # "correct", "wrong" or "inconclusive"
    reason: str
    resolution: float  # the smallest |<g − ∇f, v>| this test could have seen here

    def __repr__(self) -> str:
        return f"TaylorResult(slope={self.slope:.3f}, verdict={self.verdict!r}, resolution={self.resolution:.3g})"

    @property
    def correct(self) -> bool:
        return self.verdict == "correct"

    def summary(self) -> str:
        rows = [
            [f"{t:.3e}", f"{r:.3e}", f"{floor:.3e}", "*" if u else ""]
            for t, r, floor, u in zip(self.steps, self.remainders, self.noise_floor, self.used, strict=True)
        ]
        table = format_table(["t", "remainder", "rounding floor", "fitted"], rows)
        return f"{table}\nslope {self.slope:.3f}: {self.verdict} ({self.reason})"


@functools.partial(jax.jit, static_argnames=("fun",))
def _taylor_values(x, direction, steps, *, fun):
    flat_x, unravel = ravel_pytree(x)
    moved = flat_x[None] + steps[:, None] * direction[None]
    return fun(x), jax.vmap(lambda row: fun(unravel(row)))(moved), moved - flat_x[None]


def taylor_test(
    fun,
    x,
    *,
    grad_fn=None,
    direction=None,
    seed: int = 0,
    num_steps: int | None = None,
    window: int = 5,
    margin: float = 10.0,
) -> TaylorResult:
    """Step-free check of a gradient: the Taylor remainder shrinks like t² iff g is the gradient.

    Evaluates r(t) = |f(x + t v) − f(x) − <g, Δ(t)>| with Δ(t) = fl(x + t v) − x the displacement the dtype really
    makes, at t = t0 / 2^k, k = 0, 1, ..., t0 = max(|x|_∞, 1) / 4, down to t ≈ eps·t0. It fits the slope of log r
    against log t on the `window` smallest steps whose remainder exceeds `margin` times the rounding floor
    2·eps·(|f(x)| + |f(x + t v)|): about 2 means g is right, about 1 means g is wrong along v. No finite-difference
    step is chosen, so this tells a wrong gradient from a badly chosen step.

    Args:
      fun: scalar function of one point (array or pytree), traceable by JAX.
      x: the point.
      grad_fn: the gradient to test (None: `jax.grad(fun)`); called once, need not be traceable.
      direction: v, like x (None: a random unit vector from `seed`).
      num_steps: how many halvings (None: enough to reach the dtype's resolution).
      window, margin: the fit (see above).

    Returns:
      A `TaylorResult`: verdict "correct" for slope ≥ 1.8 (or a remainder that stays at the rounding floor: g is right
      to rounding along v), "wrong" for slope ≤ 1.2, else "inconclusive".

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> jg.taylor_test(jg.functions.rosenbrock, jnp.array([0.5, -1.0, 2.0])).verdict
      'correct'
      >>> jg.taylor_test(jg.functions.rosenbrock, jnp.array([0.5, -1.0, 2.0]), grad_fn=lambda x: 1.01 * x).verdict
      'wrong'
    """
    x = jax.tree_util.tree_map(_as_working_leaf, x)
    flat_x, _ = ravel_pytree(x)
    dtype = flat_x.dtype
    eps = float(jnp.finfo(dtype).eps)
    g = np.asarray(ravel_pytree((jax.grad(fun) if grad_fn is None else grad_fn)(x))[0], np.float64)
    if direction is None:
        v = np.random.default_rng(seed).normal(size=flat_x.shape)
        v /= np.linalg.norm(v)
    else:
        v = np.asarray(ravel_pytree(direction)[0], np.float64)
    t0 = max(float(np.max(np.abs(np.asarray(flat_x, np.float64)), initial=0.0)), 1.0) / 4
    if num_steps is None:
        num_steps = int(-math.log2(eps)) + 2
    steps = t0 * 2.0 ** -np.arange(num_steps)
    f0, values, displacement = _taylor_values(x, jnp.asarray(v, dtype), jnp.asarray(steps, dtype), fun=fun)
    f0, values, displacement = (np.asarray(a, np.float64) for a in (f0, values, displacement))
    remainders = np.abs(values - f0 - displacement @ g)
    floor = 2 * eps * (abs(f0) + np.abs(values)) + 2 * eps * np.abs(displacement) @ np.abs(g)
    above = remainders > margin * floor
    used = np.zeros(num_steps, bool)
    if above.any():
        last = int(np.flatnonzero(above)[-1])  # the smallest step still above the floor ...
        first = last
        while first > 0 and above[first - 1] and last - first + 1 < window:  # ... and the ones just before it
            first -= 1
        used[first : last + 1] = True
    if used.sum() >= 3:
        slope = float(np.polyfit(np.log2(steps[used]), np.log2(remainders[used]), 1)[0])
        smallest = int(np.flatnonzero(used)[-1])
        resolution = float(remainders[smallest] / steps[smallest])
        if slope >= 1.8:
            verdict, reason = "correct", "the remainder shrinks like t², as it does for the true gradient"
        elif slope <= 1.2:
            verdict, reason = "wrong", "the remainder shrinks like t: <g, v> differs from the directional derivative"
        else:
            verdict, reason = "inconclusive", "the slope is between 1 and 2"
    elif not above.any():
        slope = math.nan
        resolution = float(np.min(margin * floor / steps))
        verdict, reason = "correct", "the remainder stays at the rounding floor of f: g is right to rounding along v"
    else:
        slope = math.nan
        resolution = float(np.min(margin * floor / steps))
        verdict, reason = "inconclusive", f"only {int(used.sum())} steps lie above the rounding floor"
    return TaylorResult(slope, steps, remainders, floor, used, verdict, reason, resolution)


# ------------------------------------------------------------------------------------------------------ check_grad
def taylor_hint(fun, point, coordinate: int, *, grad_fn=None, name: str | None = None, error: float = math.inf) -> str:
    """One sentence from `taylor_test` along one coordinate: is the gradient wrong there, or the step?

    `error` is the mismatch the numeric check saw; when it is below the Taylor test's resolution, a slope of 2 proves
    nothing and the hint says so.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> from jaxgrad._verify import taylor_hint
      >>> taylor_hint(jg.functions.sphere, jnp.array([1.0, 2.0]), 1, grad_fn=lambda x: x * jnp.array([2.0, 2.2]))
      'Taylor test along x[1] at that point: slope 1.00, the gradient is wrong there (a correct one gives 2).'
    """
    flat, unravel = ravel_pytree(jax.tree_util.tree_map(_as_working_leaf, point))
    axis = unravel(jnp.zeros_like(flat).at[coordinate].set(1))
    result = taylor_test(fun, point, grad_fn=grad_fn, direction=axis)
    if result.verdict == "wrong":
        hint = "the gradient is wrong there (a correct one gives 2)"
    elif result.verdict == "correct" and error <= result.resolution:
        hint = (
            f"inconclusive: the Taylor test cannot see an error of {error:.3g} here (its resolution in "
            f"{flat.dtype} is {result.resolution:.3g}); run the check in float64"
        )
    elif result.verdict == "correct":
        hint = "the gradient looks right; the finite-difference step is at fault: try order=4 or another step"
    else:
        hint = "inconclusive: " + result.reason
    name = name or _coordinate_names(point)[coordinate]
    return f"Taylor test along {name} at that point: slope {result.slope:.2f}, {hint}."


class GradientMismatchError(AssertionError):
    """Raised by `check_grad` when a gradient disagrees with the numeric one beyond tolerance."""

    def __init__(self, message: str, comparison: Comparison):
        super().__init__(message)
        self.comparison = comparison


def _is_single_point(fun, points) -> bool:
    """One point, unless `points` has a leading axis whose rows `fun` takes: a 1-D array is one point; an array of
    higher rank (or a pytree whose leaves share a leading size) is a batch when `fun` maps one row to a scalar."""
    leaves = [jnp.asarray(leaf) for leaf in jax.tree_util.tree_leaves(points)]
    if not leaves or any(leaf.ndim == 0 for leaf in leaves) or len({leaf.shape[0] for leaf in leaves}) > 1:
        return True
    if isinstance(points, (jax.Array, np.ndarray)) and np.ndim(points) == 1:
        return True
    row = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[0], points)
    try:
        out = jax.eval_shape(fun, row)
    except Exception:  # fun cannot take a row: the whole input is one point
        return True
    return getattr(out, "shape", None) != ()


def check_grad(fun, points, *, grad_fn=None, batched: bool | None = None, taylor: bool = True, **options) -> Comparison:
    """Assert that `grad_fn` (default `jax.grad(fun)`) is the gradient of `fun`, for use in test suites.

    Runs `compare` (without the NumPy reference unless `reference=True` is passed) and raises when any point is out
    of tolerance, with a message that names the worst point and coordinate, the numeric and analytic values and the
    tolerance, and a hint from `taylor_test` along that coordinate: a slope near 1 means the gradient is wrong, near 2
    that it is right and the finite-difference step is at fault.

    Args:
      fun: scalar function of one point, traceable by JAX.
      points: one point or a batch (array or pytree).
      grad_fn: the gradient to check.
      batched: whether `points` is a batch along its leading axis. None decides: a 1-D array is one point; an array
        of higher rank (or a pytree with a shared leading size) is a batch when `fun` maps one row to a scalar.
      taylor: run the Taylor test for the hint.
      **options: passed to `compare` (rtol, atol, directions, method, order, step, reference, ...).

    Returns:
      The `Comparison`, when every point passes (with a warning when its verdict is INCONCLUSIVE).

    Raises:
      GradientMismatchError: an AssertionError carrying the `Comparison`.

    Example:
      >>> import jax, jax.numpy as jnp, jaxgrad as jg
      >>> @jax.custom_jvp
      ... def f(x): return jnp.sum(jnp.sin(x))
      >>> _ = f.defjvp(lambda p, t: (f(p[0]), jnp.dot(jnp.cos(p[0]) * jnp.array([1.0, -1.0]), t[0])))  # sign bug
      >>> jg.check_grad(f, jnp.array([0.3, 0.7]))
      Traceback (most recent call last):
      ...
      jaxgrad._verify.GradientMismatchError: gradient mismatch at 1 of 1 points; worst: point 0, x[1]: ...
    """
    options.setdefault("reference", False)
    single = _is_single_point(fun, points) if batched is None else not batched
    batch = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[None], points) if single else points
    rep = compare(fun, batch, grad_fn=grad_fn, **options)
    if rep.ok:
        if rep.verdict == "INCONCLUSIVE":
            warnings.warn(
                f"check_grad is inconclusive: {rep.unresolved} of {rep.num_points} points cannot be resolved (the "
                "tolerance is as large as the gradient); try float64, another step or method='richardson'.",
                stacklevel=2,
            )
        return rep
    worst = rep.worst
    failed = int((~rep.passed).sum())
    lines = [
        f"gradient mismatch at {failed} of {rep.num_points} points; worst: {worst.describe(rep.exact_name)}.",
    ]
    if taylor and rep.mode == "coordinates" and math.isfinite(worst.error):
        point = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[worst.point], batch)
        lines.append(taylor_hint(fun, point, worst.coordinate, grad_fn=grad_fn, name=worst.name, error=worst.error))
    elif rep.mode != "coordinates":
        lines.append("Run check_grad(..., directions=None) at that point to find the coordinate.")
    lines.append(
        f"{failed} failing point(s): {np.flatnonzero(~rep.passed)[:10].tolist()}{' ...' if failed > 10 else ''}"
    )
    raise GradientMismatchError("\n".join(lines), rep)
