"""A `Comparison` as text, per-point rows, a JSON-ready dict, and JSON or CSV files."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._table import format_table
from ..numerics import relative_error
from ._verdict import Verdict


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def summary(rep) -> str:
    """The report of `Comparison.summary`."""
    head = (
        f"compare {rep.function}: d={rep.dim}, {rep.dtype}, {rep.num_points:,} points, "
        f"{rep.method} order {rep.order}, {rep.mode_label}"
    )
    rows = [
        [p.name, f"{p.points:,}", f"{p.max_abs_error:.2e}", f"{p.median_abs_error:.2e}", f"{p.max_ratio:.3g}",
         f"{p.median_ratio:.3g}", f"{p.median_rel_error:.2e}", f"{100 * p.pass_rate:.2f}%"]
        for p in rep.pairs
    ]  # fmt: skip
    headers = ["pair", "points", "max |err|", "median |err|", "max err/tol", "median err/tol", "median rel err",
               "pass"]  # fmt: skip
    lines = [format_table(headers, rows, title=head)]
    lines.append("times: " + ", ".join(f"{k} {v:.3g} s" for k, v in rep.times.items()))
    worst = rep.worst
    if worst is not None:
        lines.append("worst: " + worst.describe(rep.exact_name))
    if rep.num_points:
        lines.append(
            f"resolution: a gradient error above {np.nanmedian(rep.resolution):.2g} relative would be caught at "
            f"the median point; {_plural(rep.unresolved, 'point')} cannot be resolved (tolerance ≥ |gradient|)"
        )
    lines.extend(f"note: {n}" for n in rep.notes)
    nonfinite = int(rep.nonfinite.sum())
    if nonfinite:
        lines.append(f"non-finite: at {_plural(nonfinite, 'point')} f, the numeric or the exact gradient is NaN or "
                     "infinite")  # fmt: skip
    kinked = int(rep.kinked.sum())
    if kinked:
        lines.append(f"not smooth here: {_plural(kinked, 'point')} out of tolerance where f has a kink or a jump "
                     "inside the stencil (not counted as mismatches; step='auto' steps around them)")  # fmt: skip
    failed = int(rep.mismatched.sum())
    if rep.verdict is Verdict.OK:
        lines.append(f"verdict: OK, no mismatch at {rep.num_points:,} points ({kinked:,} not smooth here)" if kinked
                     else f"verdict: OK, all {rep.num_points:,} points within tolerance")  # fmt: skip
    elif rep.verdict is Verdict.INCONCLUSIVE:
        lines.append(
            f"verdict: INCONCLUSIVE, no mismatch, but {rep.unresolved:,} of {rep.num_points:,} points cannot be "
            "resolved: try float64, another step (step=...) or method='richardson'"
        )
    else:
        lines.append(f"verdict: MISMATCH at {failed:,} of {rep.num_points:,} points")
    return "\n".join(lines)


def rows(rep) -> list[dict]:
    """The per-point rows of `Comparison.rows`."""
    ratio, error = rep.ratio, rep.error  # computed once: each property is a whole-array pass
    n = rep.num_points
    if not ratio.shape[1]:
        columns = {"numeric": [math.nan] * n, "exact": [math.nan] * n, "abs_error": [0.0] * n,
                   "tolerance": [math.inf] * n, "max_ratio": [0.0] * n, "worst_column": [""] * n}  # fmt: skip
    else:
        worst = np.argmax(ratio, axis=1)[:, None]
        columns = {
            name: np.take_along_axis(values, worst, axis=1)[:, 0].astype(np.float64).tolist()
            for name, values in (("numeric", rep.numeric), ("exact", rep.exact), ("abs_error", error),
                                 ("tolerance", rep.tolerance), ("max_ratio", ratio))
        }  # fmt: skip
        columns["worst_column"] = [rep.coordinate_names[c] if rep.coordinate_names else "" for c in worst[:, 0]]
    rel = relative_error(rep.numeric, rep.exact, axis=1).tolist()
    passed = np.all(ratio <= 1, axis=1).tolist()
    return [
        {"point": i, "passed": passed[i], "worst_column": columns["worst_column"][i],
         **{k: columns[k][i] for k in ("numeric", "exact", "abs_error", "tolerance", "max_ratio")},
         "rel_error": rel[i]}
        for i in range(n)
    ]  # fmt: skip


def to_dict(rep) -> dict:
    """The plain-Python form of `Comparison.to_dict`."""
    worst = rep.worst
    return {
        "function": rep.function,
        "exact": rep.exact_name,
        "dtype": rep.dtype,
        "mode": rep.mode_label,
        "method": rep.method,
        "order": rep.order,
        "dim": rep.dim,
        "num_points": rep.num_points,
        "ok": rep.ok,
        "verdict": rep.verdict.value,
        "failed_points": int(rep.mismatched.sum()),
        "not_smooth_points": int(rep.kinked.sum()),
        "nonfinite_points": int(rep.nonfinite.sum()),
        "median_resolution": float(np.nanmedian(rep.resolution)) if rep.num_points else math.nan,
        "unresolved_points": rep.unresolved,
        "pairs": [dataclasses.asdict(p) for p in rep.pairs],
        "times": dict(rep.times),
        "worst": None if worst is None else dict(dataclasses.asdict(worst), ratio=worst.ratio),
        "reference_points": int(rep.reference_index.size) if rep.reference is not None else 0,
        "notes": list(rep.notes),
        "rows": rows(rep),
    }


def with_constants(rows_, **constants) -> list[dict]:
    """Every row with `constants` as its first columns."""
    return [dict(constants, **row) for row in rows_]
