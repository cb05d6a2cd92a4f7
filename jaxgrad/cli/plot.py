"""`jaxgrad plot`: pictures of a 2-D function, the −∇f field with a descent path, or an error map."""

from __future__ import annotations

import numpy as np

from .. import functions, plot
from ..verify import compare
from ._args import (
    HelpFormatter,
    add_dtypes,
    add_function,
    at_most,
    check_function,
    finite_float,
    parse_pair,
    parse_point,
    resolve_function,
)
from ._output import check_outputs

MAX_GRID = 1000
"""A picture of more than 1000 × 1000 arrows or points shows nothing more (and an error map of 1e10 points is hours)."""
CHOICES = {
    "field": "the -grad f arrows over contour lines; add --descent X,Y for a descent path",
    "errormap": "each point of a grid coloured by its numeric-vs-jax.grad error",
}
"""What `jaxgrad plot` draws."""
USAGE = """%(prog)s {field,errormap} --out PATH [--function FUNCTION] [--domain LOW,HIGH]
                    [--grid GRID] [--descent X,Y] [--learning-rate LEARNING_RATE] [--steps STEPS]
                    [--dtype {float32,float64}]"""
"""Written out: argparse would show the two required arguments, checked in run(), as optional."""
MAX_DESCENT = 100_000
"""A descent path of more steps is a long computation drawn as one line."""


def add_parser(commands) -> None:
    p = commands.add_parser(
        "plot",
        help="pictures of a 2-D function: the -grad f field (with a descent path) or an error map",
        description="Draw a function of 2 coordinates. `field`: the arrows of -grad f over contour lines of f (the "
        "notes' figure), with a gradient-descent path from --descent X,Y (the drawn box grows to hold the path). "
        "`errormap`: every point of a grid coloured by its numeric-vs-jax.grad error relative to its tolerance. "
        "Example: `jaxgrad plot field --function sphere --descent -3,4 --out field.png`.",
        formatter_class=HelpFormatter,
        usage=USAGE,
    )
    # both checked in run(), so that a bare `jaxgrad plot` is told what to type, not "required: what"
    p.add_argument("what", nargs="?", choices=CHOICES, help="required: " + "; ".join(
        f"{name}: {what}" for name, what in CHOICES.items()))  # fmt: skip
    add_function(p, default="sphere", what="a built-in 2-D-capable name or module:attr")
    p.add_argument("--out", help="required: the picture's path (.png, .svg or .pdf)")
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
    if args.what is None:
        examples = " or ".join(f"`jaxgrad plot {name} --out {name}.png` ({what})" for name, what in CHOICES.items())
        raise ValueError(f"say what to draw: {examples}")
    if args.out is None:
        raise ValueError(f"--out is required: the picture's path (.png, .svg or .pdf), e.g. --out {args.what}.png")
    check_outputs({"--out": args.out})
    fun = resolve_function(args.function)
    if isinstance(fun, functions.BuiltinFunction):
        fun.check_dim(2)
    else:
        try:
            check_function(fun, args.function, 2)
        except ValueError as error:  # its advice (--dim, --like) is compare's; a picture has 2 coordinates
            cause = error.__cause__ or error
            raise ValueError(
                f"--function {args.function} cannot be drawn: plot draws a function of 2 coordinates, "
                f"x0 and x1, and it fails on a point of 2 ({type(cause).__name__}: {cause})"
            ) from cause
    domain = args.domain or getattr(fun, "domain", (-5.0, 5.0))
    if args.what == "field":
        box, path = (domain, domain), None
        if args.descent is not None:
            if len(args.descent) != 2:
                raise ValueError(f"--descent takes a start of 2 coordinates, e.g. -3,4; got {len(args.descent)}")
            path = plot.descent_path(fun, args.descent, learning_rate=args.learning_rate, steps=args.steps)
            box = plot.domain_holding(box, path)
            if box != (domain, domain):
                print(f"drawn box [{box[0][0]:.3g}, {box[0][1]:.3g}] × [{box[1][0]:.3g}, {box[1][1]:.3g}]: "
                      f"--domain {domain[0]:g},{domain[1]:g} grown to hold the descent path")  # fmt: skip
        plot.plot_gradient_field(fun, args.out, domain=box, grid=args.grid, descent=path,
                                 learning_rate=None if path is None else args.learning_rate)  # fmt: skip
    else:
        axis = np.linspace(domain[0], domain[1], args.grid)
        points = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2).astype(args.dtype)
        report = compare(fun, points, reference=False, name=args.function)
        plot.plot_error_map(report, args.out)
        print(repr(report))
    print(f"wrote {args.out}")
    return 0
