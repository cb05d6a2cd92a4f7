"""The comparison's data and statistics: per point and coordinate, numeric vs exact vs reference, and the verdict."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import ClassVar

import numpy as np

from .._files import CsvText, write_csv, write_json
from .._schemes import Mode
from ..numerics import norm, relative_error
from . import _render
from ._verdict import Verdict

INCONCLUSIVE_SHARE = 0.1
"""A run with no mismatch is INCONCLUSIVE when more than this share of its points cannot be resolved."""


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
        """One line: where, the values (with as many digits as tell them apart: a float64 mismatch can lie in the
        tenth digit), the error against the tolerance."""
        digits = next((n for n in range(8, 17) if f"{self.numeric:.{n}g}" != f"{self.exact:.{n}g}"), 17)
        numeric, exact = f"{self.numeric:.{digits}g}", f"{self.exact:.{digits}g}"
        ref = "" if self.reference is None else f", numpy ref {self.reference:.{digits}g}"
        if not (math.isfinite(self.error) and math.isfinite(self.tolerance)):
            return (
                f"point {self.point}, {self.name}: non-finite values, jaxgrad {numeric}, "
                f"{exact_name} {exact}{ref} (f or a gradient is NaN or infinite there)"
            )
        return (
            f"point {self.point}, {self.name}: jaxgrad {numeric}, {exact_name} {exact}{ref}; "
            f"|error| {self.error:.3g} vs tolerance {self.tolerance:.3g} ({self.ratio:.3g}× the tolerance)"
        )


def ratio(err, tol):
    """err / tol, 0 where err is 0, inf where either is not finite."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(err == 0, 0.0, err / tol)
    return np.where(np.isfinite(err) & np.isfinite(tol), out, np.inf)


def pair_stats(name, a, b, tol) -> PairStats:
    """How the values `a` and `b` (points × columns) agree within the tolerances `tol`."""
    err = np.abs(a - b)
    ratios = ratio(err, tol)
    per_point = np.all(ratios <= 1, axis=-1) if err.ndim > 1 else ratios <= 1
    rel = relative_error(a, b)
    rel = rel[np.isfinite(rel)]
    finite = err[np.isfinite(err)]
    return PairStats(
        name,
        int(err.shape[0]),
        float(finite.max()) if finite.size else math.nan,
        float(np.median(finite)) if finite.size else math.nan,
        float(ratios.max()) if ratios.size else 0.0,
        float(np.median(ratios)) if ratios.size else 0.0,
        float(per_point.mean()) if per_point.size else 1.0,
        float(np.median(rel)) if rel.size else math.nan,
    )


def read_only(array: np.ndarray, copy: bool = False) -> np.ndarray:
    """`array` made read-only. With `copy`, a copy where anyone may still write its memory (it, or an array it is a
    view of, is writable: `np.broadcast_to` of the caller's array); without, in place, the arrays it views too (arrays
    of one's own)."""
    if copy and _writable_memory(array):
        array = array.copy()
    base = array
    while isinstance(base, np.ndarray):
        base.flags.writeable = False
        base = base.base
    return array


def _writable_memory(array: np.ndarray) -> bool:
    """Whether `array` or an array it is a view of is writable (memory that is not an array's, a JAX buffer's, is
    not)."""
    while isinstance(array, np.ndarray):
        if array.flags.writeable:
            return True
        array = array.base
    return False


class _kept(functools.cached_property):
    """A statistic of a `Comparison`, computed once and kept; an array comes back read-only, so no caller can change
    what later statistics (the verdict, the files) are computed from."""

    def __init__(self, func):
        @functools.wraps(func)
        def computed(instance):
            value = func(instance)
            return read_only(value) if isinstance(value, np.ndarray) else value

        super().__init__(computed)


@dataclasses.dataclass(frozen=True, eq=False)
class Comparison:
    """Numeric vs exact (vs NumPy reference) gradients at N points; arrays are float64, one row per point.

    In coordinate mode (`Mode.COORDINATES`) a column is a coordinate of the flattened point; in directional mode
    (`Mode.DIRECTIONAL`) it is one of `directions` random directions and the values are directional derivatives.
    `ok` is True when every point's numeric and exact values agree within the tolerance of
    `jaxgrad.numerics.tolerance`; the NumPy reference (on a sample of points) is a second opinion, reported beside it.
    `verdict` adds INCONCLUSIVE: no mismatch, but at more than INCONCLUSIVE_SHARE of the points the tolerance is as
    large as the gradient, so the check could not have seen an error there.

    The statistics (`ratio`, `passed`, `verdict`, `worst`, ...; not `pairs`, a list) are computed once, when first
    asked for, and kept, so every array it holds or returns is read-only (writable arrays given to it are copied,
    read-only ones taken as they are). For other values, build a new one (`dataclasses.replace`) or take a copy
    (`rep.numeric.copy()`).
    """

    function: str
    exact_name: str
    dtype: str
    mode: Mode
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
    directions: int | None = None  # the number of random directions in directional mode
    not_smooth: np.ndarray | None = None  # (N,) bool: the stencil sees a kink or a jump there (central stencils)

    CSV_HEADER: ClassVar[tuple[str, ...]] = _render.CSV_HEADER
    """The columns of `to_csv`: function, dtype, then the keys of `rows()`."""

    def __post_init__(self):
        self._hold(copy=True)

    @classmethod
    def _of_own(cls, **fields) -> Comparison:
        """A Comparison of arrays nobody else holds (what `compare` builds): made read-only in place, not copied."""
        return cls(**{name: read_only(value) if isinstance(value, np.ndarray) else value
                      for name, value in fields.items()})  # fmt: skip

    def _hold(self, copy: bool) -> None:
        """Make every array field read-only: a writable one given by the caller is copied first (with `copy`), so
        neither the caller's writes nor ours can change what the statistics were computed from."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                object.__setattr__(self, field.name, read_only(value, copy=copy))

    def __getstate__(self) -> dict:  # pickle and copies: not the statistics kept (recomputed from the fields)
        return {name: value for name, value in self.__dict__.items() if not isinstance(getattr(type(self), name, None),
                                                                                      _kept)}  # fmt: skip

    def __setstate__(self, state: dict) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self._hold(copy=False)  # the unpickled arrays are this object's own

    @property
    def mode_label(self) -> str:
        """ "coordinates" or "K random directions", for reports."""
        return "coordinates" if self.mode is Mode.COORDINATES else f"{self.directions} random directions"

    @property
    def num_points(self) -> int:
        return int(self.numeric.shape[0])

    @_kept
    def error(self) -> np.ndarray:
        return np.abs(self.numeric - self.exact)

    def __repr__(self) -> str:
        worst = self.worst
        where = f", worst {worst.ratio:.3g}× the tolerance at point {worst.point}, {worst.name}" if worst else ""
        points = f"{self.num_points:,} point{'s' if self.num_points != 1 else ''}"
        return f"Comparison({self.function}, d={self.dim}, {self.dtype}, {points}, {self.verdict}{where})"

    @_kept
    def nonfinite(self) -> np.ndarray:
        """Per point: a numeric, exact or tolerance value is NaN or infinite (f or a gradient is not finite there)."""
        finite = np.isfinite(self.numeric) & np.isfinite(self.exact) & np.isfinite(self.tolerance)
        return ~np.all(finite, axis=1)

    @_kept
    def ratio(self) -> np.ndarray:
        """error / tolerance per point and column (inf where a value is not finite)."""
        return ratio(self.error, self.tolerance)

    @_kept
    def passed(self) -> np.ndarray:
        """Per point: every column within its tolerance (a non-finite value fails)."""
        return np.all(self.ratio <= 1, axis=1)

    @_kept
    def kinked(self) -> np.ndarray:
        """Per point: out of tolerance, but f is not smooth at the step there (its second differences do not grow
        like h²: a kink or a jump inside the stencil, or a wave no longer than it, which a step too long for f
        aliases), so the difference is no derivative and no evidence against the gradient. "Not smooth here", not a
        mismatch."""
        if self.not_smooth is None:
            return np.zeros(self.num_points, bool)
        return ~self.passed & self.not_smooth

    @_kept
    def mismatched(self) -> np.ndarray:
        """Per point: out of tolerance where f is smooth at the step: evidence that the gradient is wrong."""
        return ~self.passed & ~self.kinked

    @_kept
    def ok(self) -> bool:
        """No point mismatched (points out of tolerance only where f is not smooth at the step do not count)."""
        return not bool(self.mismatched.any())

    @_kept
    def resolution(self) -> np.ndarray:
        """Per point, ‖tolerance‖ / ‖exact‖: the relative size a gradient error must exceed to be caught there."""
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # a norm above the largest float: inf
            return norm(self.tolerance, axis=1) / norm(self.exact, axis=1)

    @_kept
    def unresolved(self) -> int:
        """Points where the tolerance is as large as the gradient itself: the check cannot vouch for them (f is
        too noisy or too wiggly at this step to pin the gradient down); they still count as passed when in tolerance."""
        return int(np.sum(~(self.resolution < 1) & ~self.nonfinite))

    @_kept
    def verdict(self) -> Verdict:
        """MISMATCH (some point fails), INCONCLUSIVE (none fails, but too many points are unresolved or not smooth,
        or there is no point at all) or OK."""
        if not self.ok:
            return Verdict.MISMATCH
        if not self.num_points:  # a check of nothing vouches for nothing
            return Verdict.INCONCLUSIVE
        unchecked = self.unresolved + int(self.kinked.sum())
        return Verdict.INCONCLUSIVE if unchecked > INCONCLUSIVE_SHARE * self.num_points else Verdict.OK

    @_kept
    def worst(self) -> Worst | None:
        """The point and column with the largest error relative to its tolerance (None for an empty batch)."""
        if self.numeric.size == 0:
            return None
        ratios = self.ratio
        kinked = self.kinked
        if kinked.any() and not kinked.all():  # the worst point that counts
            ratios = np.where(kinked[:, None], -np.inf, ratios)
        point, column = np.unravel_index(int(np.argmax(ratios)), ratios.shape)
        ref = None
        if self.reference is not None and self.mode is Mode.COORDINATES:
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
        out = [pair_stats(f"jaxgrad vs {self.exact_name}", self.numeric, self.exact, self.tolerance)]
        if self.reference is not None and self.mode is Mode.COORDINATES:
            idx = self.reference_index
            out.append(pair_stats(f"numpy ref vs {self.exact_name}", self.reference, self.exact[idx],
                                  self.reference_tolerance))  # fmt: skip
            out.append(pair_stats("jaxgrad vs numpy ref", self.numeric[idx], self.reference,
                                  self.tolerance[idx] + self.reference_tolerance))  # fmt: skip
        return out

    def summary(self) -> str:
        """A readable table: per method pair, the errors, their ratio to the tolerance, the pass rate; then the
        times, the worst point and the verdict."""
        return _render.summary(self)

    def rows(self) -> list[dict]:
        """One row per point: whether it passed, its worst column and values there, its errors."""
        return _render.rows(self)

    def to_dict(self) -> dict:
        """Summary statistics and the per-point rows, as plain Python (JSON-ready)."""
        return _render.to_dict(self)

    def serialize(self) -> _render.Serialized:
        """The text of the JSON and CSV files, encoded column by column (10,000 points in some 0.1 s, several times
        faster than through `to_dict` and `rows`): `.json` is exactly `json.dumps(self.to_dict(), default=float)`,
        one line; `.csv_header` and `.csv_body` (the rows as CSV text) are what `to_csv` writes."""
        return _render.serialize(self)

    def to_json(self, path) -> None:
        """Write `to_dict()` as JSON (atomically)."""
        write_json(path, self.to_dict())

    def to_csv(self, path) -> None:
        """Write `rows()` as CSV (atomically), with the function and dtype on every row."""
        text = self.serialize()
        write_csv(path, CsvText(text.csv_header, [text.csv_body]))
