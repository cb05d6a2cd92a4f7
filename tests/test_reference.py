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


# ---------------------------------------------------------------------------------------- the book's chapter 4 calls
def book_grid():
    """The book's gradient_2d.py grid: X, Y = np.meshgrid(np.arange(-2, 2.5, 0.25), ...) flattened, 324 points."""
    x0 = np.arange(-2, 2.5, 0.25)
    X, Y = np.meshgrid(x0, x0)
    return X.flatten(), Y.flatten()


def book_function_2(x):
    """gradient_2d.py's version: one value per row for a 2-D x."""
    return np.sum(x**2) if x.ndim == 1 else np.sum(x**2, axis=1)


@pytest.mark.parametrize("f", [function_2, book_function_2], ids=["notes", "book"])
def test_book_call_on_a_2d_array_of_points(f):
    """numerical_gradient(function_2, np.array([X, Y]).T): one gradient per row, analytic 2·(x0, x1)."""
    X, Y = book_grid()
    points = np.array([X, Y]).T
    before = points.copy()
    g = reference.numerical_gradient(f, points)
    assert g.shape == (324, 2) and g.dtype == np.float64
    # exact for a quadratic but for rounding: eps·|f|/h ≈ 2e-16·8/1e-4 ≈ 2e-11
    np.testing.assert_allclose(g, 2 * np.stack([X, Y], axis=1), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(points, before)


def test_2d_x_with_a_scalar_f_is_one_point():
    """A loss of a whole matrix W (f returns one number) keeps the matrix reading: d(W[0]·W[1])/dW = (W[1], W[0])."""
    W = np.arange(6.0).reshape(2, 3) - 2.5
    g = reference.numerical_gradient(lambda w: w[0] @ w[1], W)
    np.testing.assert_allclose(g, W[::-1], rtol=0, atol=1e-10)


def test_f_returning_an_array_for_a_point_is_explained():
    with pytest.raises(ValueError, match=r"`f` must return one number for a point of shape \(3,\)"):
        reference.numerical_gradient(lambda v: 2 * v, np.ones(3))
    with pytest.raises(ValueError, match="must return one number"):  # rows whose f is not scalar either
        reference.numerical_gradient(lambda v: np.stack([v, v]), np.ones((2, 3)))


@pytest.mark.parametrize("lr", [0.1, 0.01])
def test_gradient_descent_follows_the_exact_path(lr):
    """For x0² + x1² each step is x ← x − lr·2x, so x_k = (1 − 2 lr)^k x_0 (here from the book's (-3, 4))."""
    init = np.array([-3.0, 4.0])
    x, history = reference.gradient_descent(function_2, init, lr=lr, step_num=100)
    np.testing.assert_array_equal(init, [-3.0, 4.0])  # the book's version leaves init_x at its last point
    k = np.arange(101)[:, None]
    exact = (1 - 2 * lr) ** k * np.array([-3.0, 4.0])
    assert history.shape == (100, 2)
    np.testing.assert_array_equal(history[0], [-3.0, 4.0])
    # each step adds ≈ lr·eps·|f|/h ≤ 0.1·2e-16·25/1e-4 ≈ 5e-12, and the steps contract: far below 1e-10
    np.testing.assert_allclose(history, exact[:100], rtol=0, atol=1e-10)
    np.testing.assert_allclose(x, exact[100], rtol=0, atol=1e-10)


def test_gradient_descent_from_rows_and_integers():
    """A 2-D start descends from every row; an integer start is promoted (the book's x -= ... would fail)."""
    starts = np.array([[-3, 4], [1, 1]])
    x, history = reference.gradient_descent(function_2, starts, lr=0.1, step_num=5)
    assert history.shape == (5, 2, 2) and x.dtype == np.float64
    np.testing.assert_allclose(x, 0.8**5 * starts, rtol=0, atol=1e-10)
    x, history = reference.gradient_descent(function_2, [3.0, 4.0], step_num=0)
    np.testing.assert_array_equal(x, [3.0, 4.0])
    assert history.shape == (0, 2)


def test_gradient_descent_never_mutates_the_start_when_f_raises():
    init = np.array([-3.0, 4.0])
    calls = []

    def fails_late(v):
        calls.append(1)
        if len(calls) == 7:  # inside the second step
            raise RuntimeError("boom")
        return function_2(v)

    with pytest.raises(RuntimeError, match="boom"):
        reference.gradient_descent(fails_late, init, lr=0.1)
    np.testing.assert_array_equal(init, [-3.0, 4.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"lr": float("nan")}, "`lr` must be a finite number"), ({"lr": "0.1"}, "`lr` must be a finite number"),
     ({"step_num": -1}, "`step_num` must be an integer >= 0"), ({"step_num": 2.5}, "`step_num` must be an integer")],
)  # fmt: skip
def test_gradient_descent_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        reference.gradient_descent(function_2, np.array([1.0, 2.0]), **kwargs)
