"""The command line's shared argument groups and parsers, declared once for every subcommand."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
from typing import Any

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
users_x64 = False
"""jax_enable_x64 as the user's process had it, before the command turned it on (`jaxgrad.cli.main`): their modules
(--function, --like, --grad) are imported, and a --like callable called, under it, so that their own arrays have the
dtypes they have in plain Python (a float32 array of data stays float32)."""
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
    """--step: "auto" (chosen from f), "fixed" (the fixed default) or a positive finite number (an absolute step)."""
    word = text.strip().lower()
    return word if word in ("auto", "fixed") else positive_float(text)


def positive_float(text: str) -> float:
    """A positive finite number (a step, a step factor)."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive and finite number, got {text!r}")
    return value


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
def add_like(parser, *, sampled: bool) -> None:
    """--like: an example input of the user's function, whose structure, shapes and dtypes define the points."""
    where = (" and --dim is its number of values; the points are the example, then the example plus Gaussian noise "
             "(each leaf's standard deviation: its root mean square)" if sampled
             else ": the gradient at the example itself, or at each row of --points-file")  # fmt: skip
    parser.add_argument("--like", metavar="MODULE:ATTR",
                        help="an example input of --function (a pytree of arrays, e.g. a dict of parameters, or a "
                             "function of no arguments returning one): its structure, shapes and dtypes define the "
                             f"points{where}")  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)
class Example:
    """The `--like` example: a pytree of floating-point NumPy arrays (`tree`), named by `spec`.

    Points are drawn around it: point 0 is the example itself; every other point is the example plus Gaussian noise
    whose standard deviation is each leaf's root mean square (a leaf of zeros, such as a fresh bias, takes the
    whole example's; an all-zero example takes 1), so the points keep the example's shapes and scales.

    Example:
      >>> example = Example("m:p", {"w": np.ones((2, 3)), "b": np.zeros(3)})
      >>> example.size, example.describe()
      (9, "x['b'] (3,), x['w'] (2, 3)")
      >>> jax.tree_util.tree_map(np.shape, example.sample(5, seed=0, dtype=np.float32))
      {'b': (5, 3), 'w': (5, 2, 3)}
    """

    spec: str
    tree: Any

    @property
    def leaves(self) -> list[np.ndarray]:
        return jax.tree_util.tree_leaves(self.tree)

    @property
    def size(self) -> int:
        """The number of values (the flat dimension, what --dim would be)."""
        return sum(leaf.size for leaf in self.leaves)

    def describe(self, limit: int = 6) -> str:
        """ "x['W1'] (4, 8), x['b1'] (8,)": each leaf's path and shape (the first `limit`)."""
        named = [f"x{jax.tree_util.keystr(path)} {np.shape(leaf)}"
                 for path, leaf in jax.tree_util.tree_flatten_with_path(self.tree)[0]]  # fmt: skip
        return ", ".join(named[:limit]) + (f", ... ({len(named)} leaves)" if len(named) > limit else "")

    def cast(self, dtype=None):
        """The example with every leaf in `dtype` (None: each leaf's own)."""
        return self.tree if dtype is None else jax.tree_util.tree_map(lambda leaf: leaf.astype(dtype), self.tree)

    def struct(self, dtype=None):
        """The example as `jax.ShapeDtypeStruct`s, for `jax.eval_shape`."""
        return jax.tree_util.tree_map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype), self.cast(dtype))

    def sample(self, num_points: int, seed: int, dtype=None):
        """`num_points` points around the example (see the class), a pytree whose leaves have leading size N."""
        rng = np.random.default_rng(seed)
        overall = _rms(np.concatenate([leaf.ravel() for leaf in self.leaves])) if self.size else 0.0

        def around(leaf):
            scale = _rms(leaf) or overall or 1.0
            noise = rng.standard_normal((num_points, *leaf.shape)) * scale
            noise[:1] = 0.0  # point 0 is the example itself
            return (leaf + noise).astype(dtype or leaf.dtype)

        return jax.tree_util.tree_map(around, self.tree)

    def unflatten(self, rows: np.ndarray, dtype=None):
        """Rows of `size` values (N, size), in `jax.flatten_util.ravel_pytree` order, as a batch shaped like the
        example (leading size N)."""
        leaves, start = [], 0
        for leaf in self.leaves:
            block = rows[:, start : start + leaf.size].reshape((rows.shape[0], *leaf.shape))
            leaves.append(block.astype(dtype or leaf.dtype))
            start += leaf.size
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(self.tree), leaves)

    @staticmethod
    def flatten(batch) -> np.ndarray:
        """A batch shaped like the example as rows (N, size), in `ravel_pytree` order (the inverse of `unflatten`)."""
        leaves = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(batch)]
        return np.concatenate([leaf.reshape(leaf.shape[0], -1) for leaf in leaves], axis=1)


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(values, dtype=np.float64)))) if values.size else 0.0


def resolve_function(spec: str, flag: str = "--function"):
    """`functions.resolve`, a user's module imported under `users_x64`."""
    with jax.enable_x64(users_x64):
        return functions.resolve(spec, flag=flag)


def _is_array(leaf) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray, np.generic, int, float))


def load_example(spec: str) -> Example:
    """The `--like` example `module:attr`: a pytree of arrays, or a callable that returns one when called with no
    arguments. Every leaf must be a floating-point array or a Python float."""
    with jax.enable_x64(users_x64):
        target = functions.import_attribute(spec, "--like")
    leaves = jax.tree_util.tree_leaves(target)
    if callable(target) and not (leaves and all(map(_is_array, leaves))):
        try:
            with jax.enable_x64(users_x64):
                target = target()
        except Exception as error:
            raise ValueError(f"`--like {spec}` is callable, so jaxgrad called it with no arguments, which failed "
                             f"({type(error).__name__}: {error}); name a pytree of arrays or a function of no "
                             "arguments returning one") from error  # fmt: skip
    flat = jax.tree_util.tree_flatten_with_path(target)[0]
    if not flat:
        raise ValueError(f"`--like {spec}` holds no arrays ({type(target).__name__}); name a pytree of arrays, "
                         "e.g. a dict of parameters")  # fmt: skip
    for path, leaf in flat:
        kind = np.asarray(leaf).dtype if _is_array(leaf) and not isinstance(leaf, bool) else None
        if kind is None or not np.issubdtype(kind, np.floating):
            what = kind if kind is not None else type(leaf).__name__
            raise ValueError(f"`--like {spec}`: leaf x{jax.tree_util.keystr(path)} is {what}; every leaf must be a "
                             "floating-point array (the points are drawn around them): make it float or leave it "
                             "out of the example")  # fmt: skip
    return Example(spec, jax.tree_util.tree_map(lambda leaf: np.array(leaf), target))


def function_dim_domain(spec, dim, domain, like=None):
    """The function named by `spec`, its dimension and where its points come from: the built-in's own dimension and
    box unless given, 8 and [-1, 1] for a user's function; with `like` (a --like spec), the example's size and the
    `Example` itself (which `sample` draws around)."""
    fun = resolve_function(spec)
    if like is not None:
        example = like if isinstance(like, Example) else load_example(like)
        if domain is not None:
            raise ValueError(f"--domain draws points from a box, --like {example.spec} around an example; pass one "
                             "of them")  # fmt: skip
        if dim is not None and dim != example.size:
            raise ValueError(f"--dim {dim} disagrees with --like {example.spec}, which holds {example.size:,} values "
                             f"({example.describe()}); drop --dim: --like sets it")  # fmt: skip
        if isinstance(fun, functions.BuiltinFunction):
            if not isinstance(example.tree, np.ndarray) or example.tree.ndim != 1:
                raise ValueError(f"--function {spec} takes a vector of coordinates, and --like {example.spec} is "
                                 f"{example.describe()}; drop --like and pass --dim")  # fmt: skip
            fun.check_dim(example.size)
        return fun, example.size, example
    if isinstance(fun, functions.BuiltinFunction):
        dim = fun.default_dim if dim is None else dim
        fun.check_dim(dim, flag="--dim")
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


def check_function(fun, spec: str, dim: int, option: str = "--dim", region=None) -> None:
    """Explain, naming --dim (or --point) and --like, a function that cannot take a point of `dim` coordinates (or,
    when `region` is the --like `Example`, a point like it) or returns no scalar."""
    like = region if isinstance(region, Example) else None
    given = f"the --like {like.spec} example ({like.describe()})" if like else f"a point of {dim} coordinates"
    try:
        out = jax.eval_shape(fun, like.struct() if like else jax.ShapeDtypeStruct((dim,), jnp.float32))
    except NOT_TRACEABLE:  # the library explains this one, with --numpy
        return
    except Exception as error:  # a user's function fails in its own words; say what jaxgrad gave it
        said = f"--function {spec} fails on {given} ({type(error).__name__}: {error})"
        if like:
            raise ValueError(f"{said}; --like must name an input the function takes") from error
        if isinstance(error, (TypeError, KeyError, IndexError, AttributeError)) and _indexes_by_name(error):
            raise ValueError(f"{said}: it takes a structure, not a vector; pass --like module:attr naming an "
                             "example input (a pytree of arrays, e.g. its parameters)") from error  # fmt: skip
        raise ValueError(f"{said}; pass {option} with the number of coordinates it takes, or --like module:attr "
                         "naming an example input when it takes a pytree of arrays") from error  # fmt: skip
    if getattr(out, "shape", None) != ():
        raise ValueError(f"--function {spec} returns shape {getattr(out, 'shape', type(out).__name__)} for {given}; "
                         f"it must return one number (and check {'--like' if like else option})")  # fmt: skip


def _indexes_by_name(error: Exception) -> bool:
    """Whether `error` says the function indexed its input by a name or attribute (a dict or an object expected)."""
    text = str(error)
    return "string indexing" in text or isinstance(error, (KeyError, AttributeError)) or "got idx='" in text


def sample(dim: int, domain, num_points: int, seed: int, dtype):
    """`num_points` points drawn uniformly from the box domain^dim, as a NumPy array of `dtype`; around the example
    when `domain` is the --like `Example` (see `Example.sample`)."""
    if isinstance(domain, Example):
        return domain.sample(num_points, seed, dtype)
    return np.random.default_rng(seed).uniform(domain[0], domain[1], size=(num_points, dim)).astype(dtype)


def methods_of(args) -> list:
    """The (method, order) pairs of a several-method command, with --order filled in where no :ORDER was given."""
    return [(m, args.order) if isinstance(m, str) else m for m in args.method]
