"""The NumPy reference: the notes' algorithm, returning the gradient and never touching the caller's array."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jaxgrad import functions, reference


def function_2(x):
    return x[0] ** 2 + x[1] ** 2


def test_notes_example_float64():
    g = reference.numerical_gradient(function_2, np.array([3.0, 4.0]))
    # h = 1e-4 in float64: round-off eps·|f|/h ≈ 1e-11 (the notes print 6.00000000000378, 7.999999999999119)
    np.testing.assert_allclose(g, [6.0, 8.0], rtol=0, atol=1e-10)
    assert g.dtype == np.float64


def test_integer_input_is_promoted_not_truncated():
    """The notes' version would compute x + h in the integer dtype (3 + 1e-4 -> 3) and return 0."""
    g = reference.numerical_gradient(function_2, np.array([3, 4]))
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, [6.0, 8.0], atol=1e-10)


@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 1, 2)])
def test_any_shape(shape):
    x = np.random.default_rng(0).normal(size=shape)
    g = reference.numerical_gradient(lambda v: np.sum(np.sin(v)), x)
    assert g.shape == x.shape
    np.testing.assert_allclose(g, np.cos(x), atol=1e-8)  # h²/6 = 1.7e-9 truncation, 1e-12 round-off


@given(
    x=hnp.arrays(
        st.sampled_from([np.float64, np.float32, np.int64]),
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=3),
        elements=st.integers(-100, 100),
    )
)
def test_never_mutates_the_input(x):
    before = x.copy()
    reference.numerical_gradient(lambda v: float(np.sum(v**2)), x)
    np.testing.assert_array_equal(x, before)
    assert x.dtype == before.dtype


def test_never_mutates_the_input_when_f_raises():
    x = np.array([1.0, 2.0, 3.0])
    before = x.copy()
    calls = []

    def fails_on_second_call(v):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return float(np.sum(v))

    with pytest.raises(RuntimeError, match="boom"):
        reference.numerical_gradient(fails_on_second_call, x)
    np.testing.assert_array_equal(x, before)


def test_batch_version_matches_per_point_and_analytic():
    f = functions.rosenbrock
    points = f.sample(20, 4, seed=3)
    before = points.copy()
    g = reference.batch_numerical_gradient(f, points)
    np.testing.assert_array_equal(points, before)
    assert g.shape == points.shape
    np.testing.assert_array_equal(g, np.stack([reference.numerical_gradient(f, p) for p in points]))
    exact = f.gradient(points)
    assert np.median(np.linalg.norm(g - exact, axis=1) / np.linalg.norm(exact, axis=1)) < 1e-8


def test_float32_reference_shows_the_notes_round_off():
    """h = 1e-4 in float32 leaves ≈ eps·|f|/h ≈ 1e-3 relative error: faithful to the notes, and why jaxgrad picks
    its step from the dtype."""
    g = reference.numerical_gradient(function_2, np.array([3.0, 4.0], np.float32))
    assert g.dtype == np.float32
    err = np.abs(g.astype(np.float64) - [6.0, 8.0])
    assert np.all(err <= 4 * np.finfo(np.float32).eps * 25 / 2e-4)
    assert err.max() > 1e-4  # really worse than the engine's float32 default


@pytest.mark.parametrize("h", [0, -1e-4, float("nan"), float("inf"), "1e-4"])
def test_bad_h(h):
    with pytest.raises(ValueError, match="`h` must be a positive finite number"):
        reference.numerical_gradient(function_2, np.array([1.0, 2.0]), h=h)


def test_batch_needs_a_batch_axis():
    with pytest.raises(ValueError, match="leading batch axis"):
        reference.batch_numerical_gradient(function_2, np.float64(3.0))
    assert reference.batch_numerical_gradient(function_2, np.zeros((0, 2))).shape == (0, 2)
