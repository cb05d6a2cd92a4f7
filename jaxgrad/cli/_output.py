"""What every subcommand shares on the way out: progress, interruption (Ctrl-C keeps what finished), files."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

import jax

from .. import _files

WORKER = "jaxgrad-work"
"""The name of the thread a command's work runs in (see `promptly`)."""
STDOUT = "-"
"""The output path that means standard output."""


def write_json(path, data, indent: int | None = 1) -> None:
    """`data` as JSON into `path` (atomically), or onto standard output for "-"."""
    if path == STDOUT:
        _files.dump_json(data, sys.stdout, indent)
        sys.stdout.write("\n")
        sys.stdout.flush()
    else:
        _files.write_json(path, data, indent)


def write_csv(path, rows) -> None:
    """Rows (dicts, or a `_files.CsvText`) as CSV into `path` (atomically), or onto standard output for "-"."""
    if path != STDOUT:
        _files.write_csv(path, rows)
    else:
        _files.dump_csv(rows, sys.stdout)
        sys.stdout.flush()


RECORD_SUFFIX = ".runs.jsonl"
"""The record of finished runs is the first output file's name with this suffix instead of its own."""


def check_outputs(outputs: dict, inputs: dict | None = None, own: dict | None = None) -> None:
    """Refuse, before the work, an output path that cannot be written (a missing directory, a link, a directory...),
    two outputs that name one file (the second would replace the first), and an output that names an input (the
    input would be lost) or a file the command writes on its own. `outputs` and `inputs` map each option, as the user
    typed it, to its path (None or "-": none, or standard output); `own` maps what the command writes beside them
    (e.g. "the record of finished runs") to its path.

    Example:
      >>> check_outputs({"--json": "r", "--csv": "./r"})
      Traceback (most recent call last):
      ...
      ValueError: --json r and --csv ./r name the same file, so one would replace the other: give them different names
    """
    seen = {}  # the file (its real path: an output is never a link, refused below; an input may be one) -> its name
    for role, named in (("input", inputs or {}), ("own", own or {}), ("output", outputs)):
        for name, path in named.items():
            if not path or path == STDOUT:
                continue
            if role == "output":
                _files.check_writable(path)
            key = os.path.realpath(path)
            if key in seen and role == "input":  # several inputs may share a file (two functions of one module)
                continue
            if key in seen:
                first_name, first_role, first_path = seen[key]
                if first_role == "output":
                    raise ValueError(f"{first_name} {first_path} and {name} {path} name the same file, so one would "
                                     "replace the other: give them different names")  # fmt: skip
                if first_role == "own":
                    raise ValueError(f"{name} {path} names the file {first_name} goes to: give it another name")
                raise ValueError(f"{name} {path} names the same file as {first_name} {first_path}, which it would "
                                 "replace: give the output another name")  # fmt: skip
            seen[key] = name, role, path


def module_files(*specs) -> dict:
    """The source files of the modules that `--function`/`--grad`/`--like` specs ("mymod:loss", or lists of them)
    name, once imported: inputs an output must not replace ({"the module of --function mymod:loss": "/…/mymod.py"})."""
    files = {}
    for spec in specs:
        for one in [spec] if isinstance(spec, str) else spec or ():
            module = sys.modules.get(one.split(":")[0]) if ":" in one else None
            if getattr(module, "__file__", None):
                files[f"the module of {one}"] = module.__file__
    return files


def record_path(*paths) -> str | None:
    """Where the record of finished runs goes: beside the first output path that is a file (r.json or r.csv ->
    r.runs.jsonl); None when every output goes to standard output or nowhere."""
    for path in paths:
        if path and path != STDOUT:
            root, extension = os.path.splitext(os.fspath(path))
            return (root if extension else os.fspath(path)) + RECORD_SUFFIX
    return None


class RunRecord:
    """An append-only record of finished runs: one line of JSON per run, written and flushed as each run ends, so
    the runs that finished survive a crash or a kill (the output files themselves are written once, at the end).
    The file is created new: where `path` exists (left by a killed command, or in use by one running now), the
    record is R.runs-2.jsonl, R.runs-3.jsonl, ... instead (`self.path`). With no `path`, the lines are kept in
    memory. Read back in order with `lines()`; `remove()` when the output
    files hold them.

    Example:
      >>> import os, tempfile
      >>> record = RunRecord(os.path.join(tempfile.mkdtemp(), "r.runs.jsonl"))
      >>> record.append('{"run": 1}'); record.append('{"run": 2}')
      >>> list(record.lines())
      ['{"run": 1}', '{"run": 2}']
      >>> record.remove(); os.path.exists(record.path)
      False
    """

    def __init__(self, path: str | None):
        self.path, self._memory, self._stream = path, [], None
        if path is None:
            return
        root = path[: -len(RECORD_SUFFIX)] if path.endswith(RECORD_SUFFIX) else path
        for attempt in range(1, 1000):  # a record left by a killed command, or one of a command running now, stays
            self.path = path if attempt == 1 else f"{root}.runs-{attempt}.jsonl"
            try:
                self._stream = _files.create_appendable(self.path)
                return
            except FileExistsError:
                continue
        raise FileExistsError(f"{path!r} and 998 numbered records beside it exist; delete the ones you do not need")

    def append(self, line: str) -> None:
        """Add one run's JSON text (one line, no newline in it) and flush it to the file."""
        if self._stream is None:
            self._memory.append(line)
        else:
            self._stream.write(line + "\n")
            self._stream.flush()

    def lines(self):
        """Each recorded line, in order, read back one at a time (no newline)."""
        if self.path is None:
            yield from self._memory
            return
        self._stream.flush()
        with open(self.path, encoding="utf-8") as stream:
            for line in stream:
                yield line.rstrip("\n")

    def remove(self) -> None:
        """Close the record and delete its file."""
        if self._stream is not None:
            self._stream.close()
            os.unlink(self.path)
            self._stream = None
        self._memory = []


def report_stream(*paths):
    """Where the human-readable report goes: standard error when a data file goes to standard output."""
    return sys.stderr if STDOUT in paths else sys.stdout


@contextlib.contextmanager
def interrupts_deferred():
    """Ctrl-C waits until the block is done (then raises KeyboardInterrupt): files written together stay together."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def promptly(work, item):
    """`work(item)` in a worker thread while the main thread waits for it: Ctrl-C then stops the command at once,
    where it would otherwise wait for a long compiled call to return (XLA does not look at signals). The abandoned
    call finishes, or dies with the process, in its daemon thread; nothing it returns is used."""
    if threading.current_thread() is not threading.main_thread():
        return work(item)
    box = {}
    x64 = bool(jax.config.jax_enable_x64)  # the main thread's setting: JAX's configuration contexts are per thread

    def run():
        try:
            with jax.enable_x64(x64):
                box["result"] = work(item)
        except BaseException as error:  # handed to the main thread as it is
            box["error"] = error

    worker = threading.Thread(target=run, name=WORKER, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.05)
    if "error" in box:
        raise box["error"]
    return box["result"]


def each_with_progress(items, *, label: str, unit: str, describe, work, quiet: bool = False, keep=None):
    """Run `work(item)` for every item with a progress bar on stderr (none with `quiet`; tqdm hides it off a
    terminal), and `keep(results)` after each with Ctrl-C deferred, so the files on disk always hold every finished
    result, all of them the same ones.

    Returns:
      (results, interrupted): the finished results in order, and whether Ctrl-C stopped the loop.
    """
    from tqdm import tqdm

    bar = tqdm(items, desc=label, unit=unit, disable=True if quiet else None, file=sys.stderr, leave=False)
    results = []
    try:
        for item in bar:
            bar.set_postfix_str(describe(item))
            result = promptly(work, item)
            with interrupts_deferred():
                results.append(result)
                if keep is not None:
                    keep(results)
    except KeyboardInterrupt:
        return results, True
    finally:
        bar.close()
    return results, False


def interrupted_line(done: int, total: int, what: str, written=()) -> str:
    """ "interrupted: 2 of 4 runs finished; in r.json and r.csv"."""
    where = " and ".join(str(path) for path in written if path and path != STDOUT)
    return f"interrupted: {done} of {total} {what} finished" + (f"; in {where}" if where and done else "")
