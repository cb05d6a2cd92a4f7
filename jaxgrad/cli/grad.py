"""`jaxgrad grad`: the numerical gradient of a function at one point (--point), at an example input (--like, a pytree
such as a dict of parameters), or at every row of a file (--points-file pts.npy|pts.csv --out grads.npy|grads.csv).

Files are read and written chunk by chunk (one `batch_grad` call per chunk, the last one padded so every chunk runs
the same compiled program), with a progress bar on stderr; Ctrl-C keeps the finished rows. Layouts: grads.npy has
the points' shape (N, ...); grads.csv has a header (grad[i], ...) and a row per point. With --with-error, .npy
writes grads.error.npy (like grads.npy) and grads.status.npy ((N,) int8 `jg.Status` codes); .csv adds the columns
error[i], ... and status (the name, e.g. OK). With --like, each file row holds the example's values in
`jax.flatten_util.ravel_pytree` order (leaves in `jax.tree_util` order, each row-major), and so does each output row.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from .. import _files, functions
from .._estimate import Status
from .._grad import batch_grad, grad
from ..verify import coordinate_names
from ._args import (
    NUMPY_HELP,
    Example,
    HelpFormatter,
    add_dtypes,
    add_function,
    add_like,
    add_method,
    check_function,
    function_dim_domain,
    library_step,
    parse_point,
    positive_int,
    resolve_function,
)
from ._output import check_outputs, interrupts_deferred, promptly


def add_parser(commands) -> None:
    p = commands.add_parser(
        "grad",
        help="the numerical gradient of a function at one point",
        description="Print the numerical gradient of a function at a point, by a finite-difference stencil (central "
        "order 2 unless --method/--order say otherwise) with a step chosen from the dtype. The function is a "
        "built-in (see `jaxgrad functions`) or your own as module:function, e.g. --function mymod:loss for "
        "loss(x) in ./mymod.py. Example: `jaxgrad grad --function sphere --point 3,4` prints the gradient (6, 8). "
        "For many points, --points-file pts.npy|pts.csv --out grads.npy|grads.csv writes one gradient per point.",
        formatter_class=HelpFormatter,
    )
    add_function(p, default="sphere", what="a built-in name (see `jaxgrad functions`) or module:attr")
    p.add_argument("--point", type=parse_point, help="coordinates separated by commas, e.g. 3,4 or -3,4")
    add_like(p, sampled=False)
    p.add_argument("--points-file", metavar="FILE",
                   help="many points: a .npy array (N, ...) or a .csv of N rows (a header line is skipped); with "
                        "--like each row holds the example's values in ravel_pytree order; needs --out")  # fmt: skip
    p.add_argument("--out", metavar="FILE",
                   help="where the gradients of --points-file go, .npy (same shape as the points) or .csv (a header, "
                        "then one row per point), written chunk by chunk; Ctrl-C keeps the finished rows")  # fmt: skip
    p.add_argument("--with-error", action="store_true",
                   help="also the estimated error of every coordinate and a status per point (OK, NONFINITE, "
                        "NOT_SMOOTH, IMPRECISE, NOT_ANALYTIC): CSV columns error[i]... and status; for .npy, "
                        "OUT.error.npy (like OUT) and OUT.status.npy (N,) int8 jg.Status codes")  # fmt: skip
    p.add_argument(
        "--chunk-size",
        type=positive_int,
        help="points per chunk (one batch_grad call, written as it finishes; default: about 2^20 values)",
    )
    add_dtypes(
        p,
        several=False,
        default=None,
        help_text="the dtype of the points (default: the --like example's, the .npy file's own, else float64)",
    )
    add_method(p)
    p.add_argument("--numpy", action="store_true", help=NUMPY_HELP)
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--quiet", action="store_true", help="no progress bar")
    shown.add_argument("--progress", action="store_true",
                       help="a progress bar on stderr even off a terminal (default: on a terminal only)")  # fmt: skip
    p.set_defaults(run=run)


def run(args) -> int:
    if args.points_file or args.out:
        return _run_file(args)
    if args.point is None and args.like is None:
        raise ValueError("pass --point X,Y,... (one point), --like module:attr (the gradient at that example) or "
                         "--points-file FILE --out FILE (many points)")  # fmt: skip
    fun, x, example = _one_point(args)
    step = library_step(args.step)
    result = grad(fun, method=args.method, order=args.order, step=step, traceable=not args.numpy,
                  with_error=args.with_error)(x)  # fmt: skip
    value, error, status = result if args.with_error else (result, None, None)
    if example is None:
        print(np.asarray(value))
        if args.with_error:
            print("error:", np.asarray(error))
    else:
        _print_tree(value, "gradient" if args.with_error else None)
        if args.with_error:
            _print_tree(error, "error")
    if args.with_error:
        print("status:", Status(int(status)).name)
    return 0


def _one_point(args):
    """(fun, the point, the --like Example or None) for --point and/or --like."""
    if args.like is None:
        fun = resolve_function(args.function)
        point = jnp.asarray(args.point, dtype=args.dtype or "float64")
        if isinstance(fun, functions.BuiltinFunction):
            fun.check_dim(point.shape[0])
        elif not args.numpy:
            check_function(fun, args.function, point.shape[0], option="--point")
        return fun, point, None
    fun, size, example = function_dim_domain(args.function, None, None, like=args.like)
    if args.point is None:
        point = example.cast(args.dtype)
    elif len(args.point) != size:
        raise ValueError(f"--point has {len(args.point)} numbers and --like {example.spec} holds {size:,} values "
                         f"({example.describe()}); give {size:,}, in ravel_pytree order, or drop --point for the "
                         "gradient at the example itself")  # fmt: skip
    else:
        point = jax.tree_util.tree_map(lambda leaf: leaf[0], example.unflatten(np.array([args.point]), args.dtype))
    if not args.numpy and not isinstance(fun, functions.BuiltinFunction):
        check_function(fun, args.function, size, region=example)
    return fun, point, example


def _print_tree(tree, title=None) -> None:
    """Each leaf as "x['W1'] (4, 8):" and its values."""
    if title:
        print(f"{title}:")
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        print(f"x{jax.tree_util.keystr(path)} {np.shape(leaf)}:")
        print(np.asarray(leaf))


# ------------------------------------------------------------------------------------------------- files
SUFFIXES = (".npy", ".csv")
DEFAULT_CHUNK_VALUES = 2**20
"""Points per chunk by default: about this many values (8 MiB of float64 gradients) per batch_grad call."""


def _suffix(path: str, option: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{option} {path}: the file name must end in .npy or .csv")
    return suffix


def read_points(path: str) -> np.ndarray:
    """The points of --points-file: a .npy array (N, ...) (memory-mapped, read chunk by chunk) or a .csv of N rows
    of numbers separated by commas (a first line that is not numbers is a header, skipped).

    Example:
      >>> import os, tempfile
      >>> path = os.path.join(tempfile.mkdtemp(), "pts.csv")
      >>> _ = open(path, "w").write("x,y\\n3,4\\n0,2\\n")
      >>> read_points(path)
      array([[3., 4.],
             [0., 2.]])
    """
    if _suffix(path, "--points-file") == ".npy":
        try:
            points = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"--points-file {path} is not a NumPy array file: {error}") from error
        if not (np.issubdtype(points.dtype, np.floating) or np.issubdtype(points.dtype, np.integer)):
            raise ValueError(f"--points-file {path} holds {points.dtype} values; it must hold numbers")
    else:
        with open(path) as stream:
            first = stream.readline()
        # a header holds no number ("x,y"); a first row with a typo ("1,2,3a") or other separators ("1 2") is a row,
        # and its error says so
        fields = first.split("#", 1)[0]
        header = int(
            bool(fields.strip()) and not any(map(_is_number, fields.split(","))) and not _other_separators(fields)
        )
        try:
            with warnings.catch_warnings():  # no rows: said below, in our words, not as numpy's warning
                warnings.filterwarnings("ignore", "loadtxt: input contained no data", UserWarning)
                points = np.loadtxt(path, delimiter=",", skiprows=header, ndmin=2, dtype=np.float64)
        except ValueError as error:
            problem = _csv_problem(path, header) or f"{error}; {SAME_COUNT}"
            raise ValueError(f"--points-file {path}: {problem}") from error
        if points.size == 0:
            raise ValueError(
                f"--points-file {path} holds no rows of numbers{' after its header' if header else ''}: "
                "it must hold N ≥ 1 points, one per row, their coordinates separated by commas"
            )
    if points.ndim < 2 or points.shape[0] == 0:
        raise ValueError(f"--points-file {path} holds an array of shape {points.shape}: it must hold N ≥ 1 points, "
                         "one per row (N, d); for one point use --point")  # fmt: skip
    return points


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _other_separators(text: str) -> bool:
    """Whether `text` is numbers separated by spaces, tabs or semicolons instead of commas."""
    parts = text.replace(";", " ").split()
    return len(parts) > 1 and all(map(_is_number, parts))


SAME_COUNT = "every row must hold the same count of numbers separated by commas"
"""The advice of a --points-file CSV whose rows are ragged (or that numpy cannot read for a reason of its own)."""


def _csv_problem(path: str, header: int) -> str | None:
    """The first line of a CSV of points that np.loadtxt cannot read, in the file's own line numbers (numpy counts
    data rows from 0, after the header): "line 3 holds 'abc', not a number", "line 4 holds 3 values, line 2 holds 2".
    None when no line is at fault (numpy's message is then passed on)."""
    width = None
    with open(path) as stream:
        for number, line in enumerate(stream, start=1):
            values = line.split("#", 1)[0].strip()
            if number <= header or not values:  # the header, blank lines and comments: np.loadtxt skips them too
                continue
            values = values.split(",")
            for value in values:
                if not _is_number(value):
                    shown = repr(value.strip()) if value.strip() else "an empty value"
                    hint = ": separate the values by commas" if _other_separators(value) else ""
                    return f"line {number} holds {shown}, not a number{hint}"
            if width is None:
                width = number, len(values)
            elif len(values) != width[1]:
                counts = [f"{count} value{'s' if count != 1 else ''}" for count in (len(values), width[1])]
                return f"line {number} holds {counts[0]}, line {width[0]} holds {counts[1]}; {SAME_COUNT}"
    return None


def _run_file(args) -> int:
    if not (args.points_file and args.out):
        raise ValueError("--points-file and --out go together: the gradients of the points in one file are written "
                         "to the other")  # fmt: skip
    if args.point is not None:
        raise ValueError("pass --point (one point) or --points-file (many points), not both")
    out_kind = _suffix(args.out, "--out")
    outputs = [args.out]
    if args.with_error and out_kind == ".npy":
        stem = args.out[: -len(".npy")]
        outputs += [f"{stem}.error.npy", f"{stem}.status.npy"]
    check_outputs(dict(zip(["--out", "--out (its errors file)", "--out (its statuses file)"], outputs, strict=False)),
                  inputs={"--points-file": args.points_file})  # fmt: skip
    points = read_points(args.points_file)
    n = points.shape[0]
    example = None
    if args.like is not None:
        fun, size, example = function_dim_domain(args.function, None, None, like=args.like)
        if math.prod(points.shape[1:]) != size:
            raise ValueError(f"--points-file {args.points_file} has rows of {math.prod(points.shape[1:]):,} values "
                             f"and --like {example.spec} holds {size:,} ({example.describe()}): each row must hold "
                             "the example's values, in ravel_pytree order")  # fmt: skip
        points = points.reshape(n, size)
        dtypes = [args.dtype or leaf.dtype for leaf in example.leaves]
        out_dtype, row_shape = np.result_type(*dtypes), (size,)
    else:
        fun = resolve_function(args.function)
        row_shape = points.shape[1:]
        if isinstance(fun, functions.BuiltinFunction):
            if len(row_shape) != 1:
                raise ValueError(f"--function {args.function} takes rows of d coordinates; --points-file "
                                 f"{args.points_file} holds points of shape {row_shape}")  # fmt: skip
            fun.check_dim(row_shape[0])
        elif len(row_shape) == 1 and not args.numpy:
            check_function(fun, args.function, row_shape[0], option="--points-file with rows of that many values")
        own = points.dtype if np.issubdtype(points.dtype, np.floating) else np.float64
        out_dtype = np.dtype(args.dtype or own)
    size = math.prod(row_shape)
    chunk = min(n, args.chunk_size or max(1, DEFAULT_CHUNK_VALUES // max(size, 1)))

    def compute(start: int):
        """The gradients (and errors, statuses) of rows start .. start + chunk, as NumPy rows."""
        stop = min(start + chunk, n)
        rows = np.asarray(points[start:stop])
        if stop - start < chunk:  # the last chunk, padded with its last row: one compiled program for every chunk
            rows = np.concatenate([rows, np.repeat(rows[-1:], chunk - (stop - start), axis=0)])
        batch = example.unflatten(rows, args.dtype) if example else rows.astype(out_dtype)
        result = batch_grad(fun, batch, method=args.method, order=args.order, step=library_step(args.step),
                            with_error=args.with_error, traceable=not args.numpy)  # fmt: skip
        value, error, status = result if args.with_error else (result, None, None)

        def flat(tree):
            array = Example.flatten(tree) if example else np.asarray(tree)
            return array[: stop - start]

        if not args.with_error:
            return flat(value), None, None
        return flat(value), flat(error), np.asarray(status)[: stop - start]

    disable = True if args.quiet else (False if args.progress else None)
    started = time.perf_counter()
    done, interrupted, counts, nonfinite = _replacing(outputs, lambda paths: _stream(
        paths, out_kind, compute, n, chunk, row_shape, out_dtype, args.with_error, disable))  # fmt: skip
    elapsed = time.perf_counter() - started
    if interrupted:
        print(f"interrupted: {done:,} of {n:,} rows written to {' and '.join(outputs)} (the finished chunks)")
        return 130
    what = f"{n:,} gradient{'s' if n != 1 else ''} ({out_dtype}, {size:,} values each) to {args.out}"
    if args.with_error:
        what += (f", their errors to {outputs[1]} and statuses to {outputs[2]}" if out_kind == ".npy" else
                 " with their errors and statuses")  # fmt: skip
        what += "; " + ", ".join(f"{count:,} {Status(code).name}" for code, count in enumerate(counts) if count)
    bad = ""
    if nonfinite:  # said whether or not --with-error counts NONFINITE: a NaN row is not a gradient
        rows = ", ".join(map(str, nonfinite[:10])) + (", ..." if len(nonfinite) > 10 else "")
        bad = f"; {len(nonfinite):,} not finite (NaN or inf): rows {rows}, counted from 0"
    print(f"wrote {what} in {elapsed:.1f} s{bad}")
    return 0


def _replacing(paths, write):
    """`write(temporary_paths)`, each temporary file then renamed over its path (`_files.replace_file`, nested)."""
    if not paths:
        return write([])
    box = {}

    def outer(temporary):
        box["result"] = _replacing(paths[1:], lambda rest: write([temporary, *rest]))

    _files.replace_file(paths[0], outer)
    return box["result"]


def _stream(paths, kind, compute, n, chunk, row_shape, dtype, with_error, disable):
    """`compute` every chunk (in a worker thread, so Ctrl-C stops at once) and write it into `paths` as it
    finishes; Ctrl-C ends the loop with the finished rows kept. Returns (rows written, interrupted, status counts,
    the rows whose gradient is not finite)."""
    from tqdm import tqdm

    sink = (_NpySink if kind == ".npy" else _CsvSink)(paths, n, row_shape, dtype, with_error)
    counts = np.zeros(len(Status), np.int64)
    done, interrupted, nonfinite = 0, False, []
    bar = tqdm(total=n, desc="grad", unit="pt", unit_scale=True, disable=disable, file=sys.stderr, leave=False)
    try:
        for start in range(0, n, chunk):
            value, error, status = promptly(compute, start)
            with interrupts_deferred():
                sink.write(start, value, error, status)
                done = start + len(value)
                if with_error:
                    counts += np.bincount(status.astype(np.int64), minlength=len(Status))[: len(Status)]
                finite = np.isfinite(value.reshape(len(value), -1)).all(axis=1)
                nonfinite.extend((start + np.flatnonzero(~finite)).tolist())
                bar.update(len(value))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
        sink.close(done)
    return done, interrupted, counts, nonfinite


class _NpySink:
    """OUT.npy (N, *row_shape), with --with-error OUT.error.npy like it and OUT.status.npy (N,) int8, written
    through memory maps; closed early, each keeps its finished rows only (its header rewritten, the file cut)."""

    def __init__(self, paths, n, row_shape, dtype, with_error):
        shapes = [(n, *row_shape), (n, *row_shape), (n,)][: len(paths)]
        dtypes = [dtype, dtype, np.int8]
        self.paths, self.n = paths, n
        self.arrays = [np.lib.format.open_memmap(p, mode="w+", dtype=t, shape=s)
                       for p, t, s in zip(paths, dtypes, shapes, strict=False)]  # fmt: skip

    def write(self, start, *blocks):
        for array, block in zip(self.arrays, blocks, strict=False):
            array[start : start + len(block)] = block.reshape(len(block), *array.shape[1:])

    def close(self, done):
        for array in self.arrays:
            array.flush()
        self.arrays = []
        if done < self.n:
            for path in self.paths:
                _shrink_npy(path, done)


def _shrink_npy(path, rows: int) -> None:
    """Keep the first `rows` rows of the .npy file `path`: its header rewritten in place (NumPy pads headers so the
    row count can change without moving the data) and the file cut; a copy where the header would not fit."""
    with open(path, "r+b") as stream:
        version = np.lib.format.read_magic(stream)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(stream)
        offset = stream.tell()
        header = io.BytesIO()
        write = np.lib.format.write_array_header_1_0 if version == (1, 0) else np.lib.format.write_array_header_2_0
        write(header, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": fortran,
                       "shape": (rows, *shape[1:])})  # fmt: skip
        if len(header.getvalue()) == offset:
            stream.seek(0)
            stream.write(header.getvalue())
            stream.truncate(offset + rows * math.prod(shape[1:]) * dtype.itemsize)
            return
    kept = np.array(np.load(path, mmap_mode="r")[:rows])
    np.save(path, kept)


class _CsvSink:
    """OUT.csv: a header (grad[i], ..., with --with-error error[i], ..., status), then one row per point, appended
    as chunks finish; float64 values written as the shortest text that reads back exactly, float32 with 9 digits."""

    def __init__(self, paths, n, row_shape, dtype, with_error):
        names = coordinate_names(np.zeros(row_shape))
        header = [f"grad{name[1:]}" for name in names]
        if with_error:
            header += [f"error{name[1:]}" for name in names] + ["status"]
        self.stream = open(paths[0], "w", newline="")
        csv.writer(self.stream).writerow(header)
        self.text = repr if np.dtype(dtype) == np.float64 else "{:.9g}".format

    def write(self, start, value, error, status):
        del start
        rows = value.reshape(len(value), -1).tolist()
        if error is not None:
            errors = error.reshape(len(error), -1).tolist()
            rows = [row + more + [Status(int(code)).name] for row, more, code in zip(rows, errors, status, strict=True)]
        text = self.text
        self.stream.writelines(",".join(v if isinstance(v, str) else text(v) for v in row) + "\n" for row in rows)

    def close(self, done):
        del done
        self.stream.close()
