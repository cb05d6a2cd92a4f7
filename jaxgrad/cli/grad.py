"""`jaxgrad grad`: the numerical gradient of a function at one point."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .. import functions
from .._grad import grad
from ._args import (
    NUMPY_HELP,
    HelpFormatter,
    add_dtypes,
    add_function,
    add_method,
    check_function,
    library_step,
    parse_point,
)


def add_parser(commands) -> None:
    p = commands.add_parser("grad", help="the numerical gradient of a function at one point",
                            formatter_class=HelpFormatter)  # fmt: skip
    add_function(p, default="sphere", what="a built-in name (see `jaxgrad functions`) or module:attr")
    p.add_argument("--point", type=parse_point, required=True, help="coordinates separated by commas, e.g. 3,4 or -3,4")
    add_dtypes(p, several=False, default="float64", help_text="the dtype of the point")
    add_method(p)
    p.add_argument("--numpy", action="store_true", help=NUMPY_HELP)
    p.set_defaults(run=run)


def run(args) -> int:
    fun = functions.resolve(args.function)
    point = jnp.asarray(args.point, dtype=args.dtype)
    if isinstance(fun, functions.BuiltinFunction):
        fun.check_dim(point.shape[0])
    elif not args.numpy:
        check_function(fun, args.function, point.shape[0], option="--point")
    step = library_step(args.step)
    gradient = grad(fun, method=args.method, order=args.order, step=step, traceable=not args.numpy)(point)
    print(np.asarray(gradient))
    return 0
