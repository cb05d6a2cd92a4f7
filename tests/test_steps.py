"""The default step: dtype-aware, relative, a power of two, exactly representable."""

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
