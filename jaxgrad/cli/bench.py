"""`jaxgrad bench`: batch_grad against the floor, jax.grad, the NumPy reference and scipy, as a table."""

from __future__ import annotations

from .. import bench, functions
from ._args import DTYPES, HelpFormatter, positive_int
from ._output import each_with_progress, interrupted_line, write_json


def add_parser(commands) -> None:
    p = commands.add_parser(
        "bench",
        help="time batch_grad against the floor, jax.grad, the NumPy reference and scipy",
        description="A matrix of functions (sphere, rosenbrock, mlp), dimensions, batch sizes, dtypes and methods; "
        "--quick runs a small one, --large one memory-bounded run of 1e6 x 100 (measure its memory from outside: "
        "/usr/bin/time -v jaxgrad bench --large).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="the small matrix (a minute or two on a laptop CPU)")
    p.add_argument("--large", action="store_true", help="one run of --points x --dim (default 1e6 x 100, float32)")
    p.add_argument("--function", action="append", help="sphere, rosenbrock, mlp or any built-in (repeatable)")
    p.add_argument("--dim", type=positive_int, nargs="+", help="dimensions (default: the matrix's)")
    p.add_argument("--points", type=positive_int, nargs="+", help="batch sizes N (default: the matrix's)")
    p.add_argument("--dtype", choices=DTYPES, nargs="+", help="dtypes (default: both)")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed runs per figure (the median is shown)")
    p.add_argument("--reference-points", type=positive_int, default=200, help="points the NumPy loop runs on")
    p.add_argument("--seed", type=int, default=0, help="seed of the points")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.large:
        print(bench.large(args.points[0] if args.points else 1_000_000, args.dim[0] if args.dim else 100,
                          (args.function or ["rosenbrock"])[0], (args.dtype or ["float32"])[0]))  # fmt: skip
        return 0
    for name in args.function or []:  # before any progress output
        if name != "mlp":
            functions.get(name)
    matrix = bench.QUICK if args.quick else bench.FULL
    jobs = list(bench.configurations(matrix, args.function, args.dim, args.points, args.dtype))
    cache = {}

    def work(job):
        name, dim, n, dtype, method, order = job
        return bench.bench_one(name, dim, n, dtype, method, order, repeats=args.repeats,
                               reference_points=args.reference_points, seed=args.seed, cache=cache)  # fmt: skip

    def keep(rows):
        if args.json:
            write_json(args.json, [row.to_dict() for row in rows])

    rows, interrupted = each_with_progress(
        jobs, label="bench", unit="row", describe=lambda j: f"{j[0]} d={j[1]} N={j[2]:,} {j[3]} {j[4]} {j[5]}",
        work=work, quiet=args.quiet, keep=keep,
    )  # fmt: skip
    if rows:
        print(bench.format_rows(rows))
    if interrupted:
        print(interrupted_line(len(rows), len(jobs), "rows", (args.json,)))
        return 130
    return 0
