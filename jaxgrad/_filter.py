"""Filtered pytrees, as `eqx.filter_grad` sees them: differentiate the floating-point array leaves of a pytree that
also holds functions, strings, ints or other objects, and carry every other leaf through unchanged.

A pytree is *filtered* when some leaf is neither an array (JAX or NumPy) nor a Python number: an Equinox model (its
activation functions are leaves), a params dict with a "config" string. Such a tree is split in three: the
differentiated leaves (floating or complex arrays, as `eqx.is_inexact_array` selects), the other arrays (integer
and boolean, never perturbed) and the static leaves (everything else, Python numbers included, compared by value
or identity, so compiled programs are shared between calls). The gradient has the input's structure with None at
every leaf that was not differentiated, as `eqx.filter_grad` returns it. A pytree of arrays and numbers only is not
filtered: it is differentiated whole, integer leaves promoted to float, as before.

Equinox is not needed: the split is `jax.tree_util` only.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

DIFFERENTIATED, ARRAY, STATIC = 0, 1, 2
"""The three kinds of leaf of a filtered pytree."""

GRADIENTS_ONE_AT_A_TIME = "eqx.filter_vmap(jg.grad(fun))(points)"
"""The fix `raise_if_batched_arrays` names for gradients; checks name theirs."""
CHECKS_ONE_AT_A_TIME = "jg.check_grad(fun, point, batched=False) on each point"


def is_inexact_array(leaf) -> bool:
    """Whether `leaf` is a floating or complex JAX or NumPy array (NumPy scalars too), as `eqx.is_inexact_array`.

    Example:
      >>> import numpy as np, jax.numpy as jnp
      >>> is_inexact_array(jnp.ones(2)), is_inexact_array(np.arange(3)), is_inexact_array(1.0)
      (True, False, False)
    """
    return isinstance(leaf, (jax.Array, np.ndarray, np.generic)) and bool(jnp.issubdtype(leaf.dtype, jnp.inexact))


def _is_array(leaf) -> bool:
    return isinstance(leaf, (jax.Array, np.ndarray, np.generic))


def is_filtered(tree) -> bool:
    """Whether the pytree `tree` has a leaf that is neither an array nor a Python number (a function, a string, an
    object): then only its inexact-array leaves are differentiated.

    Example:
      >>> import jax.numpy as jnp
      >>> is_filtered({"w": jnp.ones(2), "n": 3}), is_filtered({"w": jnp.ones(2), "act": jnp.tanh})
      (False, True)
    """
    if isinstance(tree, jax.Array):  # the usual case: no pytree walk
        return False
    return any(is_other_leaf(leaf) for leaf in jax.tree_util.tree_leaves(tree))


def is_other_leaf(leaf) -> bool:
    """Whether `leaf` is neither an array (JAX or NumPy) nor a Python number: what makes a pytree filtered."""
    return not (_is_array(leaf) or isinstance(leaf, (int, float, complex, bool)))


class _Identity:
    """An unhashable static leaf, compared by identity."""

    def __init__(self, value):
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Identity) and other.value is self.value


def _static_key(leaf):
    try:
        hash(leaf)
    except TypeError:
        return _Identity(leaf)
    return (
        type(leaf),
        leaf,
    )  # the type too: 1, 1.0 and True are equal, but a program traced with one is not the other's


@dataclasses.dataclass(frozen=True, eq=False)
class Skeleton:
    """The fixed part of a filtered pytree: its structure, the kind of each leaf, and the static leaves (None at the
    array positions). Hashable, compared by value (unhashable static leaves by identity)."""

    treedef: Any
    kinds: tuple[int, ...]
    static: tuple

    def _key(self):
        return self.treedef, self.kinds, tuple(_static_key(leaf) for leaf in self.static if leaf is not None)

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other) -> bool:
        return isinstance(other, Skeleton) and self._key() == other._key()

    def keep_differentiated(self, tree):
        """`tree` (a pytree of the full structure, e.g. a gradient with zeros at integer leaves) with None at every
        leaf that is not differentiated; any other tree unchanged."""
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        if treedef != self.treedef:
            return tree
        kept = [leaf if kind == DIFFERENTIATED else None for leaf, kind in zip(leaves, self.kinds, strict=True)]
        return jax.tree_util.tree_unflatten(treedef, kept)


def partition(tree) -> tuple[Any, tuple, Skeleton]:
    """Split `tree` into (differentiated part, other arrays, skeleton).

    The differentiated part has the structure of `tree` with None at every leaf that is not an inexact array (what
    `eqx.partition(tree, eqx.is_inexact_array)` gives first); `combine` puts the three back together.

    Example:
      >>> import jax.numpy as jnp
      >>> diff, arrays, skeleton = partition({"w": jnp.array([1.0, 2.0]), "n": 3, "act": "relu"})
      >>> print(diff["w"], diff["n"], diff["act"])
      [1. 2.] None None
      >>> combine(diff, arrays, skeleton)["act"]
      'relu'
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    kinds = tuple(DIFFERENTIATED if is_inexact_array(leaf) else ARRAY if _is_array(leaf) else STATIC for leaf in leaves)
    diff = jax.tree_util.tree_unflatten(
        treedef, [leaf if k == DIFFERENTIATED else None for leaf, k in zip(leaves, kinds, strict=True)]
    )
    arrays = tuple(leaf for leaf, k in zip(leaves, kinds, strict=True) if k == ARRAY)
    static = tuple(leaf if k == STATIC else None for leaf, k in zip(leaves, kinds, strict=True))
    return diff, arrays, Skeleton(treedef, kinds, static)


def combine(diff, arrays, skeleton: Skeleton):
    """The pytree that `partition` split: the differentiated leaves from `diff` (in its leaf order), the other
    arrays from `arrays`, the static leaves from `skeleton`."""
    pools = {DIFFERENTIATED: iter(jax.tree_util.tree_leaves(diff)), ARRAY: iter(arrays)}
    leaves = [next(pools[k]) if k != STATIC else leaf for k, leaf in zip(skeleton.kinds, skeleton.static, strict=True)]
    return jax.tree_util.tree_unflatten(skeleton.treedef, leaves)


# ------------------------------------------------------------------------------------------------- one point
@dataclasses.dataclass(frozen=True)
class FilteredBound:
    """A bound function (`value`/`aux` of (x, rest, keywords)) seen as a function of the differentiated part of a
    filtered x: the other arrays travel first in `rest` (traced, never perturbed), the static leaves in the
    skeleton (part of the compiled program's key)."""

    bound: Any
    skeleton: Skeleton

    @property
    def has_aux(self) -> bool:
        return self.bound.has_aux

    def value(self, diff, rest, keywords=None):
        return self.bound.value(combine(diff, rest[0], self.skeleton), rest[1:], keywords)

    def aux(self, diff, rest, keywords=None):
        return self.bound.aux(combine(diff, rest[0], self.skeleton), rest[1:], keywords)


# ------------------------------------------------------------------------------------------------- a batch
def _array_key(leaf):
    if isinstance(leaf, jax.core.Tracer):  # inside the user's jax.jit: no content to hash, the tracer itself
        return _Identity(leaf)
    value = np.asarray(leaf)
    return value.dtype.str, value.shape, value.tobytes()


@dataclasses.dataclass(frozen=True, eq=False)
class _Closed:
    """`call` with the other arrays and static leaves of a filtered batch closed over: a function of the
    differentiated part only. Hashable (the arrays by content), so the same batch layout reuses its program."""

    call: Any
    skeleton: Skeleton
    arrays: tuple
    output_filter: bool = False

    def __call__(self, diff):
        out = self.call(combine(diff, self.arrays, self.skeleton))
        return self.skeleton.keep_differentiated(out) if self.output_filter else out

    def _key(self):
        return _static_key(self.call), self.skeleton, tuple(_array_key(a) for a in self.arrays), self.output_filter

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other) -> bool:
        return isinstance(other, _Closed) and self._key() == other._key()

    @property
    def __name__(self) -> str:
        return getattr(self.call, "name", None) or getattr(self.call, "__name__", None) or type(self.call).__name__


def filtered_batch(fun, points, grad_fn=None, *, batch: bool = True, fix: str = GRADIENTS_ONE_AT_A_TIME):
    """(fun, points, grad_fn) for a filtered batch, as functions of the differentiated leaves only.

    The inexact-array leaves of `points` carry the batch axis; every other leaf (integer and boolean arrays
    included) is shared by all points and closed over. An integer or boolean array whose leading size is the
    batch's is refused (`raise_if_batched_arrays`; `batch`=False: not yet known to be a batch, the caller checks it
    once it knows): it may be per point, as `eqx.filter_vmap` makes it. `grad_fn`
    (if given) is called on the whole point and may return either structure: the filtered one (None at the other
    leaves, as `eqx.filter_grad`) or the full one (its values at the other leaves are ignored).
    """
    diff, arrays, skeleton = partition(points)
    if not jax.tree_util.tree_leaves(diff):
        raise ValueError(
            "`points` has no floating-point array leaves to differentiate (only "
            f"{sorted({type(leaf).__name__ for leaf in jax.tree_util.tree_leaves(points)})}); pass the "
            "parameters as float arrays, e.g. jnp.asarray(value, jnp.float32)."
        )
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in jax.tree_util.tree_leaves(diff)}
    if batch and len(sizes) == 1 and None not in sizes:
        raise_if_batched_arrays(points, sizes.pop(), fix=fix)
    closed_grad = None if grad_fn is None else _Closed(grad_fn, skeleton, arrays, output_filter=True)
    return _Closed(fun, skeleton, arrays), diff, closed_grad


def raise_if_batched_arrays(points, n: int, hint: str = "", fix: str = GRADIENTS_ONE_AT_A_TIME) -> None:
    """Refuse a filtered batch of `n` points whose integer or boolean array has the leading size n: `eqx.filter_vmap`
    gives every array leaf the batch axis (a mask, an index per model), and shared, each point would see all n of
    them (broadcast silently: a gradient 3× too large in the review's Equinox model)."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(points)[0]:
        if _is_array(leaf) and not is_inexact_array(leaf) and np.ndim(leaf) and np.shape(leaf)[0] == n:
            raise ValueError(
                f"`points`{jax.tree_util.keystr(path)}, an array of {leaf.dtype} of shape {np.shape(leaf)}, "
                f"has the batch's leading size {n}: jaxgrad shares a batch's integer and boolean arrays between all "
                "its points, so it cannot tell one per point (as eqx.filter_vmap makes them) from a shared one. For "
                f"one per point, take the points one at a time, e.g. {fix}; for a "
                "shared one, close over it in `fun`." + hint
            )
