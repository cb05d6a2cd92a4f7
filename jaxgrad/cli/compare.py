"""`jaxgrad compare`: numeric vs autodiff vs NumPy at many points, per function and dtype; exit 1 on a mismatch."""

from __future__ import annotations

import jax

from .. import functions
from .._table import format_table
from ..verify import Verdict, compare
from ._args import (
    NUMPY_HELP,
    HelpFormatter,
    add_dtypes,
    add_function,
    add_method,
    add_quiet,
    add_sampling,
    check_function,
    check_memory,
    finite_float,
    function_dim_domain,
    library_step,
    positive_int,
    sample,
)
from ._output import STDOUT, each_with_progress, interrupted_line, report_stream, write_csv, write_json


def add_parser(commands) -> None:
    p = commands.add_parser(
        "compare",
        help="numeric vs autodiff vs NumPy at many points; exit code 1 on a mismatch",
        description="Check gradients at many random points: jaxgrad's numeric gradient against jax.grad (or --grad) "
        "and the NumPy reference, with tolerances derived from the numerics. Exit code 0 when no point mismatches "
        "(runs whose tolerance cannot resolve most points are marked INCONCLUSIVE), 1 on a mismatch, 2 on bad usage.",
        formatter_class=HelpFormatter,
    )
    add_function(p, repeatable=True)
    p.add_argument("--grad", help="module:attr of the gradient to check (default: jax.grad of the function)")
    add_sampling(p, points=10_000, seed_help="seed of the points, the reference sample and directions")
    add_dtypes(p, help_text="dtypes to check")
    add_method(p, step_default="auto")
    p.add_argument(
        "--directions", type=positive_int, help="check K random directions per point instead of every coordinate"
    )
    p.add_argument(
        "--reference-points", type=positive_int, help="points the NumPy reference runs on (default: up to 100)"
    )
    p.add_argument("--no-reference", action="store_true", help="skip the NumPy reference")
    p.add_argument("--numpy", action="store_true", help=NUMPY_HELP + "; needs --grad")
    p.add_argument("--rtol", type=finite_float, default=0.0, help="added to the derived tolerance, relative (≥ 0)")
    p.add_argument("--atol", type=finite_float, default=0.0, help="added to the derived tolerance, absolute (≥ 0)")
    p.add_argument("--json", help="write every run's summary and per-point rows to this JSON file (- for stdout)")
    p.add_argument("--csv", help="write the per-point rows of every run to this CSV file (- for stdout)")
    add_quiet(p)
    p.set_defaults(run=run)


def _jobs(args):
    """(label, function, dim, domain, dtype) for every function and dtype asked for."""
    jobs = []
    for spec in args.function or functions.names():
        fun, dim, domain = function_dim_domain(spec, args.dim, args.domain)
        check_memory(args.points, dim, 8, "the comparison")  # points, exact, numeric, tolerance, the check's parts
        if not args.numpy:
            check_function(fun, spec, dim)
        jobs.extend((spec, fun, dim, domain, dtype) for dtype in args.dtype)
    return jobs


def _write_reports(reports, json_path, csv_path, *, final: bool = False) -> None:
    """Every finished run: JSON (a list of `Comparison.to_dict()`) and CSV (their per-point rows). Files are
    rewritten after every run; standard output ("-") is written once, at the end."""
    if json_path and (json_path != STDOUT or final):
        write_json(json_path, [r.to_dict() for r in reports], indent=None)
    if csv_path and (csv_path != STDOUT or final):
        write_csv(csv_path, [dict(function=r.function, dtype=r.dtype, **row) for r in reports for row in r.rows()])


def _row(rep) -> list:
    main_pair, *ref_pairs = rep.pairs
    ref = ref_pairs[0] if ref_pairs else None
    return [
        rep.function, rep.dim, rep.dtype, f"{rep.num_points:,}", f"{main_pair.max_ratio:.3g}",
        f"{main_pair.median_rel_error:.2e}", f"{100 * main_pair.pass_rate:.2f}%", f"{rep.unresolved:,}",
        f"{ref.points}" if ref else "-", f"{ref.median_rel_error:.2e}" if ref else "-",
        f"{100 * ref.pass_rate:.0f}%" if ref else "-",
        " ".join(f"{t:.2f}" for t in rep.times.values()), rep.verdict.value,
    ]  # fmt: skip


def run(args) -> int:
    if args.numpy and not args.grad:
        raise ValueError("--numpy needs --grad module:attr: jax.grad cannot differentiate NumPy code.")
    if args.json == args.csv == STDOUT:
        raise ValueError("--json - and --csv - would both write to standard output; send one of them to a file.")
    out = report_stream(args.json, args.csv)
    grad_fn = functions.resolve(args.grad, flag="--grad") if args.grad else None
    jobs = _jobs(args)

    def work(job):
        label, fun, dim, domain, dtype = job
        return compare(fun, sample(dim, domain, args.points, args.seed, dtype), grad_fn=grad_fn,
                       reference=not args.no_reference, reference_points=args.reference_points,
                       method=args.method, order=args.order, step=library_step(args.step, "auto"),
                       directions=args.directions,
                       rtol=args.rtol, atol=args.atol, seed=args.seed, name=label,
                       traceable=not args.numpy)  # fmt: skip

    reports, interrupted = each_with_progress(
        jobs, label="compare", unit="run", describe=lambda job: f"{job[0]} d={job[2]} {job[4]}", work=work,
        quiet=args.quiet, keep=lambda done: _write_reports(done, args.json, args.csv),
    )  # fmt: skip
    device = jax.devices()[0]
    exact = reports[0].exact_name if reports else "jax.grad"
    headers = ["function", "d", "dtype", "points", "max err/tol", "median rel err", "pass", "unresolved",
               "ref pts", "ref rel err", "ref pass", f"times s ({exact}, jaxgrad, ref; incl. compile)",
               "verdict"]  # fmt: skip
    versus = "" if args.no_reference else " vs NumPy reference"
    method = args.method if args.order is None else f"{args.method} order {args.order}"
    title = f"jaxgrad compare: jaxgrad ({method}, h and 2h) vs {exact}{versus}, on {device.platform} ({device})"
    _write_reports(reports, args.json, args.csv, final=True)
    print(format_table(headers, [_row(rep) for rep in reports], title=title), file=out)
    failures = [rep for rep in reports if not rep.ok]
    for rep in failures:
        failed = int(rep.mismatched.sum())
        print(
            f"{rep.function} {rep.dtype}: {failed} points fail; worst: {rep.worst.describe(rep.exact_name)}", file=out
        )
    for rep in reports:
        if rep.verdict is Verdict.INCONCLUSIVE:
            print(
                f"{rep.function} {rep.dtype}: inconclusive, {rep.unresolved:,} of {rep.num_points:,} points cannot be "
                "resolved at the default step (the tolerance is as large as the gradient there)",
                file=out,
            )
    if interrupted:
        print(interrupted_line(len(reports), len(jobs), "runs", (args.json, args.csv)), file=out)
        return 130
    counts = {v: sum(rep.verdict is v for rep in reports) for v in Verdict}
    print(
        f"{counts[Verdict.OK]} of {len(reports)} runs OK, {counts[Verdict.INCONCLUSIVE]} inconclusive, "
        f"{counts[Verdict.MISMATCH]} mismatched" + (" (exit code 1)" if failures else ""),
        file=out,
    )
    return 1 if failures else 0
