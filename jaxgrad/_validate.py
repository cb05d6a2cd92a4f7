"""One validation layer for every public option: types (NumPy scalars included), ranges, NaN and inf.

Each check names the argument in backticks, shows the bad value plainly, and says what to pass instead. They run once,
where the user's arguments come in, never inside a traced program.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _shown(value) -> str:
    """The value as a user would type it: np.float64(0.1) shows as 0.1."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type: a TypeError, and a ValueError too, so code that caught the ValueError these
    checks raised before still catches it."""


def _integer_kind(minimum, maximum, none: bool) -> str:
    if maximum is None:
        kind = {1: "a positive integer", 0: "a non-negative integer"}.get(minimum, "an integer")
        kind = kind if minimum in (0, 1, None) else f"an integer ≥ {minimum}"
    elif minimum is None:
        kind = f"an integer ≤ {maximum}"
    else:
        kind = f"an integer from {minimum} to {maximum}"
    return kind + (" or None" if none else "")


def integer(name: str, value, *, minimum: int | None = None, maximum: int | None = None, none: bool = False,
            hint: str = ""):  # fmt: skip
    """`value` as a Python int (NumPy integers accepted; bools, floats and strings refused), within the bounds."""
    if value is None and none:
        return None
    kind = _integer_kind(minimum, maximum, none)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ArgumentTypeError(f"`{name}` must be {kind}, got {_shown(value)} ({type(value).__name__}).{hint}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"`{name}` must be {kind}, got {value}.{hint}")
    return value


def real(name: str, value, *, minimum: float | None = None, positive: bool = False, finite: bool = True,
         hint: str = "") -> float:  # fmt: skip
    """`value` as a Python float (NumPy scalars accepted; strings and bools refused): not NaN, finite unless
    `finite=False`, at least `minimum`, and > 0 with `positive`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ArgumentTypeError(f"`{name}` must be a real number, got {_shown(value)} ({type(value).__name__}).{hint}")
    number = float(value)
    if math.isnan(number) or (finite and math.isinf(number)):
        raise ValueError(f"`{name}` must be a finite number, got {_shown(value)}.{hint}")
    if positive and not number > 0:
        raise ValueError(f"`{name}` must be positive, got {_shown(value)}.{hint}")
    if minimum is not None and number < minimum:
        raise ValueError(f"`{name}` must be at least {minimum:g}, got {_shown(value)}.{hint}")
    return number


def boolean(name: str, value) -> bool:
    """`value` as a bool (Python or NumPy bools only)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"`{name}` must be True or False, got {_shown(value)} ({type(value).__name__}).")
    return bool(value)


def one_of(name: str, value, choices):
    """`value` when it is one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {', '.join(map(repr, choices))}, got {_shown(value)}.")
    return value
