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


def dump_json(data, stream, indent: int | None = 1) -> None:
    """`data` as JSON onto an open text stream (NumPy numbers as floats)."""
    json.dump(data, stream, indent=indent, default=float)


def dump_csv(rows, stream) -> None:
    """Rows (dicts with the same keys) as CSV with a header onto an open text stream; no rows, nothing."""
    if rows:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_json(path, data, indent: int | None = 1) -> None:
    """`data` as a JSON file (NumPy numbers as floats), replaced atomically."""

    def write(target):
        with open(target, "w") as stream:
            dump_json(data, stream, indent)

    replace_file(path, write)


def write_csv(path, rows_) -> None:
    """Rows (dicts with the same keys) as a CSV file with a header, replaced atomically; no rows, an empty file."""

    def write(target):
        with open(target, "w", newline="") as stream:
            dump_csv(rows_, stream)

    replace_file(path, write)
