"""Built-in test functions with analytic gradients, typical domains and accepted dimensions.

Each function takes one point as an array whose last axis holds the d coordinates (leading axes broadcast, so a
batch of shape (N, d) gives N values) and works on NumPy arrays with NumPy and on JAX arrays or tracers with
`jax.numpy`: the NumPy reference runs them at NumPy speed, the engine traces them.

Example:
  >>> import numpy as np
  >>> from jaxgrad import functions
  >>> functions.sphere(np.array([3.0, 4.0]))
  np.float64(25.0)
  >>> functions.sphere.gradient(np.array([3.0, 4.0]))
  array([6., 8.])
  >>> functions.get("rosenbrock").domain
  (-2.048, 2.048)
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import math
import os
import sys
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np


def _xp(x):
    """NumPy for NumPy input, jax.numpy for anything else (JAX arrays, tracers)."""
    return np if isinstance(x, (np.ndarray, np.generic)) else jnp


@dataclasses.dataclass(frozen=True)
class BuiltinFunction:
    """A scalar test function of d coordinates with its analytic gradient.

    Attributes:
      name: the lookup name, as used by the CLI's `--function`.
      fun: x (..., d) -> f(x) (...).
      gradient: x (..., d) -> ∇f(x) (..., d), derived by hand (not by autodiff), an independent reference.
      domain: (low, high), the box each coordinate is usually drawn from.
      min_dim: the smallest d accepted.
      max_dim: the largest d accepted (None: any).
      description: the formula in words.
    """

    name: str
    fun: Callable
    gradient: Callable
    domain: tuple[float, float]
    min_dim: int
    max_dim: int | None
    description: str

    def __call__(self, x):
        return self.fun(x)

    def __repr__(self) -> str:
        return f"<jaxgrad.functions.{self.name}: {self.description}>"

    @property
    def dims(self) -> str:
        """The accepted dimensions in words: "2" or "≥ 1"."""
        return str(self.min_dim) if self.max_dim == self.min_dim else f">= {self.min_dim}"

    @property
    def default_dim(self) -> int:
        """The dimension used when none is given: 2 for fixed 2-D functions, else 8."""
        return self.max_dim if self.max_dim is not None else max(self.min_dim, 8)

    def check_dim(self, dim: int, *, flag: str | None = None) -> None:
        """Raise ValueError unless this function accepts `dim` coordinates; `flag` ("--dim", "--point") names the
        command-line option of the fix.

        Example:
          >>> from jaxgrad import functions
          >>> functions.beale.check_dim(3, flag="--dim")
          Traceback (most recent call last):
          ValueError: beale takes dim 2 only, got 3; pass --dim 2
        """
        if dim < self.min_dim or (self.max_dim is not None and dim > self.max_dim):
            accepted = f"{self.min_dim} only" if self.max_dim == self.min_dim else f"{self.min_dim} or more"
            fit = self.min_dim if dim < self.min_dim else self.max_dim
            fix = {None: "", "--dim": f"; pass --dim {fit}"}.get(flag, f"; pass {flag} with {fit} coordinates")
            raise ValueError(f"{self.name} takes dim {accepted}, got {dim}{fix}")

    def sample(self, num_points: int, dim: int | None = None, *, seed: int = 0, dtype="float64") -> np.ndarray:
        """`num_points` points drawn uniformly from the domain, shape (num_points, dim), as a NumPy array.

        Example:
          >>> from jaxgrad import functions
          >>> functions.beale.sample(3, seed=1).shape
          (3, 2)
        """
        dim = self.default_dim if dim is None else dim
        self.check_dim(dim)
        low, high = self.domain
        return np.random.default_rng(seed).uniform(low, high, size=(num_points, dim)).astype(dtype)


# ------------------------------------------------------------------------------------------------------- definitions
def _sphere(x):
    return _xp(x).sum(x**2, axis=-1)


def _sphere_grad(x):
    return 2 * x


def _rosenbrock(x):
    xp = _xp(x)
    a, b = x[..., :-1], x[..., 1:]
    return xp.sum(100 * (b - a**2) ** 2 + (1 - a) ** 2, axis=-1)


def _rosenbrock_grad(x):
    xp = _xp(x)
    a, b = x[..., :-1], x[..., 1:]
    zero = xp.zeros_like(x[..., :1])
    from_a = -400 * a * (b - a**2) - 2 * (1 - a)  # ∂/∂x_i of the i-th term
    from_b = 200 * (b - a**2)  # ∂/∂x_{i+1} of the i-th term
    return xp.concatenate([from_a, zero], axis=-1) + xp.concatenate([zero, from_b], axis=-1)


def _rastrigin(x):
    xp = _xp(x)
    return 10 * x.shape[-1] + xp.sum(x**2 - 10 * xp.cos(2 * math.pi * x), axis=-1)


def _rastrigin_grad(x):
    return 2 * x + 20 * math.pi * _xp(x).sin(2 * math.pi * x)


def _ackley(x):
    xp = _xp(x)
    radius = xp.sqrt(xp.mean(x**2, axis=-1))
    waves = xp.mean(xp.cos(2 * math.pi * x), axis=-1)
    return -20 * xp.exp(-0.2 * radius) - xp.exp(waves) + 20 + math.e


def _ackley_grad(x):
    xp = _xp(x)
    d = x.shape[-1]
    radius = xp.sqrt(xp.mean(x**2, axis=-1, keepdims=True))
    waves = xp.mean(xp.cos(2 * math.pi * x), axis=-1, keepdims=True)
    from_radius = 4 * xp.exp(-0.2 * radius) * x / (d * radius)  # 20 · 0.2 · e^(-0.2 r) · ∂r/∂x_i
    from_waves = xp.exp(waves) * 2 * math.pi * xp.sin(2 * math.pi * x) / d
    return from_radius + from_waves


def _styblinski_tang(x):
    return 0.5 * _xp(x).sum(x**4 - 16 * x**2 + 5 * x, axis=-1)


def _styblinski_tang_grad(x):
    return 2 * x**3 - 16 * x + 2.5


def _beale_terms(x):
    u, v = x[..., 0], x[..., 1]
    return u, v, 1.5 - u + u * v, 2.25 - u + u * v**2, 2.625 - u + u * v**3


def _beale(x):
    _, _, t1, t2, t3 = _beale_terms(x)
    return t1**2 + t2**2 + t3**2


def _beale_grad(x):
    u, v, t1, t2, t3 = _beale_terms(x)
    du = 2 * t1 * (v - 1) + 2 * t2 * (v**2 - 1) + 2 * t3 * (v**3 - 1)
    dv = 2 * t1 * u + 4 * t2 * u * v + 6 * t3 * u * v**2
    return _xp(x).stack([du, dv], axis=-1)


def _himmelblau(x):
    u, v = x[..., 0], x[..., 1]
    return (u**2 + v - 11) ** 2 + (u + v**2 - 7) ** 2


def _himmelblau_grad(x):
    u, v = x[..., 0], x[..., 1]
    p, q = u**2 + v - 11, u + v**2 - 7
    return _xp(x).stack([4 * u * p + 2 * q, 2 * p + 4 * v * q], axis=-1)


def _logsumexp(x):
    xp = _xp(x)
    top = xp.max(x, axis=-1)
    return top + xp.log(xp.sum(xp.exp(x - top[..., None]), axis=-1))


def _logsumexp_grad(x):
    return _xp(x).exp(x - _logsumexp(x)[..., None])  # the softmax


sphere = BuiltinFunction(
    "sphere", _sphere, _sphere_grad, (-5.0, 5.0), 1, None, "sum x_i^2 (the notes' function_2 for d = 2)"
)
rosenbrock = BuiltinFunction(
    "rosenbrock",
    _rosenbrock,
    _rosenbrock_grad,
    (-2.048, 2.048),
    2,
    None,
    "sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2",
)
rastrigin = BuiltinFunction(
    "rastrigin", _rastrigin, _rastrigin_grad, (-5.12, 5.12), 1, None, "10 d + sum x_i^2 - 10 cos(2 pi x_i)"
)
ackley = BuiltinFunction(
    "ackley",
    _ackley,
    _ackley_grad,
    (-5.0, 5.0),
    1,
    None,
    "-20 exp(-0.2 sqrt(mean x_i^2)) - exp(mean cos(2 pi x_i)) + 20 + e (not differentiable at 0)",
)
styblinski_tang = BuiltinFunction(
    "styblinski_tang",
    _styblinski_tang,
    _styblinski_tang_grad,
    (-5.0, 5.0),
    1,
    None,
    "0.5 sum x_i^4 - 16 x_i^2 + 5 x_i",
)
beale = BuiltinFunction(
    "beale",
    _beale,
    _beale_grad,
    (-4.5, 4.5),
    2,
    2,
    "(1.5 - x + x y)^2 + (2.25 - x + x y^2)^2 + (2.625 - x + x y^3)^2",
)
himmelblau = BuiltinFunction(
    "himmelblau", _himmelblau, _himmelblau_grad, (-5.0, 5.0), 2, 2, "(x^2 + y - 11)^2 + (x + y^2 - 7)^2"
)
logsumexp = BuiltinFunction(
    "logsumexp", _logsumexp, _logsumexp_grad, (-5.0, 5.0), 1, None, "log sum exp(x_i) (gradient: the softmax)"
)

BUILTINS: dict[str, BuiltinFunction] = {
    f.name: f for f in (sphere, rosenbrock, rastrigin, ackley, styblinski_tang, beale, himmelblau, logsumexp)
}


def names() -> list[str]:
    """The names of the built-in functions, in a fixed order."""
    return list(BUILTINS)


def get(name: str) -> BuiltinFunction:
    """The built-in function called `name`.

    Raises:
      ValueError: an unknown name, listing the known ones.
    """
    try:
        return BUILTINS[name]
    except KeyError:
        close = difflib.get_close_matches(name, BUILTINS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        if not close and "." in name.strip("."):  # mymlp.flat_loss: a dot where module:function has its colon
            module, _, attr = name.rpartition(".")
            hint = f" Did you mean {module}:{attr} (module:function, with a colon)?"
        raise ValueError(
            f"Unknown function {name!r}.{hint} The built-in functions are: {', '.join(BUILTINS)} (or pass module:attr)."
        ) from None


def import_attribute(spec: str, flag: str):
    """The object `module:attr` names (`attr` may be dotted), importable from the current directory too; `flag`
    names the command-line option in the messages.

    Raises:
      ValueError: not module:attr, a module that does not import (with the reason) or a missing attribute.
    """
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise ValueError(f"`{flag} {spec}` must be module:attr, e.g. {flag} mymodel:params")
    if os.getcwd() not in sys.path and "" not in sys.path:  # ./mypkg importable, after every installed module
        sys.path.append(os.getcwd())
    try:
        target = importlib.import_module(module_name)
    except Exception as error:
        raise ValueError(
            f"`{flag} {spec}`: module {module_name!r} does not import: {error!r}. Run from the directory that holds "
            "it, or add that directory to PYTHONPATH."
        ) from error
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"`{flag} {spec}`: {module_name!r} has no attribute {attr!r}.") from None
    return target


def resolve(spec: str, *, flag: str = "--function") -> Callable:
    """A function from a built-in name ("rosenbrock") or an import path ("mypkg.losses:loss").

    `flag` names the command-line option in the messages.

    Raises:
      ValueError: an unknown name, a module that does not import (with the reason) or a missing attribute.
    """
    if ":" not in spec:
        return get(spec)
    target = import_attribute(spec, flag)
    if not callable(target):
        raise ValueError(f"`{flag} {spec}` is a {type(target).__name__}, not a function.")
    return target
