"""The one writer of every file the package writes: whole files, replaced atomically."""

from __future__ import annotations

import csv
import json
import os
import stat
import tempfile


def _check_target(path: str) -> os.stat_result | None:
    """The target's status when it is a regular file with one link, None when it does not exist; anything else is
    refused: a link is never followed, a device, directory or pipe never replaced, a hard link never broken."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"cannot write {path!r}: its directory {directory!r} does not exist") from None
        return None
    if stat.S_ISLNK(status.st_mode):
        raise ValueError(f"{path!r} is a symbolic link; jaxgrad does not write through links: pass the real path")
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(f"cannot write {path!r}: it is a directory; pass a file name inside it")
    if not stat.S_ISREG(status.st_mode):
        raise ValueError(f"{path!r} is not a regular file (a device, pipe or socket); pass the path of a file")
    if status.st_nlink > 1:
        raise ValueError(f"{path!r} has {status.st_nlink} hard links, which replacing it would break; write to a "
                         "new path and copy it over")  # fmt: skip
    return status


def check_writable(path) -> None:
    """Raise the error `replace_file` would raise for `path` (see `_check_target`), before any work is done."""
    if not os.fspath(path):
        raise ValueError("the output path is empty; pass a file name")
    _check_target(os.fspath(path))


def replace_file(path, write) -> None:
    """Write a file through `write(temporary_path)` into a unique temporary file created exclusively in `path`'s
    directory, then rename it over `path` (atomic on POSIX): a reader sees the old file or the new one, never half of
    one, and two writers never share a temporary file. The new file keeps the old one's mode (and owner, where the
    process may set it); a new file gets the mode the umask gives. The temporary file is removed when `write` fails
    or is interrupted. Links, directories, devices, pipes and files with several hard links are refused (see
    `_check_target`).

    Example:
      >>> import os, tempfile
      >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
      >>> replace_file(target, lambda p: open(p, "w").write("hello"))
      >>> open(target).read()
      'hello'
    """
    path = os.fspath(path)
    if not path:
        raise ValueError("the output path is empty; pass a file name")
    old = _check_target(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=directory)
    os.close(handle)
    try:
        write(temporary)
        if old is None:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        else:
            os.chmod(temporary, stat.S_IMODE(old.st_mode))
            try:
                os.chown(temporary, old.st_uid, old.st_gid)
            except PermissionError:  # only root may give a file away; the mode is kept all the same
                pass
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


class JsonList:
    """A JSON list whose items are already encoded, one JSON text each: `dump_json` streams it item by item, so a
    large document is never built in memory. `json.dumps([a, b])` and `JsonList([dumps(a), dumps(b)])` give the same
    text (indent None).

    Example:
      >>> import io
      >>> stream = io.StringIO()
      >>> dump_json(JsonList(['{"a": 1}', "[2]"]), stream, indent=None)
      >>> stream.getvalue()
      '[{"a": 1}, [2]]'
    """

    def __init__(self, texts):
        self.texts = texts


class CsvText:
    """A CSV document given as its header (a sequence of names) and its rows as CSV text already (chunks, each
    whole lines as `csv.writer` writes them): `dump_csv` writes the header and streams the chunks (no chunks: an
    empty document, as for no dict rows).

    Example:
      >>> import io
      >>> stream = io.StringIO()
      >>> dump_csv(CsvText(("a", "b"), ["1,2\\r\\n", "3,4\\r\\n"]), stream)
      >>> stream.getvalue()
      'a,b\\r\\n1,2\\r\\n3,4\\r\\n'
    """

    def __init__(self, header, chunks):
        self.header, self.chunks = tuple(header), chunks


def dump_json(data, stream, indent: int | None = 1) -> None:
    """`data` as JSON onto an open text stream (NumPy numbers as floats); a `JsonList` streamed item by item (its
    items keep their own layout, so `indent` does not apply to them)."""
    if not isinstance(data, JsonList):
        json.dump(data, stream, indent=indent, default=float)
        return
    stream.write("[")
    for i, text in enumerate(data.texts):
        stream.write(", " + text if i else text)
    stream.write("]")


def dump_csv(rows, stream) -> None:
    """Rows as CSV with a header onto an open text stream: dicts with the same keys (no rows, nothing), or a
    `CsvText`, streamed (no chunks, nothing)."""
    if isinstance(rows, CsvText):
        for i, chunk in enumerate(rows.chunks):
            if not i:
                csv.writer(stream).writerow(rows.header)
            stream.write(chunk)
    elif rows:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_json(path, data, indent: int | None = 1) -> None:
    """`data` as a JSON file (NumPy numbers as floats; a `JsonList` streamed), replaced atomically."""

    def write(target):
        with open(target, "w") as stream:
            dump_json(data, stream, indent)

    replace_file(path, write)


def write_csv(path, rows_) -> None:
    """Rows as a CSV file with a header, replaced atomically (see `dump_csv`); no dict rows, an empty file."""

    def write(target):
        with open(target, "w", newline="") as stream:
            dump_csv(rows_, stream)

    replace_file(path, write)


def create_appendable(path):
    """A new text file at `path`, opened for appending, created exclusively: an existing file (or link, or anything
    else) at `path` is refused with FileExistsError, so nothing is overwritten and no link is followed. Each write
    goes to the end (O_APPEND), so what was written stays as it was.

    Example:
      >>> import os, tempfile
      >>> target = os.path.join(tempfile.mkdtemp(), "runs.jsonl")
      >>> with create_appendable(target) as stream:
      ...     _ = stream.write("{}\\n")
      >>> open(target).read()
      '{}\\n'
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
    return os.fdopen(os.open(os.fspath(path), flags, 0o666), "w", encoding="utf-8", newline="")
