"""`check_grad`: `compare` as an assertion for test suites, with a Taylor-test hint on a mismatch."""

from __future__ import annotations

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as validate
from .._batching import numbers_as_array
from .._filter import CHECKS_ONE_AT_A_TIME, filtered_batch, is_filtered, raise_if_batched_arrays
from .._schemes import Mode
from ._compare import compare
from ._comparison import Comparison
from ._render import inconclusive_reason
from ._taylor import taylor_hint
from ._verdict import Verdict


class GradientMismatchError(AssertionError):
    """Raised by `check_grad` when a gradient disagrees with the numeric one beyond tolerance."""

    __module__ = "jaxgrad"  # as users name it: jaxgrad.GradientMismatchError

    def __init__(self, message: str, comparison: Comparison):
        super().__init__(message)
        self.comparison = comparison

    def __reduce__(self):  # pickled with its comparison: a failure in a process pool reaches the parent as itself
        return type(self), (self.args[0], self.comparison), self.__dict__  # with its notes (add_note)


def _is_single_point(fun, points) -> bool:
    """One point, unless `points` has a leading axis whose rows `fun` takes: a 1-D array is one point; an array of
    higher rank (or a pytree whose leaves share a leading size) is a batch when `fun` maps one row to a scalar."""
    shapes = [np.shape(leaf) for leaf in jax.tree_util.tree_leaves(points)]
    if not shapes or any(shape == () for shape in shapes) or len({shape[0] for shape in shapes}) > 1:
        return True
    if isinstance(points, (jax.Array, np.ndarray)) and np.ndim(points) == 1:
        return True
    if shapes[0][0] == 0:  # no row to try: an empty batch (check_grad refuses it)
        return False
    row = jax.tree_util.tree_map(lambda leaf: jax.ShapeDtypeStruct(np.shape(leaf)[1:], jnp.result_type(leaf)), points)
    try:
        out = jax.eval_shape(fun, row)
    except Exception:  # fun cannot take a row: the whole input is one point
        return True
    return getattr(out, "shape", None) != ()


def _takes_whole(fun, points) -> bool:
    """Whether `fun` maps all of `points`, as one point, to a scalar."""
    try:
        return getattr(jax.eval_shape(fun, points), "shape", None) == ()
    except Exception:  # it cannot take it whole
        return False


WHOLE_CHECKED = 1024
"""A batch that `fun` also takes whole to a scalar, of at most this many coordinates in all, is also checked as one
point (`check_grad`): a model whose leaves share a leading size reads as a batch of rows too."""


def _one_point(points):
    return jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[None], points)


def check_grad(fun, points, *, grad_fn=None, batched: bool | None = None, taylor: bool = True, **options) -> Comparison:
    """Assert that `grad_fn` (default `jax.grad(fun)`) is the gradient of `fun`, for use in test suites.

    Runs `compare` (without the NumPy reference unless `reference=True` is passed) and raises when any point is out
    of tolerance, with a message that names the worst point and coordinate, the numeric and analytic values and the
    tolerance, and a hint from `taylor_test` along that coordinate: a slope near 1 means the gradient is wrong, near 2
    that it is right and the finite-difference step is at fault.

    Args:
      fun: scalar function of one point, traceable by JAX.
      points: one point or a batch (array or pytree; a filtered pytree such as an Equinox model is checked at its
        floating-point array leaves, as in `compare`).
      grad_fn: the gradient to check.
      batched: whether `points` is a batch along its leading axis. None decides: a 1-D array is one point; an array
        of higher rank (or a pytree with a shared leading size) is a batch when `fun` maps one row to a scalar. When
        `fun` also maps all of `points` to a scalar, both readings may be meant (a loss of one matrix, a model whose
        leaves share a leading size): `points` is then also checked as one point, up to WHOLE_CHECKED coordinates
        (beyond, a warning says it was not, unless it has more rows than coordinates in a row, as a batch of points
        usually has), and must pass both; pass batched=True or False to check one reading.
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
      jaxgrad.GradientMismatchError: gradient mismatch at 1 of 1 points; worst: point 0, x[1]: ...
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this raise
    options.setdefault("reference", False)
    taylor = validate.boolean("taylor", taylor)
    batched = None if batched is None else validate.boolean("batched", batched)
    points = original = numbers_as_array(points)  # [3, 4]: one point, not a list of two scalars
    if is_filtered(points):  # only the inexact-array leaves are checked, as eqx.filter_grad differentiates them
        fun, points, grad_fn = filtered_batch(fun, points, grad_fn, batch=False)
    single = _is_single_point(fun, points) if batched is None else not batched
    first = jax.tree_util.tree_leaves(points)[:1]
    if original is not points and first and np.ndim(first[0]):
        # a batch whose integer arrays have its leading size is refused; one whose rows fun cannot take (with such
        # an array shared, as eqx.filter_vmap's models) and which is not one point either, too
        n = np.shape(first[0])[0]
        if not single or (batched is None and not _takes_whole(fun, points)):
            hint = " If `points` is one point (one model), pass batched=False." if batched is None else ""
            raise_if_batched_arrays(original, n, hint, fix=CHECKS_ONE_AT_A_TIME)
    batch = _one_point(points) if single else points
    leaves = jax.tree_util.tree_leaves(batch)
    if not sum(np.size(leaf) for leaf in leaves) or (not single and np.shape(leaves[0])[0] == 0):
        # a test on nothing (no leaf, no point, a point of no coordinates: []) passes whatever the gradient
        raise ValueError("`points` is empty: there is no gradient to check. Pass at least one point.")
    rep = compare(fun, batch, grad_fn=grad_fn, **options)
    read = None  # what to tell about the reading of `points`, when check_grad chose it
    if batched is None and not single:  # decided here: a matrix W of a loss(W) reads as a batch of its rows too
        shapes = {tuple(np.shape(leaf)[1:]) for leaf in leaves}
        shape = f"shape {shapes.pop()}" if len(shapes) == 1 else "the shapes of its rows"
        read = (f"`points` was read as a batch of {rep.num_points} points of {shape} (`fun` takes one row to a "
                "scalar); if it is one point, pass batched=False.")  # fmt: skip
        if rep.ok and _takes_whole(fun, points):
            size = sum(np.size(leaf) for leaf in leaves)
            if size <= WHOLE_CHECKED:
                whole = compare(fun, _one_point(points), grad_fn=grad_fn, **options)
                if not whole.ok:
                    rep, batch = whole, _one_point(points)
                    read = (f"`points` was checked as one point, which `fun` also takes to a scalar (as a batch of "
                            f"{np.shape(leaves[0])[0]} points of {shape}, it passed); if it is a batch, pass "
                            "batched=True.")  # fmt: skip
            elif rep.num_points**2 <= size:  # no more rows than coordinates in a row: one matrix, perhaps
                warnings.warn(f"check_grad read `points` as a batch of {rep.num_points} points of {shape}; `fun` "
                              f"also takes all of it to a scalar, as one point of {size} coordinates, which was not "
                              "checked (more than WHOLE_CHECKED). Pass batched=True to say it is a batch, or "
                              "batched=False to check it as one point.", stacklevel=2)  # fmt: skip
    if rep.ok:
        if rep.verdict is Verdict.INCONCLUSIVE:
            warnings.warn(f"check_grad is inconclusive: {inconclusive_reason(rep)}.", stacklevel=2)
        return rep
    worst = rep.worst
    failed = int(rep.mismatched.sum())
    lines = [
        f"gradient mismatch at {failed} of {rep.num_points} points; worst: {worst.describe(rep.exact_name)}.",
    ]
    if taylor and rep.mode is Mode.COORDINATES and math.isfinite(worst.error):
        point = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf)[worst.point], batch)
        lines.append(taylor_hint(fun, point, worst.coordinate, grad_fn=grad_fn, name=worst.name, error=worst.error))
    elif rep.mode is not Mode.COORDINATES:
        lines.append("Run check_grad(..., directions=None) at that point to find the coordinate.")
    lines.append(
        f"{failed} failing point(s): {np.flatnonzero(rep.mismatched)[:10].tolist()}{' ...' if failed > 10 else ''}"
    )
    if read:
        lines.append(read)
    raise GradientMismatchError("\n".join(lines), rep)
