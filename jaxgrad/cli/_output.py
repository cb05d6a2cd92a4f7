"""What every subcommand shares on the way out: progress, interruption (Ctrl-C keeps what finished), files."""

from __future__ import annotations

import sys

from .._files import write_csv, write_json

__all__ = ["each_with_progress", "write_csv", "write_json"]


def each_with_progress(items, *, label: str, unit: str, describe, work, quiet: bool = False, keep=None):
    """Run `work(item)` for every item with a progress bar on stderr (none with `quiet`; tqdm hides it off a
    terminal), and `keep(results)` after each, so a file on disk always holds every finished result.

    Returns:
      (results, interrupted): the finished results in order, and whether Ctrl-C stopped the loop.
    """
    from tqdm import tqdm

    bar = tqdm(items, desc=label, unit=unit, disable=True if quiet else None, file=sys.stderr, leave=False)
    results = []
    try:
        for item in bar:
            bar.set_postfix_str(describe(item))
            results.append(work(item))
            if keep is not None:
                keep(results)
    except KeyboardInterrupt:
        return results, True
    finally:
        bar.close()
    return results, False


def interrupted_line(done: int, total: int, what: str, written=()) -> str:
    """ "interrupted: 2 of 4 runs finished; their points are in r.json and r.csv"."""
    where = " and ".join(str(path) for path in written if path)
    return f"interrupted: {done} of {total} {what} finished" + (f"; in {where}" if where and done else "")
