"""The plain NumPy reference: the study notes' central difference, one coordinate at a time.

This is deliberately the textbook algorithm (central difference with a fixed h = 1e-4 and a Python loop over the
coordinates), kept as an independent check on the JAX engine and as the baseline of the benchmarks. Unlike the notes'
version it returns the gradient, never touches the caller's array, accepts any shape, and promotes integer input to
float64 (the notes' version truncates x + h to an integer).

It calls `f` on a fresh array for every perturbed point, never on one buffer that it changes and restores: JAX may
read a NumPy buffer without copying it and evaluate asynchronously, so a JAX `f` handed the notes' in-place
x[i] += h; f(x); x[i] = original could see the restored value (entries came out 0 or half the derivative, different
on every call).
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_H = 1e-4


def _check_h(h) -> None:
    if not (isinstance(h, (int, float, np.number)) and math.isfinite(h) and h > 0):
        raise ValueError(f"`h` must be a positive finite number, got {h!r}. The notes use h=1e-4.")


def _float_copy(x) -> np.ndarray:
    x = np.array(x, copy=True)  # always a private copy: the caller's array is never written
    if not np.issubdtype(x.dtype, np.floating):
        if not (np.issubdtype(x.dtype, np.integer) or x.dtype == bool):
            raise TypeError(f"`x` must hold real numbers, got dtype {x.dtype}.")
        x = x.astype(np.float64)
    return x


def numerical_gradient(f, x, h: float = DEFAULT_H) -> np.ndarray:
    """Central-difference gradient of `f` at `x`: (f(x + h e_i) - f(x - h e_i)) / 2h, one coordinate at a time.

    Costs 2·x.size calls of `f`. The error is ≈ h²·|f'''|/6 + eps·|f|/h: in float64 with h = 1e-4 about 1e-8
    relative; in float32 the round-off term dominates (≈ 1e-3 relative), which is why the JAX engine picks its
    step from the dtype instead.

    Args:
      f: a function of one NumPy array of x's shape returning a number.
      x: the point, an array (or nested list) of any shape; float dtypes are kept, integers become float64.
      h: the step, a positive number (default 1e-4, as in the notes).

    Returns:
      An array of x's shape and (float) dtype.

    Raises:
      ValueError: `h` not positive and finite.

    Example:
      >>> import numpy as np
      >>> def function_2(x): return x[0] ** 2 + x[1] ** 2
      >>> numerical_gradient(function_2, np.array([3.0, 4.0]))  # 6.00000000000378, 7.999999999999119
      array([6., 8.])
    """
    _check_h(h)
    x = _float_copy(x)
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        grad[idx] = (_value(f, x, idx, h) - _value(f, x, idx, -h)) / (2 * h)
    return grad


def _value(f, x, idx, step) -> float:
    """f at x with x[idx] moved by `step`, on a copy of its own that nothing changes afterwards."""
    moved = x.copy()
    moved[idx] = x[idx] + step
    return f(moved)


def batch_numerical_gradient(f, points, h: float = DEFAULT_H) -> np.ndarray:
    """`numerical_gradient` at every row of `points` (shape (N, ...)), one point after another.

    Example:
      >>> import numpy as np
      >>> pts = np.array([[3.0, 4.0], [0.0, 2.0], [3.0, 0.0]])
      >>> batch_numerical_gradient(lambda x: x[0] ** 2 + x[1] ** 2, pts)
      array([[6., 8.],
             [0., 4.],
             [6., 0.]])
    """
    _check_h(h)
    points = _float_copy(points)
    if points.ndim == 0:
        raise ValueError("`points` needs a leading batch axis (shape (N, ...)); for one point use numerical_gradient.")
    return np.stack([numerical_gradient(f, point, h) for point in points]) if len(points) else np.zeros_like(points)
