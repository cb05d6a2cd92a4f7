"""Verification: jaxgrad's numeric gradient vs an exact gradient (jax.grad or yours) vs the NumPy reference.

`compare` measures agreement point by point with tolerances derived from the numerics (`jaxgrad.numerics.tolerance`);
`check_grad` asserts it in test suites; `taylor_test` checks a gradient without choosing any step. Every check speaks
one vocabulary, `Verdict`.
"""

from ._check import GradientMismatchError as GradientMismatchError
from ._check import check_grad as check_grad
from ._compare import compare as compare
from ._compare import coordinate_names as coordinate_names
from ._compare import default_reference_points as default_reference_points
from ._comparison import INCONCLUSIVE_SHARE as INCONCLUSIVE_SHARE
from ._comparison import Comparison as Comparison
from ._comparison import PairStats as PairStats
from ._comparison import Worst as Worst
from ._taylor import TaylorResult as TaylorResult
from ._taylor import taylor_hint as taylor_hint
from ._taylor import taylor_test as taylor_test
from ._verdict import Verdict as Verdict

__all__ = [
    "INCONCLUSIVE_SHARE",
    "Comparison",
    "GradientMismatchError",
    "PairStats",
    "TaylorResult",
    "Verdict",
    "Worst",
    "check_grad",
    "compare",
    "coordinate_names",
    "default_reference_points",
    "taylor_hint",
    "taylor_test",
]
