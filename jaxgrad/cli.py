"""The command line: `jaxgrad grad | functions | bench` (also `python -m jaxgrad`)."""

from __future__ import annotations

import argparse
import json
import sys

DTYPES = ("float32", "float64")


def _parse_point(text: str):
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        message = f"--point must be numbers separated by commas, e.g. 3,4; got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def _cmd_grad(args) -> int:
    import jax.numpy as jnp
    import numpy as np

    from . import functions
    from ._engine import grad

    fun = functions.resolve(args.function)
    point = jnp.asarray(args.point, dtype=args.dtype)
    if isinstance(fun, functions.BuiltinFunction):
        fun.check_dim(point.shape[0])
    gradient = grad(fun, method=args.method, order=args.order, step=args.step)(point)
    print(np.asarray(gradient))
    return 0


def _cmd_functions(args) -> int:
    from . import functions
    from ._table import format_table

    rows = [[f.name, f.dims, f"[{f.domain[0]:g}, {f.domain[1]:g}]", f.description] for f in functions.BUILTINS.values()]
    print(format_table(["name", "d", "domain", "f(x)"], rows))
    return 0


def _cmd_bench(args) -> int:
    from . import _bench

    def progress(message):
        print(message, file=sys.stderr, flush=True)

    rows = _bench.run(
        args.function,
        args.points,
        args.dim,
        tuple(args.dtype),
        repeats=args.repeats,
        reference_points=args.reference_points,
        seed=args.seed,
        progress=progress,
    )
    print(_bench.format_rows(rows))
    if args.json:
        with open(args.json, "w") as stream:
            json.dump([dict(vars(r), ratio_to_floor=r.ratio_to_floor) for r in rows], stream, indent=2)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxgrad", description="Numerical gradients at scale on JAX.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("grad", help="the numerical gradient of a function at one point")
    p.add_argument("--function", default="sphere", help="a built-in name (see `jaxgrad functions`) or module:attr")
    p.add_argument(
        "--point",
        type=_parse_point,
        required=True,
        help="coordinates separated by commas, e.g. 3,4 (write --point=-3,4 for a leading minus)",
    )
    p.add_argument("--dtype", choices=DTYPES, default="float64")
    p.add_argument("--method", choices=("central", "forward", "backward"), default="central")
    p.add_argument("--order", type=int, default=None, help="order of the stencil (default: 2 central, 1 one-sided)")
    p.add_argument("--step", type=float, default=None, help="absolute step (default: eps^(1/(p+1))·max(|x|, 1))")
    p.set_defaults(run=_cmd_grad)

    p = commands.add_parser("functions", help="list the built-in functions")
    p.set_defaults(run=_cmd_functions)

    p = commands.add_parser("bench", help="time batch_grad against the floor, jax.grad and the NumPy reference")
    p.add_argument("--function", default="rosenbrock")
    p.add_argument("--points", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=8)
    p.add_argument("--dtype", choices=DTYPES, nargs="+", default=list(DTYPES))
    p.add_argument("--repeats", type=int, default=5, help="timed runs per figure (the median is shown)")
    p.add_argument("--reference-points", type=int, default=1000, help="points the NumPy loop runs on (scaled to N)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.set_defaults(run=_cmd_bench)
    return parser


def main(argv=None) -> int:
    """Entry point of the `jaxgrad` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    import jax

    try:
        with jax.enable_x64(True):  # so --dtype float64 is float64; float32 input stays float32
            return args.run(args)
    except (ValueError, TypeError) as error:
        print(f"jaxgrad {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
