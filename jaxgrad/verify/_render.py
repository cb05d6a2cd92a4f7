"""A `Comparison` as text, per-point rows, a JSON-ready dict, and JSON or CSV files."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from typing import NamedTuple

import numpy as np

from .._schemes import Mode
from .._table import format_table
from ..numerics import relative_error
from ._verdict import Verdict


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def summary(rep) -> str:
    """The report of `Comparison.summary`."""
    points = f"{rep.num_points:,} point{'s' if rep.num_points != 1 else ''}"
    head = (
        f"compare {rep.function}: d={rep.dim}, {rep.dtype}, {points}, {rep.method} order {rep.order}, {rep.mode_label}"
    )
    rows = [
        [p.name, f"{p.points:,}", f"{p.max_abs_error:.2e}", f"{p.median_abs_error:.2e}", f"{p.max_ratio:.3g}",
         f"{p.median_ratio:.3g}", f"{p.median_rel_error:.2e}", f"{100 * p.pass_rate:.2f}%"]
        for p in rep.pairs
    ]  # fmt: skip
    headers = ["pair", "points", "max |err|", "median |err|", "max err/tol", "median err/tol", "median rel err",
               "pass"]  # fmt: skip
    lines = [format_table(headers, rows, title=head)]
    if rep.times:
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
        remedy = "step='auto' steps around a kink, a shorter step resolves a wave"
        if rep.mode is Mode.DIRECTIONAL:  # a direction's step is not the caller's
            remedy = "directions=None checks every coordinate, with step='auto', which steps around a kink"
        lines.append(f"not smooth here: {_plural(kinked, 'point')} out of tolerance where f is not smooth at the step: "
                     "a kink or a jump inside the stencil, or a wave no longer than it (not counted as mismatches; "
                     f"{remedy})")  # fmt: skip
    failed = int(rep.mismatched.sum())
    if rep.verdict is Verdict.OK:
        lines.append(f"verdict: OK, no mismatch at {rep.num_points:,} points ({kinked:,} not smooth here)" if kinked
                     else f"verdict: OK, all {rep.num_points:,} points within tolerance")  # fmt: skip
    elif rep.verdict is Verdict.INCONCLUSIVE:
        lines.append(f"verdict: INCONCLUSIVE, no mismatch, but {inconclusive_reason(rep)}")
    else:
        lines.append(f"verdict: MISMATCH at {failed:,} of {rep.num_points:,} points")
    return "\n".join(lines)


def inconclusive_reason(rep, at: str = "", cli: bool = False, widened: str = "") -> str:
    """Why a run is INCONCLUSIVE and what to try: "12 of 300 points cannot be resolved{at} (the tolerance is as large
    as the gradient there); 4 of 300 points are not smooth here: try float64, ..." (float64 only where the run was
    not; `at`, the step, and "another step" only in coordinate mode, a direction's step is not the caller's; the
    options spelled for the command line with `cli`; `widened`, the tolerance options the caller widened, e.g.
    "--atol 100", named as a cause). With no point, nothing was checked. With the complex step, always: exact to
    rounding itself, it meets the exact gradient's own rounding, which the gradient's formula decides (σ(1 − σ) near
    1, 1 − tanh², p − 1 of a confident softmax: up to thousands of eps) and no tolerance can bound from outside, nor
    XLA's complex arithmetic (cosh near 0)."""
    method = "--method {}".format if cli else "method='{}'".format
    if not rep.num_points:
        return "no point was checked: the batch of points is empty"
    if rep.method == "complex":
        return ("the complex step cannot check a gradient to its own precision, where the exact gradient's rounding "
                f"is unknown: compare with {method('central')} or {method('richardson')}")  # fmt: skip
    at = at if rep.mode is Mode.COORDINATES else ""
    parts = [f"{rep.unresolved:,} of {rep.num_points:,} points cannot be resolved{at} (the tolerance is as large as "
             "the gradient there)"] if rep.unresolved else []  # fmt: skip
    kinked = int(rep.kinked.sum())
    parts += [f"{kinked:,} of {rep.num_points:,} points are not smooth here"] if kinked else []
    tries = [] if rep.dtype == "float64" else ["--dtype float64" if cli else "float64"]
    if rep.mode is Mode.COORDINATES:  # a direction's step is not the user's
        tries += ["another --step" if cli else "another step (step=...)"]
    *rest, last = [*tries, method("richardson")]
    given = f"; the tolerance includes {widened}: smaller values resolve more" if widened else ""
    return "; ".join(parts) + ": try " + (f"{', '.join(rest)} or {last}" if rest else last) + given


ROW_KEYS = ("point", "passed", "worst_column", "numeric", "exact", "abs_error", "tolerance", "max_ratio", "rel_error")
"""The keys of a per-point row, in order."""
CSV_HEADER = ("function", "dtype", *ROW_KEYS)
"""The columns of `Comparison.to_csv`."""


def _columns(rep) -> dict:
    """The per-point rows as columns (Python lists, keys `ROW_KEYS`), computed in whole-array passes."""
    ratio, error = rep.ratio, rep.error  # computed once: each property is a whole-array pass
    n = rep.num_points
    if not ratio.shape[1]:
        columns = {"worst_column": [""] * n, "numeric": [math.nan] * n, "exact": [math.nan] * n,
                   "abs_error": [0.0] * n, "tolerance": [math.inf] * n, "max_ratio": [0.0] * n}  # fmt: skip
    else:
        worst = np.argmax(ratio, axis=1)[:, None]
        names = rep.coordinate_names
        columns = {"worst_column": [names[c] if names else "" for c in worst[:, 0]]}
        columns.update(
            (name, np.take_along_axis(values, worst, axis=1)[:, 0].astype(np.float64).tolist())
            for name, values in (("numeric", rep.numeric), ("exact", rep.exact), ("abs_error", error),
                                 ("tolerance", rep.tolerance), ("max_ratio", ratio))
        )  # fmt: skip
    columns["point"] = list(range(n))
    columns["passed"] = np.all(ratio <= 1, axis=1).tolist()
    columns["rel_error"] = relative_error(rep.numeric, rep.exact, axis=1).tolist()
    return {key: columns[key] for key in ROW_KEYS}


def rows(rep) -> list[dict]:
    """The per-point rows of `Comparison.rows`."""
    columns = _columns(rep)
    return [dict(zip(ROW_KEYS, values, strict=True)) for values in zip(*columns.values(), strict=True)]


class Serialized(NamedTuple):
    """A comparison as the text of its files: `json` is `json.dumps(rep.to_dict(), default=float)` (one line),
    `csv_header` the columns of `to_csv` and `csv_body` its rows as CSV text (what `csv.writer` writes)."""

    json: str
    csv_header: tuple[str, ...]
    csv_body: str


_CSV_SPECIAL = {"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}  # JSON's names, as str(float) writes them


def serialize(rep) -> Serialized:
    """`Comparison.serialize`: the rows' columns encoded once, each number by one call of json's C encoder (its text
    is Python's repr, shared by the CSV), zipped into the JSON and the CSV text without building a dict per row."""
    columns = _columns(rep)
    texts = {key: json.dumps(columns[key])[1:-1] for key in ROW_KEYS[3:]}
    numbers = {key: text.split(", ") if text else [] for key, text in texts.items()}
    points = list(map(str, columns["point"]))
    names = {name: json.dumps(name) for name in set(columns["worst_column"])}
    json_columns = [points, ["true" if p else "false" for p in columns["passed"]],
                    [names[name] for name in columns["worst_column"]], *numbers.values()]  # fmt: skip
    template = "{{" + ", ".join(f"{json.dumps(key)}: {{}}" for key in ROW_KEYS) + "}}"
    rows_text = "[" + ", ".join(map(template.format, *json_columns)) + "]"  # the columns are n long each
    head = json.dumps(to_dict(rep, with_rows=False), default=float)
    csv_numbers = [[_CSV_SPECIAL.get(v, v) for v in numbers[key]] if "N" in text or "I" in text else numbers[key]
                   for key, text in texts.items()]  # NaN, Infinity: spelled otherwise in a CSV  # fmt: skip
    csv_names = {name: _csv_field(name) for name in names}
    fixed = f"{_csv_field(rep.function)},{_csv_field(rep.dtype)},".replace("{", "{{").replace("}", "}}")
    line = fixed + ",".join(["{}"] * (len(ROW_KEYS))) + "\r\n"  # csv.writer's line ending
    body = "".join(map(line.format, points, ["True" if p else "False" for p in columns["passed"]],
                       [csv_names[name] for name in columns["worst_column"]], *csv_numbers))  # fmt: skip
    return Serialized(head[:-1] + ', "rows": ' + rows_text + "}", CSV_HEADER, body)


def _csv_field(text: str) -> str:
    """`text` as one field of a row that csv.writer writes (quoted where it holds a comma, a quote or a line break;
    empty stays empty): the few texts of a comparison's rows that are not numbers, quoted once each."""
    if not text:
        return ""
    out = io.StringIO()
    csv.writer(out).writerow([text])
    return out.getvalue()[:-2]


def to_dict(rep, *, with_rows: bool = True) -> dict:
    """The plain-Python form of `Comparison.to_dict` (without "rows": `with_rows=False`)."""
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
        **({"rows": rows(rep)} if with_rows else {}),
    }
