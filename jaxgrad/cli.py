"""The command line: `jaxgrad compare | study | plot | grad | functions | bench` (also `python -m jaxgrad`)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys

DTYPES = ("float32", "float64")
NUMPY_HELP = "the function is NumPy code that JAX cannot trace: evaluate it on the host (traceable=False)"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" where there is a default and the help does not already state it."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _parse_point(text: str):
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        values = []
    if not values:
        message = f"--point must be numbers separated by commas, e.g. 3,4; got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    return values


NUMBER_LISTS = ("--point", "--domain", "--descent")
"""Options whose value is numbers separated by commas, and may start with a minus."""


def _join_negative_points(argv: list[str]) -> list[str]:
    """`--point -1,2` as `--point=-1,2` (also --domain, --descent): argparse would read "-1,2" as an option."""
    out = []
    for arg in argv:
        if out and out[-1] in NUMBER_LISTS and re.match(r"-[0-9.]", arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def _cmd_grad(args) -> int:
    import jax.numpy as jnp
    import numpy as np

    from . import functions
    from ._engine import grad

    fun = functions.resolve(args.function)
    point = jnp.asarray(args.point, dtype=args.dtype)
    if isinstance(fun, functions.BuiltinFunction):
        fun.check_dim(point.shape[0])
    gradient = grad(fun, method=args.method, order=args.order, step=args.step, traceable=not args.numpy)(point)
    print(np.asarray(gradient))
    return 0


def _cmd_functions(args) -> int:
    from . import functions
    from ._table import format_table

    rows = [[f.name, f.dims, f"[{f.domain[0]:g}, {f.domain[1]:g}]", f.description] for f in functions.BUILTINS.values()]
    print(format_table(["name", "d", "domain", "f(x)"], rows))
    return 0


def _cmd_bench(args) -> int:
    from tqdm import tqdm

    from . import _bench, functions

    if args.large:
        print(_bench.large(args.points[0] if args.points else 1_000_000, args.dim[0] if args.dim else 100,
                           (args.function or ["rosenbrock"])[0], (args.dtype or ["float32"])[0]))  # fmt: skip
        return 0
    for name in args.function or []:  # before any progress output
        if name != "mlp":
            functions.get(name)
    matrix = _bench.QUICK if args.quick else _bench.FULL
    jobs = list(_bench.configurations(matrix, args.function, args.dim, args.points, args.dtype))
    bar = tqdm(total=len(jobs), desc="bench", unit="row", file=sys.stderr, leave=False)

    def progress(message):
        bar.set_postfix_str(message)
        bar.update(1)

    rows = _bench.run(matrix, functions_=args.function, dims=args.dim, sizes=args.points, dtypes=args.dtype,
                      repeats=args.repeats, reference_points=args.reference_points, seed=args.seed,
                      progress=progress)  # fmt: skip
    bar.close()
    print(_bench.format_rows(rows))
    if args.json:
        with open(args.json, "w") as stream:
            rows_out = [dict(vars(r), ratio_to_floor=r.ratio_to_floor, speedup_over_reference=r.speedup_over_reference,
                             speedup_over_scipy=r.speedup_over_scipy) for r in rows]  # fmt: skip
            json.dump(rows_out, stream, indent=1)
    return 0


def _parse_pair(text: str):
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--domain must be two numbers LOW,HIGH, e.g. -1,1; got {text!r}") from None
    return low, high


def _function_dim_domain(spec, dim, domain):
    """The function named by `spec`, its dimension and sampling box: the built-in's own unless given; 8 and [-1, 1]
    for a user's function."""
    from . import functions

    fun = functions.resolve(spec)
    if isinstance(fun, functions.BuiltinFunction):
        dim = fun.default_dim if dim is None else dim
        fun.check_dim(dim)
        return fun, dim, domain or fun.domain
    return fun, dim or 8, domain or (-1.0, 1.0)


def _compare_jobs(args):
    """(label, function, points factory, dim) for every function asked for."""
    import numpy as np

    from . import functions

    specs = args.function or functions.names()
    jobs = []
    for spec in specs:
        fun, dim, domain = _function_dim_domain(spec, args.dim, args.domain)

        def sample(dtype, dim=dim, domain=domain):
            rng = np.random.default_rng(args.seed)
            return rng.uniform(domain[0], domain[1], size=(args.points, dim)).astype(dtype)

        jobs.append((spec, fun, sample, dim))
    return jobs


def _cmd_compare(args) -> int:
    import jax
    from tqdm import tqdm

    from . import functions
    from ._table import format_table
    from ._verify import compare

    if args.numpy and not args.grad:
        raise ValueError("--numpy needs --grad module:attr: jax.grad cannot differentiate NumPy code.")
    grad_fn = functions.resolve(args.grad, flag="--grad") if args.grad else None
    jobs = [(job, dtype) for job in _compare_jobs(args) for dtype in args.dtype]
    reports, rows = [], []
    progress = tqdm(
        jobs, desc="compare", unit="run", disable=True if args.quiet else None, file=sys.stderr, leave=False
    )
    interrupted = False
    for (label, fun, sample, dim), dtype in progress:
        progress.set_postfix_str(f"{label} d={dim} {dtype}")
        try:
            rep = compare(fun, sample(dtype), grad_fn=grad_fn, reference=not args.no_reference,
                          reference_points=args.reference_points, directions=args.directions, rtol=args.rtol,
                          atol=args.atol, seed=args.seed, name=label, traceable=not args.numpy)  # fmt: skip
        except KeyboardInterrupt:
            interrupted = True
            break
        reports.append(rep)
        _write_reports(reports, args.json, args.csv)  # after every run: an interruption keeps the finished ones
        main_pair, *ref_pairs = rep.pairs
        ref = ref_pairs[0] if ref_pairs else None
        rows.append([
            label, dim, dtype, f"{rep.num_points:,}", f"{main_pair.max_ratio:.3g}",
            f"{main_pair.median_rel_error:.2e}", f"{100 * main_pair.pass_rate:.2f}%", f"{rep.unresolved:,}",
            f"{ref.points}" if ref else "-", f"{ref.median_rel_error:.2e}" if ref else "-",
            f"{100 * ref.pass_rate:.0f}%" if ref else "-",
            " ".join(f"{t:.2f}" for t in rep.times.values()), rep.verdict,
        ])  # fmt: skip
    progress.close()
    device = jax.devices()[0]
    exact = reports[0].exact_name if reports else "jax.grad"
    headers = ["function", "d", "dtype", "points", "max err/tol", "median rel err", "pass", "unresolved",
               "ref pts", "ref rel err", "ref pass", f"times s ({exact}, jaxgrad, ref; incl. compile)",
               "verdict"]  # fmt: skip
    versus = "" if args.no_reference else " vs NumPy reference"
    title = f"jaxgrad compare: jaxgrad (central, h and 2h) vs {exact}{versus}, on {device.platform} ({device})"
    print(format_table(headers, rows, title=title))
    failures = [rep for rep in reports if not rep.ok]
    for rep in failures:
        failed = int((~rep.passed).sum())
        print(f"{rep.function} {rep.dtype}: {failed} points fail; worst: {rep.worst.describe(rep.exact_name)}")
    for rep in reports:
        if rep.verdict == "INCONCLUSIVE":
            print(
                f"{rep.function} {rep.dtype}: inconclusive, {rep.unresolved:,} of {rep.num_points:,} points cannot be "
                "resolved at the default step (the tolerance is as large as the gradient there)"
            )
    if interrupted:
        written = " and ".join(path for path in (args.json, args.csv) if path)
        print(
            f"interrupted: {len(reports)} of {len(jobs)} runs finished"
            + (f"; their points are in {written}" if written and reports else "")
        )
        return 130
    counts = {v: sum(rep.verdict == v for rep in reports) for v in ("OK", "INCONCLUSIVE", "MISMATCH")}
    print(
        f"{counts['OK']} of {len(reports)} runs OK, {counts['INCONCLUSIVE']} inconclusive, "
        f"{counts['MISMATCH']} mismatched" + (" (exit code 1)" if failures else "")
    )
    return 1 if failures else 0


def _write_reports(reports, json_path, csv_path) -> None:
    """Write every finished run: JSON (a list of `Comparison.to_dict()`) and CSV (their per-point rows), each file
    replaced whole, so it is valid whenever the command stops."""
    from ._verify import write_rows_csv

    if json_path:

        def write_json(path):
            with open(path, "w") as stream:
                json.dump([r.to_dict() for r in reports], stream, default=float)

        _replace(json_path, write_json)
    if csv_path:
        rows = [dict(function=r.function, dtype=r.dtype, **row) for r in reports for row in r.rows()]
        _replace(csv_path, lambda path: write_rows_csv(path, rows))


def _replace(path, write) -> None:
    """Write to a temporary file beside `path`, then rename it over `path` (atomic on POSIX)."""
    import os

    temporary = f"{path}.partial"
    write(temporary)
    os.replace(temporary, path)


def _parse_method(text: str):
    method, _, order = text.partition(":")
    return (method, int(order)) if order else method


def _cmd_study(args) -> int:
    import dataclasses
    import os

    import numpy as np
    from tqdm import tqdm

    from ._study import step_study

    fun, dim, domain = _function_dim_domain(args.function, args.dim, args.domain)
    points = np.random.default_rng(args.seed).uniform(domain[0], domain[1], size=(args.points, dim))
    curves = [(dtype, method) for dtype in args.dtype for method in args.method]
    bar = tqdm(curves, desc="study", unit="curve", file=sys.stderr, leave=False,
               disable=True if args.quiet else None)  # fmt: skip
    os.makedirs(args.out, exist_ok=True)
    written = [os.path.join(args.out, name) for name in ("study.csv", "study.json")]
    study = None
    for dtype, method in bar:  # one curve at a time, files rewritten after each: an interruption keeps them
        bar.set_postfix_str(f"{dtype} {method}")
        try:
            part = step_study(fun, points, dtypes=(dtype,), methods=(method,), name=args.function)
        except KeyboardInterrupt:
            bar.close()
            done = 0 if study is None else len(study.curves)
            print(f"interrupted: {done} of {len(curves)} curves finished" + (f"; in {written[0]}" if done else ""))
            return 130
        study = part if study is None else dataclasses.replace(study, curves=study.curves + part.curves,
                                                               notes=study.notes + part.notes)  # fmt: skip
        _replace(written[0], study.to_csv)
        _replace(written[1], study.to_json)
    bar.close()
    print(study.summary())
    from .plot import INSTALL_HINT, plot_study

    if importlib.util.find_spec("matplotlib") is None:
        print(f"no pictures: matplotlib is not installed ({INSTALL_HINT})")
    else:
        for suffix in ("png", "svg"):
            picture = os.path.join(args.out, f"v_curve.{suffix}")
            plot_study(study, picture)
            written.append(picture)
    print("wrote " + ", ".join(written))
    return 0


def _cmd_plot(args) -> int:
    import numpy as np

    from . import functions, plot

    fun = functions.resolve(args.function)
    if isinstance(fun, functions.BuiltinFunction):
        fun.check_dim(2)
    domain = args.domain or getattr(fun, "domain", (-5.0, 5.0))
    if args.what == "field":
        plot.plot_gradient_field(fun, args.out, domain=(domain, domain), grid=args.grid, descent_from=args.descent,
                                 learning_rate=args.learning_rate, steps=args.steps)  # fmt: skip
    else:
        from ._verify import compare

        axis = np.linspace(domain[0], domain[1], args.grid)
        points = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2).astype(args.dtype)
        report = compare(fun, points, reference=False, name=args.function)
        plot.plot_error_map(report, args.out)
        print(repr(report))
    print(f"wrote {args.out}")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="jaxgrad", description="Numerical gradients at scale on JAX.")
    parser.add_argument("--version", action="version", version=f"jaxgrad {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser(
        "compare",
        help="numeric vs autodiff vs NumPy at many points; exit code 1 on a mismatch",
        description="Check gradients at many random points: jaxgrad's numeric gradient against jax.grad (or --grad) "
        "and the NumPy reference, with tolerances derived from the numerics. Exit code 0 when no point mismatches "
        "(runs whose tolerance cannot resolve most points are marked INCONCLUSIVE), 1 on a mismatch, 2 on bad usage.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--function", action="append", help="built-in name or module:attr (repeatable; default: all)")
    p.add_argument("--grad", help="module:attr of the gradient to check (default: jax.grad of the function)")
    p.add_argument("--dim", type=int, help="dimension (default: each function's own, 8 for your functions)")
    p.add_argument("--points", type=_positive_int, default=10_000, help="random points per function and dtype")
    p.add_argument("--dtype", choices=DTYPES, nargs="+", default=list(DTYPES), help="dtypes to check")
    p.add_argument("--seed", type=int, default=0, help="seed of the points, the reference sample and directions")
    p.add_argument("--domain", type=_parse_pair, help="LOW,HIGH box to sample from (default: the function's, or -1,1)")
    p.add_argument(
        "--directions", type=_positive_int, help="check K random directions per point instead of every coordinate"
    )
    p.add_argument(
        "--reference-points", type=_positive_int, help="points the NumPy reference runs on (default: up to 100)"
    )
    p.add_argument("--no-reference", action="store_true", help="skip the NumPy reference")
    p.add_argument("--numpy", action="store_true", help=NUMPY_HELP + "; needs --grad")
    p.add_argument("--rtol", type=float, default=0.0, help="added to the derived tolerance, relative")
    p.add_argument("--atol", type=float, default=0.0, help="added to the derived tolerance, absolute")
    p.add_argument("--json", help="write every run's summary and per-point rows to this JSON file")
    p.add_argument("--csv", help="write the per-point rows of every run to this CSV file")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=_cmd_compare)

    p = commands.add_parser(
        "grad",
        help="the numerical gradient of a function at one point",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--function", default="sphere", help="a built-in name (see `jaxgrad functions`) or module:attr")
    p.add_argument(
        "--point",
        type=_parse_point,
        required=True,
        help="coordinates separated by commas, e.g. 3,4 or -3,4",
    )
    p.add_argument("--dtype", choices=DTYPES, default="float64", help="the dtype of the point")
    p.add_argument("--method", choices=("central", "forward", "backward", "richardson", "complex"), default="central",
                   help="the finite-difference method")  # fmt: skip
    p.add_argument("--order", type=int, default=None, help="order of the stencil (default: 2 central, 1 one-sided)")
    p.add_argument("--step", type=float, default=None, help="absolute step (default: eps^(1/(p+1))·max(|x|, 1))")
    p.add_argument("--numpy", action="store_true", help=NUMPY_HELP)
    p.set_defaults(run=_cmd_grad)

    p = commands.add_parser(
        "study",
        help="error against step per dtype and method, with the theory; writes CSV, JSON and the V-curve pictures",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--function", default="rosenbrock", help="a built-in name or module:attr")
    p.add_argument("--dim", type=_positive_int, help="dimension (default: the function's own, 8 for yours)")
    p.add_argument("--points", type=_positive_int, default=1000, help="random points of the study")
    p.add_argument("--dtype", choices=DTYPES, nargs="+", default=list(DTYPES), help="dtypes to study")
    p.add_argument("--method", type=_parse_method, nargs="+", default=["central", "forward", ("central", 4)],
                   help="methods, as NAME or NAME:ORDER (central, central:4, forward, richardson, ...; default: "
                        "central forward central:4)")  # fmt: skip
    p.add_argument("--domain", type=_parse_pair, help="LOW,HIGH box to sample from (default: the function's, or -1,1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the points")
    p.add_argument("--out", default="study", help="directory for study.csv, study.json, v_curve.png, v_curve.svg")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=_cmd_study)

    p = commands.add_parser(
        "plot",
        help="pictures of a 2-D function: the -grad f field (with a descent path) or an error map",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("what", choices=("field", "errormap"), help="field: -grad f over contours; errormap: compare map")
    p.add_argument("--function", default="sphere", help="a built-in 2-D-capable name or module:attr")
    p.add_argument("--out", required=True, help="the picture's path (.png, .svg or .pdf)")
    p.add_argument("--domain", type=_parse_pair, help="LOW,HIGH for both coordinates (default: the function's)")
    p.add_argument("--grid", type=_positive_int, default=17, help="arrows (or points) per side")
    p.add_argument("--descent", type=_parse_point, help="start a gradient-descent path here, e.g. -3,4")
    p.add_argument("--learning-rate", type=float, default=0.1, help="step of the gradient-descent path")
    p.add_argument("--steps", type=_positive_int, default=30, help="descent steps")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="dtype of the error map's comparison")
    p.set_defaults(run=_cmd_plot)

    p = commands.add_parser("functions", help="list the built-in functions")
    p.set_defaults(run=_cmd_functions)

    p = commands.add_parser(
        "bench",
        help="time batch_grad against the floor, jax.grad, the NumPy reference and scipy",
        description="A matrix of functions (sphere, rosenbrock, mlp), dimensions, batch sizes, dtypes and methods; "
        "--quick runs a small one, --large one memory-bounded run of 1e6 x 100 (measure its memory from outside: "
        "/usr/bin/time -v jaxgrad bench --large).",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="the small matrix (a minute or two on a laptop CPU)")
    p.add_argument("--large", action="store_true", help="one run of --points x --dim (default 1e6 x 100, float32)")
    p.add_argument("--function", action="append", help="sphere, rosenbrock, mlp or any built-in (repeatable)")
    p.add_argument("--dim", type=_positive_int, nargs="+", help="dimensions (default: the matrix's)")
    p.add_argument("--points", type=_positive_int, nargs="+", help="batch sizes N (default: the matrix's)")
    p.add_argument("--dtype", choices=DTYPES, nargs="+", help="dtypes (default: both)")
    p.add_argument("--repeats", type=_positive_int, default=5, help="timed runs per figure (the median is shown)")
    p.add_argument("--reference-points", type=_positive_int, default=200, help="points the NumPy loop runs on")
    p.add_argument("--seed", type=int, default=0, help="seed of the points")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.set_defaults(run=_cmd_bench)
    return parser


def main(argv=None) -> int:
    """Entry point of the `jaxgrad` command; returns the exit code."""
    args = build_parser().parse_args(_join_negative_points(sys.argv[1:] if argv is None else argv))
    if "" not in sys.path and os.getcwd() not in sys.path:  # as under `python -m`: module:attr finds ./mypkg
        sys.path.insert(0, os.getcwd())
    import jax

    try:
        with jax.enable_x64(True):  # so --dtype float64 is float64; float32 input stays float32
            return args.run(args)
    except (ValueError, TypeError, ImportError) as error:
        print(f"jaxgrad {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
