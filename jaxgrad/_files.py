"""The one writer of every file the package writes: whole files, replaced atomically."""

from __future__ import annotations

import csv
import json
import os
import tempfile


def _mode_for(path) -> int:
    """The existing file's permissions, or those a new file gets under the current umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def replace_file(path, write) -> None:
    """Write a file through `write(temporary_path)` into a unique temporary file in `path`'s directory, then rename
    it over `path` (atomic on POSIX): a reader sees the old file or the new one, never half of one, and two writers
    never share a temporary file. The temporary file is removed when `write` fails.

    Example:
      >>> import os, tempfile
      >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
      >>> replace_file(target, lambda p: open(p, "w").write("hello"))
      >>> open(target).read()
      'hello'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=directory)
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, _mode_for(path))
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_json(path, data, indent: int | None = 1) -> None:
    """`data` as a JSON file (NumPy numbers as floats), replaced atomically."""

    def write(target):
        with open(target, "w") as stream:
            json.dump(data, stream, indent=indent, default=float)

    replace_file(path, write)


def write_csv(path, rows_) -> None:
    """Rows (dicts with the same keys) as a CSV file with a header, replaced atomically; no rows, an empty file."""

    def write(target):
        with open(target, "w", newline="") as stream:
            if rows_:
                writer = csv.DictWriter(stream, fieldnames=list(rows_[0]))
                writer.writeheader()
                writer.writerows(rows_)

    replace_file(path, write)
