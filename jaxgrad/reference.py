"""The plain NumPy reference: the study notes' central difference, one coordinate at a time, and the book's descent.

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

    A 2-D `x` is one point when `f` returns one number for it (a weight matrix W of a loss f(W)), and a stack of
    points, one per row, when it does not: then, as the book's `numerical_gradient(f, X)` does, the gradient is
    taken row by row (the book's `function_2` of x[0]**2 + x[1]**2 returns an array for a 2-D X). `f` must compute
    from its argument: a closure over an array that the book changes in place sees no change here.

    Args:
      f: a function of one NumPy array of x's shape (or of one row of a 2-D x) returning a number.
      x: the point, an array (or nested list) of any shape; float dtypes are kept, integers become float64.
      h: the step, a positive number (default 1e-4, as in the notes).

    Returns:
      An array of x's shape and (float) dtype; the caller's x is never written, not even when `f` raises.

    Raises:
      ValueError: `h` not positive and finite, or `f` returning an array for a point.

    Example:
      >>> import numpy as np
      >>> def function_2(x): return x[0] ** 2 + x[1] ** 2
      >>> numerical_gradient(function_2, np.array([3.0, 4.0]))  # 6.00000000000378, 7.999999999999119
      array([6., 8.])
      >>> numerical_gradient(function_2, np.array([[3.0, 4.0], [0.0, 2.0]]))  # one point per row, as in the book
      array([[6., 8.],
             [0., 4.]])
    """
    _check_h(h)
    x = _float_copy(x)
    grad = np.zeros_like(x)
    for n, idx in enumerate(np.ndindex(x.shape)):
        plus = _value(f, x, idx, h)
        if n == 0 and np.size(plus) != 1:  # f returns no single number for x: rows of points, or a mistake
            if x.ndim == 2:
                return _row_by_row(f, x, h)
            raise ValueError(f"`f` must return one number for a point of shape {x.shape}, got an array of shape "
                             f"{np.shape(plus)}; only a 2-D `x` is read as one point per row.")  # fmt: skip
        grad[idx] = (plus - _value(f, x, idx, -h)) / (2 * h)
    return grad


def _row_by_row(f, x, h) -> np.ndarray:
    """The gradient at each row of a 2-D x (the book's loop over the points of X)."""
    return np.stack([numerical_gradient(f, row, h) for row in x])


def gradient_descent(f, init_x, lr: float = 0.01, step_num: int = 100):
    """The book's gradient descent: `step_num` steps of x ← x − lr·numerical_gradient(f, x), from `init_x`.

    Returns what the book's gradient_method.py returns, (x, history): the last point, and the points before each
    step, an array of shape (step_num, *init_x.shape) that starts with init_x (the whole path, final point
    included, is `np.vstack([history, x[None]])`). The book's text version returns x alone: take `[0]`. `init_x`
    is never written (the book's version changes it in place). A 2-D `init_x` descends from each row at once.
    For x0² + x1² each step multiplies x by (1 − 2·lr), to the rounding of the differences (≈ 1e-12 per step).

    Args:
      f: a function of one point returning a number, as for `numerical_gradient`.
      init_x: the start, an array or list; integers become float64.
      lr: the learning rate, a finite number (the book's default 0.01).
      step_num: the number of steps, an integer ≥ 0 (the book's default 100).

    Raises:
      ValueError: `lr` not a finite number or `step_num` not a non-negative integer.

    Example:
      >>> import numpy as np
      >>> def function_2(x): return x[0] ** 2 + x[1] ** 2
      >>> x, history = gradient_descent(function_2, np.array([-3.0, 4.0]), lr=0.1, step_num=100)
      >>> history.shape, history[1]   # (1 - 2·0.1)·(-3, 4)
      ((100, 2), array([-2.4,  3.2]))
      >>> bool(np.abs(x).max() < 1e-9)   # the book prints array([-6.1e-10, 8.1e-10])
      True
    """
    if isinstance(lr, bool) or not (isinstance(lr, (int, float, np.number)) and math.isfinite(lr)):
        raise ValueError(f"`lr` must be a finite number, got {lr!r}. The book uses lr=0.01 (0.1 for function_2).")
    if isinstance(step_num, bool) or not isinstance(step_num, (int, np.integer)) or step_num < 0:
        raise ValueError(f"`step_num` must be an integer >= 0, got {step_num!r}. The book uses step_num=100.")
    x = _float_copy(init_x)
    history = np.empty((int(step_num), *x.shape), x.dtype)
    for i in range(step_num):
        history[i] = x
        x = x - lr * numerical_gradient(f, x)  # a new array each step: nothing the caller holds is written
    return x, history


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
