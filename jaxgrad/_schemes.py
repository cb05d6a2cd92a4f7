"""Finite-difference schemes: where to evaluate f around a point and how to combine the values into a derivative.

A scheme is a frozen, hashable object (a static argument of the compiled programs), like lineax's solvers. Every
transformation takes its stencil points, weights, step exponent and error estimate from one: `Central`, `Forward`,
`Backward`, `Richardson`, `ComplexStep`, and `StepDirection` (central, forward or backward per coordinate). Strings
("central", ...) are accepted at the API edge and turned into objects once, by `as_scheme`.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from typing import Any, ClassVar, NamedTuple

import jax.numpy as jnp
import numpy as np

from ._estimate import error_noise, line_second_differences, merge_status, status, straddled
from .numerics import error_estimate, finite_difference_weights, noise_estimate

MAX_ORDER = 8


class Mode(enum.Enum):
    """The uses a scheme supports."""

    COORDINATES = "coordinates"
    """Per-coordinate derivatives: gradients, Jacobians."""
    DIRECTIONAL = "directional"
    """Derivatives along a direction v: `jvp`, `compare(..., directions=K)`."""
    WITH_ERROR = "with_error"
    """An error estimate from the same stencil at steps h and 2h."""
    HOST = "host"
    """`fun` evaluated on the host with NumPy (traceable=False): real stencil points only."""


class Estimated(NamedTuple):
    """A scheme's error estimate at one point, flat (one entry per coordinate)."""

    g: Any
    g_double: Any
    f_noise: Any
    error: Any
    status: Any
    curvature: Any  # |f''| along each coordinate (0 where the stencil cannot tell: the complex step)


@functools.cache
def _weights_of(offsets: tuple[int, ...]) -> dict[int, float]:
    """{offset: weight} of the first-derivative stencil on `offsets`, solved once per stencil (not per call)."""
    return dict(zip(offsets, finite_difference_weights(offsets), strict=True))


@functools.cache
def _estimate_offsets_of(offsets: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(set(offsets) | {2 * k for k in offsets} | {0}))


def unit_rows(x, h, coords=None):
    """(e_c for c in coords, h[c]): the unit vectors as rows (m, d), built by comparison so that XLA fuses them into
    their use instead of writing an identity matrix, and the steps of those coordinates."""
    d = x.shape[0]
    if coords is not None and not hasattr(coords, "dtype"):  # a static tuple
        coords = np.asarray(coords, int)
    index = jnp.arange(d) if coords is None else jnp.asarray(coords)
    basis = (index[:, None] == jnp.arange(d)[None, :]).astype(x.dtype)
    return basis, (h if coords is None else h[coords])


def axis_points(x, h, offsets, coords=None, *, center: bool = False, imaginary: bool = False):
    """The stencil points of the flat point x along the axes `coords` (None: all): shape (K·m [+ 1], d).

    Row k·m + j is x + offsets[k]·h[c]·e_c for the j-th coordinate c of `coords` (times the imaginary unit for the
    complex step); `center` appends x itself. Each row differs from x in exactly one coordinate. `coords` is a
    static tuple or a traced index array (a block of coordinates, `_evaluate.by_blocks`).
    """
    basis, h = unit_rows(x, h, coords)
    delta = jnp.asarray(offsets, x.dtype)[:, None] * h[None, :]  # (K, m): offsets[k] * h[c]
    if imaginary:
        x, delta = x.astype(jnp.result_type(x.dtype, jnp.complex64)), delta * 1j
    rows = (x[None, None, :] + delta[:, :, None] * basis[None]).reshape(len(offsets) * basis.shape[0], x.shape[0])
    return jnp.concatenate([rows, x[None, :]]) if center else rows


def combine_blocks(values, h, weights, center_weight: float = 0.0, offsets=None):
    """(w_0 f(x) + sum_k w_k f_k) / h per coordinate, from values laid out as `axis_points` lays out its rows: one
    block of m rows per weight, then (when `center_weight` is nonzero) f(x) last. Zero weights are skipped; values
    may carry trailing output axes (Jacobians). The result has h's dtype and shape (m, *outputs).

    Given the `offsets` of the blocks, a pair k, −k with weights w, −w is combined as w·(f(x + kh) − f(x − kh)), the
    difference first: where f takes the same value on both sides (a constant or even direction, a structural zero
    of a Jacobian) the pair contributes exactly 0, at every order, instead of the rounding of sum w_k·f."""
    m = h.shape[0]
    total = jnp.zeros((m, *values.shape[1:]), values.dtype)

    def block(k):
        return values[k * m : (k + 1) * m]

    paired = set()
    if offsets is not None:
        index = {k: i for i, k in enumerate(offsets)}
        for i, k in enumerate(offsets):
            j = index.get(-k)
            if k > 0 and weights[i] and j is not None and weights[j] == -weights[i]:
                total = total + weights[i] * (block(i) - block(j))
                paired |= {i, j}
    for k, weight in enumerate(weights):  # K ≤ 16 terms, unrolled at trace time: no loop over coordinates
        if weight and k not in paired:
            total = total + weight * block(k)
    if center_weight:
        total = total + center_weight * values[-1]
    scale = h.astype(total.dtype).reshape(m, *([1] * (total.ndim - 1)))
    return (total / scale).astype(h.dtype)


class Scheme:
    """The base of finite-difference schemes for first derivatives. Subclasses are frozen dataclasses.

    Attributes:
      order: p, the order of the truncation error O(h^p).
      name: the method's name, as `method=` spells it.
      modes: the `Mode`s the scheme supports.
      imaginary: whether the step is imaginary (the complex step).
    """

    order: int
    name: ClassVar[str]
    modes: ClassVar[frozenset] = frozenset(Mode)
    imaginary: ClassVar[bool] = False

    @property
    def method(self) -> str:
        """The method's name (as before schemes were objects)."""
        return self.name

    @property
    def step_exponent(self) -> float:
        """The default step is eps^step_exponent·max(|x|, 1): 1/(p+1) balances truncation h^p against round-off
        eps/h."""
        return 1.0 / (self.order + 1)

    @property
    def reach(self) -> int:  # pragma: no cover - abstract
        """The farthest stencil point, in steps, of any mode (the error estimate's 2h stencil included)."""
        raise NotImplementedError

    def require(self, mode: Mode, where: str) -> None:
        """Raise a ValueError naming `where` when this scheme does not support `mode`."""
        if mode not in self.modes:
            supported = ", ".join(m.value for m in Mode if m in self.modes)
            raise ValueError(
                f"{where}: method={self!r} does not support {mode.value} (it supports: {supported}). Use "
                "method='central' or another scheme."
            )

    def read(self, values):
        """The values the combination uses: f itself (the complex step reads the imaginary part)."""
        return values

    def sides(self, dim: int) -> np.ndarray:  # pragma: no cover - abstract
        """Which side of x each coordinate's stencil lies on, (dim,): 0 both (central), +1 forward, −1 backward;
        `step="auto"` scouts f on the same side."""
        raise NotImplementedError

    def evaluations(self, dim: int, with_error: bool = False) -> int:  # pragma: no cover - abstract
        """Evaluations of `fun` for one point of `dim` coordinates (with the error estimate: at h and 2h)."""
        raise NotImplementedError

    def weight_sums(self, dim: int) -> np.ndarray:  # pragma: no cover - abstract
        """sum |w_k| of the stencil of each coordinate (center included): how the rounding errors of f add up."""
        raise NotImplementedError

    def points(self, x, h):  # pragma: no cover - abstract
        """The rows `fun` is evaluated at for the flat point x with steps h: (R, d)."""
        raise NotImplementedError

    def combine(self, values, h):  # pragma: no cover - abstract
        """The derivative along every coordinate, (d, *outputs), from `fun` at the rows of `points` (read)."""
        raise NotImplementedError

    def estimate_points(self, x, h):  # pragma: no cover - abstract
        """The rows for the error estimate: the stencil at h and at 2h, and x itself."""
        raise NotImplementedError

    def estimate(self, values, x, h) -> Estimated:  # pragma: no cover - abstract
        """g(h), g(2h), the noise of f, the error estimate and the status, from `fun` at `estimate_points`."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class FiniteDifference(Scheme):
    """A stencil with the same offsets along every axis: g ≈ (w_0 f(x) + sum_k w_k f(x + k h e_i)) / h.

    Subclasses say which offsets (`stencil_offsets`); the weights come from `finite_difference_weights`.
    """

    order: int = 2

    def stencil_offsets(self) -> tuple[int, ...]:  # pragma: no cover - abstract
        """Every offset of the stencil in units of h, 0 included when f(x) itself is used."""
        raise NotImplementedError

    @property
    def _table(self) -> dict[int, float]:
        return _weights_of(self.stencil_offsets())

    @property
    def offsets(self) -> tuple[int, ...]:
        """The nonzero offsets k, in units of the step."""
        return tuple(k for k in self._table if k)

    @property
    def weights(self) -> tuple[float, ...]:
        """The weight of each of `offsets`."""
        return tuple(self._table[k] for k in self.offsets)

    @property
    def center_weight(self) -> float:
        """w_0, the weight of f(x) itself (0 for central stencils, which never evaluate f(x))."""
        return self._table.get(0, 0.0)

    @property
    def uses_center(self) -> bool:
        """Whether the stencil evaluates f(x) itself (one-sided stencils do, central ones do not)."""
        return self.center_weight != 0

    @property
    def is_complex(self) -> bool:
        """Whether the offsets are imaginary (the complex step)."""
        return self.imaginary

    @property
    def weight_sum(self) -> float:
        """sum |w_k| (center included): how much the rounding errors of the f values add up in the difference."""
        return sum(abs(w) for w in self._table.values())

    def weight_sums(self, dim: int) -> np.ndarray:
        return np.full(dim, self.weight_sum)

    def sides(self, dim: int) -> np.ndarray:
        side = 1 if min(self.offsets) > 0 else -1 if max(self.offsets) < 0 else 0
        return np.full(dim, side, np.int32)

    def weights_at(self, offsets, factor: int = 1) -> tuple[float, ...]:
        """The weight of each of `offsets` (0 included) for this stencil at step factor·h, written in units of h;
        0 for offsets it does not use."""
        return tuple(self._table.get(k / factor, 0.0) / factor if k % factor == 0 else 0.0 for k in offsets)

    @functools.cached_property  # read on every call (`StepRule.check`): computed once per scheme
    def reach(self) -> int:
        return max(abs(k) for k in self.estimate_offsets)

    @property
    def estimate_offsets(self) -> tuple[int, ...]:
        """The offsets one error estimate evaluates: the stencil at h and at 2h, and the point itself (for the noise
        and, with ±1 and ±2, the smoothness test)."""
        return _estimate_offsets_of(self.offsets)

    def evaluations(self, dim: int, with_error: bool = False) -> int:
        """p·d for central order p, p·d + 1 for one-sided, 6·d for Richardson (h, 2h, 4h), d for the complex step;
        with the error estimate, the stencil at h and 2h plus f(x)."""
        if with_error:
            return (len(self.estimate_offsets) - 1) * dim + 1
        return len(self.offsets) * dim + self.uses_center

    def read(self, values):
        return jnp.imag(values) if self.imaginary else values

    # --------------------------------------------------------------------------------------- along the axes
    def points(self, x, h, coords=None):
        return axis_points(x, h, self.offsets, coords, center=self.uses_center, imaginary=self.imaginary)

    def combine(self, values, h):
        return combine_blocks(values, h, self.weights, self.center_weight, self.offsets)

    def estimate_points(self, x, h, coords=None):
        nonzero = tuple(k for k in self.estimate_offsets if k)
        return axis_points(x, h, nonzero, coords, center=True, imaginary=self.imaginary)

    def estimate(self, values, x, h) -> Estimated:
        positions = self.estimate_offsets
        offsets = tuple(k for k in positions if k)
        m = h.shape[0]
        by_offset = jnp.concatenate([values[:-1].reshape(len(offsets), m), jnp.broadcast_to(values[-1], (1, m))])
        line = by_offset[jnp.asarray([offsets.index(k) if k else len(offsets) for k in positions])]  # by position
        g = combine_blocks(values, h, self.weights_at(offsets), self.center_weight, offsets)
        g_double = combine_blocks(values, h, self.weights_at(offsets, 2), self.center_weight / 2, offsets)
        odd, both = (noise_estimate(line, positions, h.dtype, x, odd_only=o).astype(h.dtype) for o in (True, False))
        second = None if self.imaginary else line_second_differences(line, positions, odd)
        f_noise = error_noise(second, odd, both)
        error = error_estimate(h, self.weight_sum, f_noise, g, g_double, self.order).astype(h.dtype)
        if self.imaginary:
            curvature = jnp.zeros_like(h)
        else:
            w2 = jnp.asarray(finite_difference_weights(positions, derivative=2), line.dtype)
            curvature = (jnp.abs(w2 @ line) / h.astype(line.dtype) ** 2).astype(h.dtype)
        if second is not None:  # central: a kink inside the stencil is not left to the Richardson estimate
            error = jnp.maximum(error, straddled(line, positions, second, h).astype(h.dtype))
        return Estimated(g, g_double, f_noise, error, status(x, values, g, error, second), curvature)

    # --------------------------------------------------------------------------------------- along a direction
    def along(self, x, v, t, positions=None):
        """Rows x + k·t·v for k in `positions` (default: the stencil's offsets, then 0 when f(x) is used), times the
        imaginary unit for the complex step: shape (len(positions), d)."""
        if positions is None:
            positions = self.offsets + ((0,) if self.uses_center else ())
        k = jnp.asarray(positions, x.dtype)[:, None]
        if self.imaginary:
            return x.astype(jnp.result_type(x.dtype, jnp.complex64))[None] + 1j * (k * t * v[None])
        return x[None] + k * t * v[None]

    def displacement(self, rows, x):
        """The step each row really takes from x (real rows: fl(x + k t v) − x; complex rows: their imaginary part)."""
        return jnp.imag(rows) if self.imaginary else rows - x[None]

    def combine_along(self, values, t, positions=None, factor: int = 1):
        """The derivative along the direction from `fun` at the rows of `along` (read), for the stencil at factor·t."""
        if positions is None:
            positions = self.offsets + ((0,) if self.uses_center else ())
        weights = self.weights_at(positions, factor)
        return sum(w * values[i] for i, w in enumerate(weights) if w) / t


def _check_order(name: str, order, allowed) -> None:
    if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)) or order not in allowed:
        choices = ", ".join(str(p) for p in allowed)
        raise ValueError(f"`order` for method={name!r} must be one of {choices}, got {order!r}.")


@dataclasses.dataclass(frozen=True)
class Central(FiniteDifference):
    """Central differences of even order p (2, 4, 6, 8): offsets −p/2..p/2, p·d evaluations per point.

    Example:
      >>> import jaxgrad as jg
      >>> jg.Central(4).offsets, jg.Central(4).weights
      ((-2, -1, 1, 2), (0.08333333333333333, -0.6666666666666666, 0.6666666666666666, -0.08333333333333333))
    """

    name: ClassVar[str] = "central"

    def __post_init__(self):
        _check_order(self.name, self.order, (2, 4, 6, 8))

    def stencil_offsets(self):
        return tuple(range(-self.order // 2, self.order // 2 + 1))


@dataclasses.dataclass(frozen=True)
class Forward(FiniteDifference):
    """One-sided forward differences of order p (offsets 0..p): p·d + 1 evaluations; for the lower edge of a domain.

    Example:
      >>> import jaxgrad as jg
      >>> jg.Forward(2).offsets, jg.Forward(2).weights, jg.Forward(2).center_weight
      ((1, 2), (2.0, -0.5), -1.5)
    """

    order: int = 1
    name: ClassVar[str] = "forward"

    def __post_init__(self):
        _check_order(self.name, self.order, range(1, MAX_ORDER + 1))

    def stencil_offsets(self):
        return tuple(range(0, self.order + 1))


@dataclasses.dataclass(frozen=True)
class Backward(FiniteDifference):
    """One-sided backward differences of order p (offsets −p..0): p·d + 1 evaluations; for the upper edge."""

    order: int = 1
    name: ClassVar[str] = "backward"

    def __post_init__(self):
        _check_order(self.name, self.order, range(1, MAX_ORDER + 1))

    def stencil_offsets(self):
        return tuple(range(-self.order, 1))


@dataclasses.dataclass(frozen=True)
class Richardson(FiniteDifference):
    """Central differences at steps h, 2h (, 4h (, 8h)) extrapolated to order 4, 6 or 8: offsets ±1, ±2, ±4, ±8,
    with the weights that repeated Richardson extrapolation computes (the unique ones exact for polynomials of degree
    < the number of offsets). Order 6: 6·d evaluations, error ≈ eps^(6/7)."""

    order: int = 6
    name: ClassVar[str] = "richardson"

    def __post_init__(self):
        _check_order(self.name, self.order, (4, 6, 8))

    def stencil_offsets(self):
        levels = [2**k for k in range(self.order // 2)]
        return tuple(sorted([-k for k in levels] + levels))


@dataclasses.dataclass(frozen=True)
class ComplexStep(FiniteDifference):
    """The complex step Im f(x + i h e_i) / h: d evaluations, no subtraction, so exact to rounding (≈ eps) with the
    tiny step h = eps²·max(|x|, 1) — but only for f real-analytic and written with complex-safe operations.

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> print(jg.grad(jnp.sin, method=jg.ComplexStep())(jnp.array(0.5)) == jnp.cos(0.5))
      True
    """

    name: ClassVar[str] = "complex"
    imaginary: ClassVar[bool] = True
    modes: ClassVar[frozenset] = frozenset({Mode.COORDINATES, Mode.DIRECTIONAL, Mode.WITH_ERROR})

    def __post_init__(self):
        if self.order != 2:
            raise ValueError(f"method='complex' has order 2 (its truncation error is h²), got order={self.order}.")

    @property
    def step_exponent(self) -> float:
        """2: h = eps²·max(|x|, 1). With no subtraction there is no round-off to balance; truncation h² is far below
        eps."""
        return 2.0

    def stencil_offsets(self):
        return (1,)

    check_directions: ClassVar[int] = 2
    """Directions along which the error estimate checks that f is complex-safe (`Status.NOT_ANALYTIC`)."""
    check_evaluations: ClassVar[int] = 4 * check_directions
    """Real evaluations with which it checks, f(x ± t v) and f(x ± 2t v) along each direction."""

    def evaluations(self, dim: int, with_error: bool = False) -> int:
        """d; with the error estimate 3·d + 1: the step at h and 2h, f(x), the gradient at a shifted point (for the
        rounding inside f, `_evaluate.argument_rounding`), and `check_evaluations` more."""
        return super().evaluations(dim, with_error) + (dim + self.check_evaluations if with_error and dim else 0)

    @functools.cached_property
    def _table(self) -> dict[int, float]:
        return {1: 1.0}


@dataclasses.dataclass(frozen=True)
class StepDirection(Scheme):
    """Central, forward or backward differences chosen per coordinate, like scipy.differentiate's `step_direction`:
    0 central, +1 forward (for a coordinate at the lower edge of f's domain), −1 backward (at the upper edge).

    `direction` is one int for every coordinate or a tuple with one per coordinate of the flattened point. All
    stencils share the order p (even); the one-sided ones then use offsets 0..p (or −p..0). Coordinates are grouped
    by direction and each group is evaluated with its own stencil in the same vmap: p·d evaluations, plus one shared
    f(x) when a one-sided group exists. Per-coordinate and error-estimate modes; not along a direction. (Where a
    central stencil leaves f's domain, jaxgrad repairs that coordinate by itself, with a one-sided stencil at a step
    shorter than the edge's distance found by probing f; a known edge named here costs no probes and keeps the
    usual step.)

    Example:
      >>> import jax.numpy as jnp, jaxgrad as jg
      >>> f = lambda x: jnp.sum(x**2.5)  # NaN for x < 0: at x0 = 0 only a forward step stays in the domain
      >>> g = jg.grad(f, method=jg.StepDirection((1, 0)))(jnp.array([0.0, 4.0]))  # exact: 0 and 2.5·4^1.5 = 20
      >>> bool(abs(g[0]) < 1e-3), bool(abs(g[1] - 20) < 1e-3)
      (True, True)
    """

    direction: int | tuple[int, ...] = 0
    order: int = 2
    name: ClassVar[str] = "step_direction"
    modes: ClassVar[frozenset] = frozenset({Mode.COORDINATES, Mode.WITH_ERROR, Mode.HOST})

    def __post_init__(self):
        _check_order(self.name, self.order, (2, 4, 6, 8))
        several = np.ndim(self.direction) > 0
        directions = tuple(np.ravel(self.direction)) if several else (self.direction,)
        if not directions or any(isinstance(s, (bool, np.bool_)) or s not in (-1, 0, 1) for s in directions):
            raise ValueError(
                f"`direction` of StepDirection must be -1, 0 or 1 (backward, central, forward), or a tuple of them "
                f"with one per coordinate, got {self.direction!r}."
            )
        normal = tuple(int(s) for s in directions) if several else int(directions[0])
        object.__setattr__(self, "direction", normal)  # plain ints: hashable and comparable as a static argument

    def _groups(self, dim: int) -> list[tuple[FiniteDifference, tuple[int, ...]]]:
        """(stencil, coordinates) for each direction that occurs, in the order central, forward, backward."""
        if isinstance(self.direction, tuple):
            if len(self.direction) != dim:
                raise ValueError(
                    f"StepDirection has {len(self.direction)} directions for a point of {dim} coordinates; give one "
                    "per coordinate of the flattened point, or one int for all."
                )
            directions = self.direction
        else:
            directions = (self.direction,) * dim
        stencils = {0: Central(self.order), 1: Forward(self.order), -1: Backward(self.order)}
        groups = []
        for sign in (0, 1, -1):
            coords = tuple(i for i, s in enumerate(directions) if s == sign)
            if coords:
                groups.append((stencils[sign], coords))
        return groups

    def evaluations(self, dim: int, with_error: bool = False) -> int:
        groups = self._groups(dim)
        total = sum(s.evaluations(len(c), with_error) - (with_error or s.uses_center) for s, c in groups)
        return total + (with_error or any(s.uses_center for s, _ in groups))

    @property
    def reach(self) -> int:
        return 2 * self.order  # one-sided order p at 2h

    def sides(self, dim: int) -> np.ndarray:
        sides = np.zeros(dim, np.int32)
        for stencil, coords in self._groups(dim):
            sides[np.asarray(coords)] = stencil.sides(len(coords))
        return sides

    def weight_sums(self, dim: int) -> np.ndarray:
        sums = np.zeros(dim)
        for stencil, coords in self._groups(dim):
            sums[np.asarray(coords)] = stencil.weight_sum
        return sums

    def points(self, x, h):
        groups = self._groups(x.shape[0])
        rows = [s.points(x, h, c)[: len(s.offsets) * len(c)] for s, c in groups]
        center = [x[None]] if any(s.uses_center for s, _ in groups) else []
        return jnp.concatenate([*rows, *center])  # f(x) last, shared by the one-sided groups

    def _split(self, values, dim: int, counts):
        """Each group's values with f(x) appended, from rows laid out as `points`/`estimate_points` lay them out."""
        out, start = [], 0
        for count in counts:
            out.append(jnp.concatenate([values[start : start + count], values[-1:]]))
            start += count
        return out

    def combine(self, values, h):
        d = h.shape[0]
        groups = self._groups(d)
        parts = self._split(values, d, [len(s.offsets) * len(c) for s, c in groups])
        result = jnp.zeros((d, *values.shape[1:]), h.dtype)
        for (stencil, coords), part in zip(groups, parts, strict=True):
            result = result.at[np.asarray(coords)].set(stencil.combine(part, h[np.asarray(coords)]))
        return result

    def estimate_points(self, x, h):
        rows = [s.estimate_points(x, h, c)[:-1] for s, c in self._groups(x.shape[0])]
        return jnp.concatenate([*rows, x[None]])

    def estimate(self, values, x, h) -> Estimated:
        d = h.shape[0]
        groups = self._groups(d)
        parts = self._split(values, d, [(len(s.estimate_offsets) - 1) * len(c) for s, c in groups])
        fields = [jnp.zeros((d,), h.dtype) for _ in range(5)]
        codes = []
        for (stencil, coords), part in zip(groups, parts, strict=True):
            index = np.asarray(coords)
            estimated = stencil.estimate(part, x, h[index])
            numbers = (*estimated[:4], estimated.curvature)
            fields = [f.at[index].set(e) for f, e in zip(fields, numbers, strict=True)]
            codes.append(estimated.status)
        g, g_double, f_noise, error, curvature = fields
        return Estimated(g, g_double, f_noise, error, merge_status(codes, error, g), curvature)


METHODS = {"central": Central, "forward": Forward, "backward": Backward, "richardson": Richardson,
           "complex": ComplexStep}  # fmt: skip
"""The methods `method=` accepts by name."""


def as_scheme(method="central", order=None) -> Scheme:
    """The scheme of a `method=` argument (a name or a `Scheme`) and an `order` (None: the method's own: 2 central
    and complex, 1 one-sided, 6 Richardson).

    Raises:
      ValueError: an unknown method or an order it does not have, naming the argument.

    Example:
      >>> as_scheme("central", 4)
      Central(order=4)
    """
    if isinstance(method, Scheme):
        if order is not None and order != method.order:
            raise ValueError(f"`order`={order!r} disagrees with method={method!r}; give the order to the scheme only.")
        return method
    if isinstance(method, type) and issubclass(method, Scheme):
        raise ValueError(f"`method`={method.__name__} is a scheme class; pass an instance: {method.__name__}().")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(
            f"`method` must be one of {tuple(METHODS)} or a scheme object (jg.Central(4), ...), got {method!r}."
        )
    if order is None or type(order) is int:  # the usual call: one scheme per name and order, its cached
        return _named_scheme(method, order)  # properties (`reach`, read on every call) computed once (~10 µs)
    return _named_scheme.__wrapped__(method, order)


@functools.lru_cache(maxsize=64)
def _named_scheme(method: str, order: int | None) -> Scheme:
    cls = METHODS[method]
    return cls() if order is None else cls(order)
