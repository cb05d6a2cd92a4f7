"""`jaxgrad bench`: batch_grad against the hand-written baseline, the floor, jax.grad, the NumPy reference and scipy,
as a table; `--compare`: the side-by-side A/B/D matrix."""

from __future__ import annotations

import argparse

import jax

from .. import bench, functions
from ._args import DTYPES, HelpFormatter, positive_int
from ._output import check_outputs, each_with_progress, interrupted_line, write_json


def add_parser(commands) -> None:
    p = commands.add_parser(
        "bench",
        help="time batch_grad against hand-written differences, the floor, jax.grad, the NumPy reference and scipy",
        description="A matrix of functions (sphere, rosenbrock, mlp), dimensions, batch sizes, dtypes and methods; "
        "--quick runs a small one, --large one memory-bounded run of 1e6 x 100 (measure its memory from outside: "
        "/usr/bin/time -v jaxgrad bench --large). --compare prints the side-by-side matrix of A = batch_grad, "
        "B = the central differences a user writes by hand with the same step, and D = fun alone on the stencil "
        "points in memory (30 configurations; --quick: 12). float64 runs with jax_enable_x64 turned on for the "
        "command (float32 input stays float32).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help=f"the small matrix: {QUICK_PROMISE}")
    p.add_argument("--compare", action="store_true", help=f"the A/B/D matrix: {COMPARE_PROMISE}")
    p.add_argument("--large", action="store_true", help="one run of --points x --dim (default 1e6 x 100, float32)")
    p.add_argument("--function", action="append", help="sphere, rosenbrock, mlp or any built-in (repeatable)")
    p.add_argument("--dim", type=positive_int, nargs="+", help="dimensions (default: the matrix's)")
    p.add_argument("--points", type=positive_int, nargs="+", help="batch sizes N (default: the matrix's)")
    p.add_argument("--dtype", choices=DTYPES, nargs="+", help="dtypes (default: both)")
    p.add_argument(
        "--repeats",
        type=positive_int,
        help="timed runs (--compare: rounds) per figure, the median shown "
        "(default: 5, 3 with --quick; --compare 9, 5 with --quick)",
    )
    p.add_argument(
        "--peak-bandwidth",
        type=positive_float,
        metavar="GB/S",
        help="the device's peak memory bandwidth "
        "for --compare's %% peak columns (default: from a table of NVIDIA GPUs; none for a CPU)",
    )
    p.add_argument(
        "--round-seconds",
        type=positive_float,
        default=bench.COMPARE_BUDGET_S,
        metavar="S",
        help="--compare starts no new round of a configuration after this many seconds, once 3 are done",
    )
    p.add_argument(
        "--max-stencil-gb",
        type=positive_float,
        default=bench.COMPARE_MAX_GB,
        metavar="GB",
        help="--compare leaves out configurations whose stencil points and values exceed this",
    )
    p.add_argument("--reference-points", type=positive_int, default=200, help="points the NumPy loop runs on")
    p.add_argument("--seed", type=int, default=0, help="seed of the points")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=run)


QUICK_PROMISE = "18 rows, under 2 minutes on 2 CPU cores (half a minute when they are idle)"
COMPARE_PROMISE = "30 configurations, about 4 minutes on 2 shared CPU cores; with --quick 12, half a minute"
"""What the help promises, as measured with `time jaxgrad bench --quick` (26 s at a load average of 3 on 2 cores,
50 s at 7, 1 m 19 s at 10) and `time jaxgrad bench --compare [--quick]` (3 m 50 s to 4 m 8 s at a load of 7-10;
15 s at 5, 29-33 s at 12)."""


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _check_functions(args) -> None:
    """Unknown --function names fail before any progress output (mlp is the benchmark's own)."""
    for name in args.function or []:
        if name != "mlp":
            functions.get(name)


def run(args) -> int:
    if args.compare and args.large:
        raise ValueError("--compare and --large are two different benchmarks; pass one of them.")
    check_outputs({"--json": args.json})
    if args.compare:
        return run_compare(args)
    if args.large:
        print(bench.large(args.points[0] if args.points else 1_000_000, args.dim[0] if args.dim else 100,
                          (args.function or ["rosenbrock"])[0], (args.dtype or ["float32"])[0]))  # fmt: skip
        return 0
    _check_functions(args)
    matrix = bench.QUICK if args.quick else bench.FULL
    jobs = list(bench.configurations(matrix, args.function, args.dim, args.points, args.dtype))
    cache = {}
    repeats = args.repeats or (3 if args.quick else 5)

    def work(job):
        name, dim, n, dtype, method, order = job
        return bench.bench_one(name, dim, n, dtype, method, order, repeats=repeats,
                               reference_points=args.reference_points, seed=args.seed, cache=cache)  # fmt: skip

    return _rows_then_table(args, jobs, work, bench.format_rows, "bench")


def run_compare(args) -> int:
    """`jaxgrad bench --compare`: the A/B/D matrix, one row per configuration, with its summary line."""
    _check_functions(args)
    matrix = bench.COMPARE_QUICK if args.quick else bench.COMPARE
    jobs = list(bench.compare_configurations(matrix, args.function, args.dim, args.points, args.dtype,
                                             args.max_stencil_gb))  # fmt: skip
    if not jobs:
        raise ValueError(f"every configuration's stencil exceeds --max-stencil-gb {args.max_stencil_gb:g}; "
                         "raise it or pass smaller --dim/--points.")  # fmt: skip
    rounds = args.repeats or (5 if args.quick else 9)
    peak = args.peak_bandwidth or bench.peak_bandwidth(jax.devices()[0].device_kind)
    jax.block_until_ready(jax.jit(lambda x: x + 1)(1.0))  # the backend's start-up is no compile time of row 1

    def work(job):
        return bench.compare_one(*job, rounds=rounds, seed=args.seed, peak_gbs=peak, budget_s=args.round_seconds)

    return _rows_then_table(args, jobs, work, bench.format_compare, "bench --compare")


def _rows_then_table(args, jobs, work, table, label: str) -> int:
    """`work(job)` for every job with a progress bar, the rows kept in --json after each, then the table; after
    Ctrl-C, the finished rows and exit 130."""

    def keep(rows):
        if args.json:
            write_json(args.json, [row.to_dict() for row in rows])

    rows, interrupted = each_with_progress(
        jobs, label=label, unit="row", describe=lambda job: f"{job[0]} d={job[1]} N={job[2]:,} "
        + " ".join(map(str, job[3:])),
        work=work, quiet=args.quiet, keep=keep,
    )  # fmt: skip
    if rows:
        print(table(rows))
    if interrupted:
        print(interrupted_line(len(rows), len(jobs), "rows", (args.json,)))
        return 130
    return 0
