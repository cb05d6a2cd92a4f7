"""Plain-text tables for the command line and for `summary()` methods."""

from __future__ import annotations


def format_table(headers, rows, title: str | None = None) -> str:
    """Columns padded to their widest cell; columns of numbers right-aligned, others left-aligned.

    Example:
      >>> print(format_table(["name", "ms"], [["sphere", "1.5"], ["rosenbrock", "12.0"]]))
      name          ms
      ----------  ----
      sphere       1.5
      rosenbrock  12.0
    """
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def numeric(text: str) -> bool:
        text = text.replace(",", "").rstrip("%x")
        return text.replace(".", "", 1).replace("e", "", 1).replace("-", "").replace("+", "").isdigit()

    right = [all(numeric(row[i]) for row in cells[1:]) and len(cells) > 1 for i in range(len(headers))]

    def line(row):
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)).rstrip()

    out = [title] if title else []
    out += [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells[1:]]
    return "\n".join(out)
