"""Finite-difference stencils: offsets and weights for the first derivative, from one general routine."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

METHODS = ("central", "forward", "backward", "richardson", "complex")
MAX_ORDER = 8


def finite_difference_weights(offsets, derivative=1):
    """Weights w such that f^(m)(x) ≈ sum_k w_k f(x + k h) / h^m, exact for polynomials of degree < len(offsets).

    Solves the Vandermonde system sum_k w_k k^j = m! [j == m], j = 0..K-1, in exact rational arithmetic, so the
    weights are the exact rationals of the textbook tables (central order 2: -1/2, 1/2; order 4: 1/12, -2/3, 2/3,
    -1/12) before the final rounding to float.

    Args:
      offsets: distinct integers (multiples of the step h) at which f is evaluated.
      derivative: the order m of the derivative.

    Returns:
      A tuple of floats, one weight per offset.

    Example:
      >>> finite_difference_weights((-1, 1))
      (-0.5, 0.5)
      >>> finite_difference_weights((0, 1, 2))
      (-1.5, 2.0, -0.5)
    """
    offsets = [Fraction(k) for k in offsets]
    if len(set(offsets)) != len(offsets):
        raise ValueError(f"`offsets` must be distinct, got {offsets}.")
    size = len(offsets)
    if not 0 <= derivative < size:
        raise ValueError(f"`derivative`={derivative} needs more than {size} offsets.")
    factorial = 1
    for j in range(2, derivative + 1):
        factorial *= j
    # Augmented matrix [A | b] with A[j][k] = offsets[k]**j, b[j] = m! [j == m]; Gauss-Jordan with exact fractions.
    rows = [[k**j for k in offsets] + [Fraction(factorial if j == derivative else 0)] for j in range(size)]
    for col in range(size):
        pivot = next(r for r in range(col, size) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        lead = rows[col][col]
        rows[col] = [v / lead for v in rows[col]]
        for r in range(size):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [v - factor * p for v, p in zip(rows[r], rows[col], strict=True)]
    return tuple(float(rows[k][size]) for k in range(size))


@dataclasses.dataclass(frozen=True)
class Stencil:
    """A first-derivative stencil: g ≈ (w_0 f(x) + sum_k w_k f(x + k h)) / h.

    For the complex step the offsets are imaginary: g = sum_k w_k Im f(x + i k h) / h.

    Attributes:
      method: "central", "forward", "backward", "richardson" or "complex".
      order: the order p of the truncation error, O(h^p).
      offsets: the nonzero offsets k, in units of the step.
      weights: the weight of each offset in `offsets`.
      center_weight: w_0, the weight of f(x) itself (0 for central stencils, which never evaluate f(x)).
      step_exponent: the default step is eps^step_exponent · max(|x|, 1).
    """

    method: str
    order: int
    offsets: tuple[int, ...]
    weights: tuple[float, ...]
    center_weight: float
    step_exponent: float

    @property
    def is_complex(self) -> bool:
        """Whether the offsets are imaginary (the complex step)."""
        return self.method == "complex"

    @property
    def evaluations_per_coordinate(self) -> int:
        """Evaluations of `fun` per coordinate; a one-sided stencil adds one shared f(x) per point."""
        return len(self.offsets)

    def evaluations(self, dim: int) -> int:
        """Evaluations of `fun` for one point of `dim` coordinates: p·d for central order p, p·d + 1 for one-sided,
        6·d for Richardson (steps h, 2h, 4h), d for the complex step."""
        return len(self.offsets) * dim + self.uses_center

    @property
    def uses_center(self) -> bool:
        """Whether the stencil evaluates f(x) itself (one-sided stencils do, central ones do not)."""
        return self.center_weight != 0

    @property
    def weight_sum(self) -> float:
        """sum |w_k| (center included): how much the rounding errors of the f values add up in the difference."""
        return sum(abs(w) for w in self.weights) + abs(self.center_weight)

    def weights_at(self, offsets) -> tuple[float, ...]:
        """The weight of each of `offsets` (0 for offsets this stencil does not use)."""
        table = dict(zip(self.offsets, self.weights, strict=True))
        return tuple(table.get(k, 0.0) for k in offsets)

    def scaled(self, factor: int) -> Stencil:
        """The same stencil with step factor·h, written in units of h: offsets × factor, weights / factor.

        Example:
          >>> make_stencil("central", 2).scaled(2).offsets
          (-2, 2)
        """
        return dataclasses.replace(
            self,
            offsets=tuple(k * factor for k in self.offsets),
            weights=tuple(w / factor for w in self.weights),
            center_weight=self.center_weight / factor,
        )


NATURAL_ORDER = {"central": 2, "forward": 1, "backward": 1, "richardson": 6, "complex": 2}
"""The order each method has when none is given."""


def natural_order(method: str) -> int:
    """The classic order of each method: 2 for central, 1 for forward/backward, 6 for Richardson (h, 2h, 4h)."""
    return NATURAL_ORDER[method]


def make_stencil(method: str = "central", order: int | None = None) -> Stencil:
    """The first-derivative stencil of a method and order (order None: `natural_order(method)`).

    Central stencils of even order p use offsets -p/2..p/2; forward ones 0..p; backward ones -p..0. Richardson of
    order 4, 6 or 8 extrapolates central differences at steps h, 2h (, 4h (, 8h)): offsets ±1, ±2, ±4, ±8, whose
    weights the same routine gives (the unique ones exact for polynomials of degree < the number of offsets, which is
    what repeated Richardson extrapolation computes). The complex step (order 2) evaluates f(x + i h) once per
    coordinate. The default step exponent is 1/(p+1) (truncation h^p against round-off eps/h); for the complex step,
    which has no subtraction, it is 2 (h = eps²·max(|x|, 1): truncation h² is far below eps).

    Example:
      >>> s = make_stencil("central", 2)
      >>> s.offsets, s.weights
      ((-1, 1), (-0.5, 0.5))
      >>> make_stencil("richardson").offsets
      (-4, -2, -1, 1, 2, 4)
    """
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}, got {method!r}.")
    if order is None:
        order = natural_order(method)
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= MAX_ORDER:
        raise ValueError(f"`order` must be an integer from 1 to {MAX_ORDER}, got {order!r}.")
    if method == "complex":
        if order != 2:
            raise ValueError(f"method='complex' has order 2 (its truncation error is h²), got order={order}.")
        return Stencil("complex", 2, (1,), (1.0,), 0.0, 2.0)
    if method == "central":
        if order % 2:
            raise ValueError(f"`order` for method='central' must be even (2, 4, 6, 8), got {order}.")
        all_offsets = tuple(range(-order // 2, order // 2 + 1))
    elif method == "richardson":
        if order not in (4, 6, 8):
            raise ValueError(f"`order` for method='richardson' must be 4, 6 or 8 (steps h..2^(p/2-1)·h), got {order}.")
        levels = [2**k for k in range(order // 2)]
        all_offsets = tuple(sorted([-k for k in levels] + levels))
    elif method == "forward":
        all_offsets = tuple(range(0, order + 1))
    else:
        all_offsets = tuple(range(-order, 1))
    all_weights = finite_difference_weights(all_offsets)
    pairs = [(k, w) for k, w in zip(all_offsets, all_weights, strict=True) if k != 0]
    center = dict(zip(all_offsets, all_weights, strict=True)).get(0, 0.0)
    return Stencil(
        method=method,
        order=order,
        offsets=tuple(k for k, _ in pairs),
        weights=tuple(w for _, w in pairs),
        center_weight=center,
        step_exponent=1.0 / (order + 1),
    )
