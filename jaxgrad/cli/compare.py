"""`jaxgrad compare`: numeric vs autodiff vs NumPy at many points, per function and dtype; exit 1 on a mismatch."""

from __future__ import annotations

import concurrent.futures
import re

import jax

from .. import functions
from .._files import CsvText, JsonList
from .._steps import own_step
from .._table import format_table
from ..verify import INCONCLUSIVE_SHARE, Comparison, Verdict, compare
from ..verify._compare import Member
from ..verify._render import inconclusive_reason
from ._args import (
    NUMPY_HELP,
    HelpFormatter,
    add_dtypes,
    add_function,
    add_like,
    add_method,
    add_quiet,
    add_sampling,
    check_function,
    check_memory,
    finite_float,
    function_dim_domain,
    library_step,
    positive_int,
    resolve_function,
    sample,
)
from ._output import (
    RECORD_SUFFIX,
    STDOUT,
    RunRecord,
    check_outputs,
    each_with_progress,
    interrupted_line,
    interrupts_deferred,
    module_files,
    record_path,
    report_stream,
    write_csv,
    write_json,
)

UNRESOLVED_LEGEND = (
    "unresolved: points where the tolerance is as large as the gradient itself (f is too noisy or too wiggly at the "
    "step to pin it down), so an error there could not be seen; they count as passed, and a run with more than "
    f"{INCONCLUSIVE_SHARE:.0%} of its points unresolved (or not smooth) is INCONCLUSIVE"
)
"""The line under the table that says what the "unresolved" column counts."""


def add_parser(commands) -> None:
    p = commands.add_parser(
        "compare",
        help="numeric vs autodiff vs NumPy at many points; exit code 1 on a mismatch",
        description="Check gradients at many random points: jaxgrad's numeric gradient against jax.grad (or --grad) "
        "and the NumPy reference, with tolerances derived from the numerics. Exit code 0 when no point mismatches "
        f"(a run whose tolerance cannot resolve more than {INCONCLUSIVE_SHARE:.0%} of its points is INCONCLUSIVE), "
        "1 on a mismatch, 2 on bad usage.",
        formatter_class=HelpFormatter,
    )
    add_function(p, repeatable=True)
    p.add_argument("--grad", help="module:attr of the gradient to check (default: jax.grad of the function)")
    add_sampling(p, points=10_000, seed_help="seed of the points, the reference sample and directions")
    add_like(p, sampled=True)
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
    p.add_argument(
        "--csv",
        help="write the per-point rows of every run to this CSV file (- for stdout). Both files are written once, at "
        "the end (after Ctrl-C too, with the runs that finished); meanwhile each finished run is appended as one "
        f"JSON line to R{RECORD_SUFFIX} beside the first of them (for R.json or R.csv; R.runs-2.jsonl if that "
        "exists), which outlives a crash or a kill and is deleted once the files are written",
    )
    add_quiet(p)
    p.set_defaults(run=run)


def _jobs(args):
    """(label, function, dim, domain, dtype) for every function and dtype asked for."""
    jobs = []
    for spec in args.function or functions.names():
        fun, dim, domain = function_dim_domain(spec, args.dim, args.domain, like=args.like)
        check_memory(args.points, dim, 8, "the comparison")  # points, exact, numeric, tolerance, the check's parts
        if not args.numpy:
            check_function(fun, spec, dim, region=domain)
        jobs.extend((spec, fun, dim, domain, dtype) for dtype in args.dtype)
    return jobs


def _shared(jobs):
    """The jobs with each built-in function made a `Member` of the built-ins of its d (two or more), so the runs of
    one d and dtype share one checking program (`jaxgrad compare` on its defaults: 4 compiles, not 16)."""
    families = {}  # d -> its built-ins, in order, once each
    for _, fun, dim, _, _ in jobs:
        if isinstance(fun, functions.BuiltinFunction):
            families.setdefault(dim, {})[fun] = None
    families = {dim: tuple(funs) for dim, funs in families.items() if len(funs) > 1}

    def shared(fun, dim):
        family = families.get(dim, ())
        return Member(family, family.index(fun)) if fun in family else fun

    return [(label, shared(fun, dim), dim, domain, dtype) for label, fun, dim, domain, dtype in jobs]


def _write_files(record, csv_bodies, json_path, csv_path) -> None:
    """The finished runs into the --json file (a list of `Comparison.to_dict()`, streamed from the record) and the
    --csv file (their per-point rows), each written once; then the record, now redundant, is removed."""
    if json_path:
        write_json(json_path, JsonList(record.lines()), indent=None)
    if csv_path:
        write_csv(csv_path, CsvText(Comparison.CSV_HEADER, csv_bodies))
    record.remove()


def _time_names(reports) -> str:
    """What the numbers of the times column are: "jax.grad + jaxgrad, numpy ref" (the first run's)."""
    names = reports[0].times if reports else ["jax.grad + jaxgrad", "numpy ref"]
    return ", ".join(re.sub(r" \(.*\)$", "", name) for name in names)


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
    if args.directions is not None and own_step(library_step(args.step, "auto")):
        raise ValueError(
            f"--step {args.step} applies to every coordinate, not to --directions (a direction's step is "
            "t = eps^(1/(p+1))·max(|x|, 1)): drop --step, or --directions to check every coordinate."
        )
    if args.json == args.csv == STDOUT:
        raise ValueError("--json - and --csv - would both write to standard output; send one of them to a file.")
    out = report_stream(args.json, args.csv)
    grad_fn = resolve_function(args.grad, flag="--grad") if args.grad else None
    jobs = _jobs(args)
    if grad_fn is None and not args.numpy:  # --grad is one function's gradient
        jobs = _shared(jobs)

    def work(job):
        label, fun, dim, domain, dtype = job
        points = jax.device_put(sample(dim, domain, args.points, args.seed, dtype))  # no conversion program
        return compare(fun, points, grad_fn=grad_fn,
                       reference=not args.no_reference, reference_points=args.reference_points,
                       method=args.method, order=args.order, step=library_step(args.step, "auto"),
                       directions=args.directions,
                       rtol=args.rtol, atol=args.atol, seed=args.seed, name=label,
                       traceable=not args.numpy)  # fmt: skip

    outputs, inputs = {"--json": args.json, "--csv": args.csv}, module_files(args.function, args.grad, args.like)
    planned = record_path(args.json, args.csv)
    check_outputs(outputs, inputs, own={"the record of finished runs": planned})
    record, csv_bodies = RunRecord(planned), []
    if record.path != planned:  # R.runs.jsonl was taken: the record went beside it
        try:
            check_outputs(outputs, inputs, own={"the record of finished runs": record.path})
        except ValueError:
            record.remove()
            raise
    # each finished run is encoded and recorded in a thread of its own while the next run compiles and runs; it is
    # in the record before the run after that starts
    recorder, pending = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="jaxgrad-record"), []

    def record_run(rep):
        text = rep.serialize()
        record.append(text.json)
        csv_bodies.append(text.csv_body)

    def keep(done):  # the files are written once, at the end
        if args.json or args.csv:
            if pending:
                pending[-1].result()
            pending.append(recorder.submit(record_run, done[-1]))

    def write_files():  # no run finished (Ctrl-C during the first): nothing is written, old files stay as they were
        with interrupts_deferred():
            recorder.shutdown(wait=True)
            for future in pending:
                future.result()
            if pending:
                _write_files(record, csv_bodies, args.json, args.csv)
            else:
                record.remove()

    try:
        reports, interrupted = each_with_progress(
            jobs, label="compare", unit="run", describe=lambda job: f"{job[0]} d={job[2]} {job[4]}", work=work,
            quiet=args.quiet, keep=keep,
        )  # fmt: skip
    except BaseException:  # an error in a run: the runs before it still reach the files (none: files untouched)
        if pending:
            write_files()
        else:
            record.remove()
        raise
    write_files()
    device = jax.devices()[0]
    exact = reports[0].exact_name if reports else "jax.grad"
    headers = ["function", "d", "dtype", "points", "max err/tol", "median rel err", "pass", "unresolved",
               "ref pts", "ref rel err", "ref pass", f"times s ({_time_names(reports)}; incl. compile)",
               "verdict"]  # fmt: skip
    versus = "" if args.no_reference else " vs NumPy reference"
    method = args.method if args.order is None else f"{args.method} order {args.order}"
    title = f"jaxgrad compare: jaxgrad ({method}, h and 2h) vs {exact}{versus}, on {device.platform} ({device})"
    print(format_table(headers, [_row(rep) for rep in reports], title=title), file=out)
    print(UNRESOLVED_LEGEND, file=out)
    failures = [rep for rep in reports if not rep.ok]
    for rep in failures:
        failed = int(rep.mismatched.sum())
        print(
            f"{rep.function} {rep.dtype}: {failed} points fail; worst: {rep.worst.describe(rep.exact_name)}", file=out
        )
    for rep in reports:
        if rep.verdict is Verdict.INCONCLUSIVE:
            at = f" at --step {args.step or 'auto (the default)'}"
            widened = " and ".join(f"{flag} {value:g}" for flag, value in (("--rtol", args.rtol), ("--atol", args.atol))
                                   if value)  # fmt: skip
            reason = inconclusive_reason(rep, at, cli=True, widened=widened)
            print(f"{rep.function} {rep.dtype}: inconclusive, {reason}", file=out)
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
