"""`jaxgrad functions`: the built-in test functions."""

from __future__ import annotations

from .. import functions
from .._table import format_table


def add_parser(commands) -> None:
    p = commands.add_parser(
        "functions",
        help="list the built-in functions",
        description="List the built-in test functions that --function accepts by name: the dimensions d each "
        "takes (pass --dim), the box its random points are drawn from (--domain overrides it) and its formula. "
        "Each has an analytic gradient, used as an independent reference.",
    )
    p.set_defaults(run=run)


def run(args) -> int:
    rows = [[f.name, f.dims, f"[{f.domain[0]:g}, {f.domain[1]:g}]", f.description] for f in functions.BUILTINS.values()]
    print(format_table(["name", "d", "domain", "f(x)"], rows))
    return 0
