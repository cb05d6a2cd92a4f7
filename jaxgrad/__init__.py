"""jaxgrad: numerical gradients at scale on JAX: batched, jitted finite differences and their verification.

Example:
  >>> import jax.numpy as jnp, jaxgrad as jg
  >>> print(jg.grad(lambda x: x[0] ** 2 + x[1] ** 2)(jnp.array([3.0, 4.0])))
  [6. 8.]
"""

from . import functions as functions
from . import reference as reference
from ._derivatives import hessian as hessian
from ._derivatives import jacobian as jacobian
from ._derivatives import jvp as jvp
from ._engine import Estimate as Estimate
from ._engine import batch_grad as batch_grad
from ._engine import default_memory_budget as default_memory_budget
from ._engine import grad as grad
from ._engine import num_evaluations as num_evaluations
from ._errors import Status as Status
from ._errors import error_estimate as error_estimate
from ._errors import noise_estimate as noise_estimate
from ._scale import points_sharding as points_sharding
from ._scale import stream_grad as stream_grad
from ._stencils import Stencil as Stencil
from ._stencils import finite_difference_weights as finite_difference_weights
from ._stencils import make_stencil as make_stencil
from ._steps import default_step as default_step
from ._study import Study as Study
from ._study import step_study as step_study
from ._verify import Comparison as Comparison
from ._verify import GradientMismatchError as GradientMismatchError
from ._verify import TaylorResult as TaylorResult
from ._verify import check_grad as check_grad
from ._verify import compare as compare
from ._verify import taylor_test as taylor_test
from ._verify import tolerance as tolerance

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "Estimate",
    "GradientMismatchError",
    "Status",
    "Stencil",
    "Study",
    "TaylorResult",
    "batch_grad",
    "check_grad",
    "compare",
    "default_memory_budget",
    "default_step",
    "error_estimate",
    "finite_difference_weights",
    "functions",
    "grad",
    "hessian",
    "jacobian",
    "jvp",
    "make_stencil",
    "noise_estimate",
    "num_evaluations",
    "points_sharding",
    "reference",
    "step_study",
    "stream_grad",
    "taylor_test",
    "tolerance",
]
