"""The default step: dtype-aware, relative, a power of two, exactly representable."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import eps
from hypothesis import given
from hypothesis import strategies as st

import jaxgrad as jg


@pytest.mark.parametrize("order", [1, 2, 4])
def test_default_step_follows_the_rule(dtype, order):
    x = jnp.asarray([0.0, 0.3, -1.0, 3.0, -250.0, 1e5], dtype=dtype)
    h = np.asarray(jg.numerics.default_step(x, order))
    assert h.dtype == dtype
    rule = eps(dtype) ** (1 / (order + 1)) * np.maximum(np.abs(np.asarray(x, np.float64)), 1)
    ratio = h / rule
    assert np.all((ratio >= 2**-0.5 * 0.999) & (ratio <= 2**0.5 * 1.001)), ratio  # nearest power of two
    assert np.all(np.log2(h) == np.round(np.log2(h)))  # a power of two ...
    xn = np.asarray(x)
    assert np.array_equal((xn + h) - xn, h)  # ... and exactly what the dtype steps by


@given(st.floats(-1e6, 1e6, allow_nan=False, width=32))
def test_default_step_is_representable_float32(value):
    x = jnp.asarray([value], jnp.float32)
    h = np.asarray(jg.numerics.default_step(x, 2))
    xn = np.asarray(x)
    assert h[0] > 0
    assert ((xn + h) - xn)[0] == h[0]


def test_nonfinite_points_get_nonfinite_steps(dtype):
    x = jnp.asarray([np.nan, np.inf, -np.inf, 1.0], dtype=dtype)
    h = np.asarray(jg.numerics.default_step(x, 2))
    assert not np.isfinite(h[:3]).any()
    assert np.isfinite(h[3])


RULES = [jg.DefaultStep(), jg.AutoStep(), jg.Absolute(1e-3), jg.Relative(1e-3)]


@pytest.mark.x64_independent
def test_every_rule_has_a_tree_structure_of_its_own():
    """A rule is an argument of the compiled programs: jit's cache finds a program by its tree structure (and hash).
    With jax's register_dataclass, DefaultStep's and AutoStep's structures compared equal (and Absolute's and
    Relative's), and a step="auto" call ran the fixed step's program whenever their hashes met in the cache."""
    structures = [jax.tree_util.tree_structure(rule) for rule in RULES]
    for i, a in enumerate(structures):
        for j, b in enumerate(structures):
            assert (a == b) == (i == j), (RULES[i], RULES[j])
    assert jax.tree_util.tree_map(lambda v: 2 * v, jg.Absolute(1e-3)) == jg.Absolute(2e-3)  # its field is the leaf


@pytest.mark.x64_independent
def test_one_function_gets_each_rules_own_program():
    """The same f through one compiled program per rule: each call's numbers are its own rule's."""

    def f(x):
        return jnp.sin(x[0] * x[1])

    x = jnp.array([100.0, 0.5], jnp.float32)
    exact = np.array([0.5 * np.cos(50.0), 100 * np.cos(50.0)])
    errors = {type(rule).__name__: np.abs(np.asarray(jg.grad(f, step=rule)(x), np.float64) - exact) for rule in RULES}
    assert errors["AutoStep"][1] < errors["DefaultStep"][1] / 10  # f's own length scale, 0.01, not |x1|
    assert errors["Relative"][0] > 10 * errors["Absolute"][0]  # in x0 = 100, 1e-3·max(|x|, 1) is a step of 0.1
