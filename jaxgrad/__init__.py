"""jaxgrad: numerical gradients at scale on JAX: batched, jitted finite differences and their verification.

The top level holds the transformations (`grad`, `batch_grad`, `jacobian`, `hessian`, `jvp`, `stream_grad`), the
verification (`compare`, `check_grad`, `taylor_test`, `step_study`), their result types, and the scheme and step-rule
classes that `method=` and `step=` accept. Low-level numerics live in `jaxgrad.numerics`; the built-in test functions
in `jaxgrad.functions`; the plain NumPy algorithm of the notes in `jaxgrad.reference`.

Example:
  >>> import jax.numpy as jnp, jaxgrad as jg
  >>> print(jg.grad(lambda x: x[0] ** 2 + x[1] ** 2)(jnp.array([3.0, 4.0])))
  [6. 8.]
"""

import warnings as _warnings

from . import functions as functions
from . import numerics as numerics
from . import reference as reference
from . import verify as verify
from ._batching import default_memory_budget as default_memory_budget
from ._derivatives import hessian as hessian
from ._derivatives import jacobian as jacobian
from ._derivatives import jvp as jvp
from ._estimate import Estimate as Estimate
from ._estimate import Status as Status
from ._grad import batch_grad as batch_grad
from ._grad import grad as grad
from ._grad import num_evaluations as num_evaluations
from ._schemes import Backward as Backward
from ._schemes import Central as Central
from ._schemes import ComplexStep as ComplexStep
from ._schemes import FiniteDifference as FiniteDifference
from ._schemes import Forward as Forward
from ._schemes import Mode as Mode
from ._schemes import Richardson as Richardson
from ._schemes import Scheme as Scheme
from ._schemes import StepDirection as StepDirection
from ._schemes import as_scheme as _as_scheme
from ._sharding import points_sharding as points_sharding
from ._sharding import stream_grad as stream_grad
from ._steps import Absolute as Absolute
from ._steps import AutoStep as AutoStep
from ._steps import DefaultStep as DefaultStep
from ._steps import Relative as Relative
from ._steps import StepRule as StepRule
from .study import Study as Study
from .study import step_study as step_study
from .verify import Comparison as Comparison
from .verify import GradientMismatchError as GradientMismatchError
from .verify import TaylorResult as TaylorResult
from .verify import Verdict as Verdict
from .verify import check_grad as check_grad
from .verify import compare as compare
from .verify import taylor_test as taylor_test

__version__ = "0.2.0"

_MOVED = {
    "tolerance": ("jaxgrad.numerics.tolerance", lambda: numerics.tolerance),
    "noise_estimate": ("jaxgrad.numerics.noise_estimate", lambda: numerics.noise_estimate),
    "error_estimate": ("jaxgrad.numerics.error_estimate", lambda: numerics.error_estimate),
    "finite_difference_weights": ("jaxgrad.numerics.finite_difference_weights",
                                  lambda: numerics.finite_difference_weights),
    "default_step": ("jaxgrad.numerics.default_step", lambda: numerics.default_step),
    "make_stencil": ("the scheme classes: jg.Central(4), jg.Forward(), jg.Richardson(), jg.ComplexStep()",
                     lambda: _as_scheme),
    "Stencil": ("jaxgrad.FiniteDifference", lambda: FiniteDifference),
}  # fmt: skip
"""Names the top level had before the public surface was tiered; they keep working for this release."""


def __getattr__(name):
    if name in _MOVED:
        new, value = _MOVED[name]
        _warnings.warn(f"jaxgrad.{name} has moved to {new}; the old name goes in the next release.",
                       DeprecationWarning, stacklevel=2)  # fmt: skip
        return value()
    raise AttributeError(f"module 'jaxgrad' has no attribute {name!r}")


__all__ = [
    "Absolute",
    "AutoStep",
    "Backward",
    "Central",
    "Comparison",
    "ComplexStep",
    "DefaultStep",
    "Estimate",
    "FiniteDifference",
    "Forward",
    "GradientMismatchError",
    "Mode",
    "Relative",
    "Richardson",
    "Scheme",
    "Status",
    "StepDirection",
    "StepRule",
    "Study",
    "TaylorResult",
    "Verdict",
    "batch_grad",
    "check_grad",
    "compare",
    "default_memory_budget",
    "functions",
    "grad",
    "hessian",
    "jacobian",
    "jvp",
    "num_evaluations",
    "numerics",
    "points_sharding",
    "reference",
    "step_study",
    "stream_grad",
    "taylor_test",
    "verify",
]
