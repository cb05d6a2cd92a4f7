"""`jaxgrad plot`: pictures of a 2-D function, the −∇f field with a descent path, or an error map."""

from __future__ import annotations

import numpy as np

from .. import functions, plot
from ..verify import compare
from ._args import HelpFormatter, add_dtypes, add_function, at_most, finite_float, parse_pair, parse_point

MAX_GRID = 1000
"""A picture of more than 1000 × 1000 arrows or points shows nothing more (and an error map of 1e10 points is hours)."""
MAX_DESCENT = 100_000
"""A descent path of more steps is a long computation drawn as one line."""


def add_parser(commands) -> None:
    p = commands.add_parser(
        "plot",
        help="pictures of a 2-D function: the -grad f field (with a descent path) or an error map",
        formatter_class=HelpFormatter,
    )
    p.add_argument("what", choices=("field", "errormap"), help="field: -grad f over contours; errormap: compare map")
    add_function(p, default="sphere", what="a built-in 2-D-capable name or module:attr")
    p.add_argument("--out", required=True, help="the picture's path (.png, .svg or .pdf)")
    p.add_argument("--domain", type=parse_pair, help="LOW,HIGH for both coordinates (default: the function's)")
    p.add_argument("--grid", type=at_most(MAX_GRID, "arrows or points per side of one picture"), default=17,
                   help=f"arrows (or points) per side, at most {MAX_GRID}")  # fmt: skip
    p.add_argument("--descent", type=parse_point, help="start a gradient-descent path here, e.g. -3,4")
    p.add_argument("--learning-rate", type=finite_float, default=0.1, help="step of the gradient-descent path")
    p.add_argument("--steps", type=at_most(MAX_DESCENT, "steps of one descent path"), default=30,
                   help=f"descent steps, at most {MAX_DESCENT:,}")  # fmt: skip
    add_dtypes(p, several=False, default="float32", help_text="dtype of the error map's comparison")
    p.set_defaults(run=run)


def run(args) -> int:
    fun = functions.resolve(args.function)
    if isinstance(fun, functions.BuiltinFunction):
        fun.check_dim(2)
    domain = args.domain or getattr(fun, "domain", (-5.0, 5.0))
    if args.what == "field":
        plot.plot_gradient_field(fun, args.out, domain=(domain, domain), grid=args.grid, descent_from=args.descent,
                                 learning_rate=args.learning_rate, steps=args.steps)  # fmt: skip
    else:
        axis = np.linspace(domain[0], domain[1], args.grid)
        points = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2).astype(args.dtype)
        report = compare(fun, points, reference=False, name=args.function)
        plot.plot_error_map(report, args.out)
        print(repr(report))
    print(f"wrote {args.out}")
    return 0
