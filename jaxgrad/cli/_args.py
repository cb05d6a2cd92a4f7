"""The command line's shared argument groups and parsers, declared once for every subcommand."""

from __future__ import annotations

import argparse
import math
import os
import re

import jax
import jax.numpy as jnp
import numpy as np

from .. import functions
from .._evaluate import NOT_TRACEABLE
from .._schemes import METHODS as SCHEMES

DTYPES = ("float32", "float64")
METHODS = tuple(SCHEMES)
NUMPY_HELP = "the function is NumPy code that JAX cannot trace: evaluate it on the host (traceable=False)"
NUMBER_LISTS = ("--point", "--domain", "--descent")
"""Options whose value is numbers separated by commas, and may start with a minus."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" where there is a default and the help does not already state it."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def join_negative_numbers(argv: list[str]) -> list[str]:
    """`--point -1,2` as `--point=-1,2` (also --domain, --descent): argparse would read "-1,2" as an option."""
    out = []
    for arg in argv:
        if out and out[-1] in NUMBER_LISTS and re.match(r"-[0-9.]", arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


# ------------------------------------------------------------------------------------------------- value parsers
def _numbers(text: str) -> list[float] | None:
    """Finite numbers separated by commas (spaces around them allowed, not inside them), or None."""
    try:
        values = [float(v) for v in (part.strip() for part in text.split(","))]
    except ValueError:
        return None
    return values if values and all(math.isfinite(v) for v in values) else None


def parse_point(text: str) -> list[float]:
    """ "3,4" -> [3.0, 4.0]; finite numbers only."""
    values = _numbers(text)
    if values is None:
        raise argparse.ArgumentTypeError(f"must be finite numbers separated by commas, e.g. 3,4; got {text!r}")
    return values


def parse_pair(text: str) -> tuple[float, float]:
    """ "-1,1" -> (-1.0, 1.0): two finite numbers, the first below the second."""
    values = _numbers(text)
    if values is None or len(values) != 2 or not values[0] < values[1]:
        raise argparse.ArgumentTypeError(f"must be two finite numbers LOW,HIGH with LOW < HIGH, e.g. -1,1; got "
                                         f"{text!r}")  # fmt: skip
    return values[0], values[1]


def parse_method(text: str):
    """ "central" -> "central"; "central:4" -> ("central", 4)."""
    method, _, order = text.partition(":")
    if method not in METHODS:
        raise argparse.ArgumentTypeError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if not order:
        return method
    try:
        return method, int(order)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the order in {text!r} must be an integer, e.g. central:4") from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def at_most(limit: int, why: str):
    """A parser of positive integers up to `limit`."""

    def parse(text: str) -> int:
        value = positive_int(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"expected at most {limit:,} ({why}), got {value:,}")
        return value

    return parse


def finite_float(text: str) -> float:
    values = _numbers(text)
    if values is None or len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return values[0]


def step_value(text: str):
    """--step: "auto" (chosen from f), "fixed" (the fixed default) or a finite number (an absolute step)."""
    word = text.strip().lower()
    return word if word in ("auto", "fixed") else finite_float(text)


def library_step(value, default=None):
    """The `step=` of the library for a --step value: `default` when not given, None for "fixed"."""
    if value is None:
        return default
    return None if value == "fixed" else value


# ------------------------------------------------------------------------------------------------- groups
def add_function(parser, *, default=None, repeatable: bool = False, what: str = "a built-in name or module:attr"):
    """--function: a built-in name or module:attr (repeatable: several, default all)."""
    if repeatable:
        parser.add_argument("--function", action="append", help=f"{what} (repeatable; default: all)")
    else:
        parser.add_argument("--function", default=default, help=what)


def add_sampling(parser, *, points: int, seed_help: str = "seed of the points"):
    """--dim, --points, --domain, --seed: the random points a command runs on."""
    parser.add_argument("--dim", type=positive_int, help="dimension (default: each function's own, 8 for yours)")
    parser.add_argument("--points", type=positive_int, default=points, help="random points per function and dtype")
    parser.add_argument("--domain", type=parse_pair,
                        help="LOW,HIGH box to sample from (default: the function's, or -1,1)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help=seed_help)


def add_dtypes(parser, *, several: bool = True, default="float64", help_text: str = "dtypes to run in"):
    """--dtype: several (default both) or one (default `default`)."""
    if several:
        parser.add_argument("--dtype", choices=DTYPES, nargs="+", default=list(DTYPES), help=help_text)
    else:
        parser.add_argument("--dtype", choices=DTYPES, default=default, help=help_text)


def add_method(parser, *, several: bool = False, step_default: str = "fixed"):
    """--method, --order (and, for one method, --step): the finite-difference scheme, as `method=`, `order=`,
    `step=` of the library."""
    if several:
        parser.add_argument("--method", type=parse_method, nargs="+", default=["central", "forward", ("central", 4)],
                            help="methods, as NAME or NAME:ORDER (central, central:4, forward, richardson, complex; "
                                 "default: central forward central:4)")  # fmt: skip
        parser.add_argument("--order", type=positive_int,
                            help="the order of each NAME given without :ORDER (default: the method's own)")  # fmt: skip
        return
    parser.add_argument("--method", choices=METHODS, default="central", help="the finite-difference method")
    parser.add_argument("--order", type=positive_int, help="order of the stencil (default: 2 central, 1 one-sided, "
                                                            "6 richardson)")  # fmt: skip
    parser.add_argument("--step", type=step_value, default=None,
                        help="'auto' (chosen per point and coordinate from the function), 'fixed' "
                             "(eps^(1/(p+1))·max(|x|, 1), a power of two) or an absolute step (default: "
                             f"{step_default})")  # fmt: skip


def add_quiet(parser):
    parser.add_argument("--quiet", action="store_true", help="no progress display")


# ------------------------------------------------------------------------------------------------- reading them
def function_dim_domain(spec, dim, domain):
    """The function named by `spec`, its dimension and sampling box: the built-in's own unless given; 8 and [-1, 1]
    for a user's function."""
    fun = functions.resolve(spec)
    if isinstance(fun, functions.BuiltinFunction):
        dim = fun.default_dim if dim is None else dim
        fun.check_dim(dim)
        return fun, dim, domain or fun.domain
    return fun, dim or 8, domain or (-1.0, 1.0)


def check_memory(num_points: int, dim: int, copies: int, what: str) -> None:
    """Refuse, before anything is allocated, a run whose arrays (`copies` float64 arrays of num_points × dim) would
    not fit in this machine's memory, naming the options that size it."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no figure to check against
        return
    need = copies * num_points * dim * 8
    if need > memory:
        raise ValueError(f"--points {num_points:,} × --dim {dim:,} needs about {need / 2**30:,.1f} GiB for {what}, "
                         f"more than this machine's {memory / 2**30:,.1f} GiB; use fewer --points")  # fmt: skip


def check_function(fun, spec: str, dim: int, option: str = "--dim") -> None:
    """Explain, naming --dim (or --point), a function that cannot take a point of `dim` coordinates or returns no
    scalar."""
    try:
        out = jax.eval_shape(fun, jax.ShapeDtypeStruct((dim,), jnp.float32))
    except NOT_TRACEABLE:  # the library explains this one, with --numpy
        return
    except Exception as error:  # a user's function fails in its own words; say what jaxgrad gave it
        raise ValueError(f"--function {spec} fails on a point of {dim} coordinates ({type(error).__name__}: {error}); "
                         f"pass {option} with the number of coordinates it takes") from error  # fmt: skip
    if getattr(out, "shape", None) != ():
        raise ValueError(f"--function {spec} returns shape {getattr(out, 'shape', type(out).__name__)} for a point "
                         f"of {dim} coordinates; it must return one number (and check {option})")  # fmt: skip


def sample(dim: int, domain, num_points: int, seed: int, dtype):
    """`num_points` points drawn uniformly from the box domain^dim, as a NumPy array of `dtype`."""
    return np.random.default_rng(seed).uniform(domain[0], domain[1], size=(num_points, dim)).astype(dtype)


def methods_of(args) -> list:
    """The (method, order) pairs of a several-method command, with --order filled in where no :ORDER was given."""
    return [(m, args.order) if isinstance(m, str) else m for m in args.method]
