"""`jaxgrad study`: error against step per dtype and method, with the theory; CSV, JSON and V-curve pictures."""

from __future__ import annotations

import importlib.util
import os

import jax
import numpy as np

from ..plot import INSTALL_HINT
from ..study import step_study
from ._args import (
    Example,
    HelpFormatter,
    add_dtypes,
    add_function,
    add_like,
    add_method,
    add_quiet,
    add_sampling,
    check_function,
    check_memory,
    function_dim_domain,
    methods_of,
    positive_float,
    sample,
)
from ._output import each_with_progress, interrupted_line


def add_parser(commands) -> None:
    p = commands.add_parser(
        "study",
        help="error against step per dtype and method, with the theory; writes CSV, JSON and the V-curve pictures",
        description="Sweep the finite-difference step h = s·max(|x|, 1) over a grid of factors s and measure the "
        "median relative error against jax.grad at random points, per dtype and method: the V curve, truncation "
        "error falling with h and rounding error rising as h shrinks. Beside it: the textbook error model, its best "
        "step on the same grid, jaxgrad's default step and the steps that step='auto' chooses. Prints the summary "
        "and writes study.csv, study.json and v_curve.png/.svg into --out. Example: `jaxgrad study --function "
        "rosenbrock --dim 4 --points 200`; a loss over a pytree of parameters: `jaxgrad study --function "
        "mymlp:loss --like mymlp:params`.",
        formatter_class=HelpFormatter,
    )
    add_function(p, default="rosenbrock")
    add_sampling(p, points=1000)
    add_like(p, sampled=True)
    add_dtypes(p, help_text="dtypes to study")
    add_method(p, several=True)
    p.add_argument("--steps", type=positive_float, nargs="+",
                   help="step factors s to sweep, h = s·max(|x|, 1) (default: 40 from 1 down to the dtype's "
                        "round-off)")  # fmt: skip
    p.add_argument("--out", default="study", help="directory for study.csv, study.json, v_curve.png, v_curve.svg")
    add_quiet(p)
    p.set_defaults(run=run)


def run(args) -> int:
    fun, dim, domain = function_dim_domain(args.function, args.dim, args.domain, like=args.like)
    check_function(fun, args.function, dim, region=domain)  # naming --dim or --like, as compare does
    check_memory(args.points, dim, 4, "the study")
    if not args.out or (os.path.exists(args.out) and not os.path.isdir(args.out)):
        raise ValueError(f"--out {args.out!r} must name a directory (it holds study.csv, study.json and the pictures)")
    points = sample(dim, domain, args.points, args.seed, np.float64)
    if isinstance(domain, Example):  # the study sweeps steps over the example's values as one vector
        fun, points = on_vectors(fun, domain), Example.flatten(points)
    curves = [(dtype, method) for dtype in args.dtype for method in methods_of(args)]
    os.makedirs(args.out, exist_ok=True)
    written = [os.path.join(args.out, name) for name in ("study.csv", "study.json")]
    steps = None if args.steps is None else np.asarray(args.steps)

    def work(curve):
        dtype, method = curve
        return step_study(fun, points, steps=steps, dtypes=(dtype,), methods=(method,), name=args.function)

    def keep(parts):  # the files hold every finished curve
        study = joined(parts)
        study.to_csv(written[0])
        study.to_json(written[1])

    parts, interrupted = each_with_progress(
        curves, label="study", unit="curve", describe=_label, work=work, quiet=args.quiet,
        keep=keep,
    )  # fmt: skip
    if interrupted:
        print(interrupted_line(len(parts), len(curves), "curves", written[:1]))
        return 130
    study = joined(parts)
    print(study.summary())
    if importlib.util.find_spec("matplotlib") is None:
        print(f"no pictures: matplotlib is not installed ({INSTALL_HINT})")
    else:
        from ..plot import plot_study

        for suffix in ("png", "svg"):
            picture = os.path.join(args.out, f"v_curve.{suffix}")
            plot_study(study, picture)
            written.append(picture)
    print("wrote " + ", ".join(written))
    return 0


def _label(curve) -> str:
    """E.g. "float32 central" or "float64 central 4"."""
    dtype, (method, order) = curve
    return f"{dtype} {method}" + ("" if order is None else f" {order}")


def joined(parts):
    """One study from the studies of single curves."""
    study = parts[0]
    for part in parts[1:]:
        study = study.joined(part)
    return study


def on_vectors(fun, example: Example):
    """`fun` of the --like example's structure as a function of one vector of its values (ravel_pytree order), in
    the vector's own dtype (the study casts the points to each dtype it studies)."""

    def of_vector(v):
        return fun(jax.tree_util.tree_map(lambda leaf: leaf[0], example.unflatten(v[None], v.dtype)))

    return of_vector
