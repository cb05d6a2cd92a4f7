"""The schemes: the one general weight routine against textbook tables and exact polynomial differentiation;
scheme objects and method names as two spellings of one thing; StepDirection; the old top-level names."""

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import step_of
from hypothesis import given
from hypothesis import strategies as st

import jaxgrad as jg
from jaxgrad import functions
from jaxgrad.numerics import finite_difference_weights

SCHEMES = {"central": jg.Central, "forward": jg.Forward, "backward": jg.Backward, "richardson": jg.Richardson}


def make_stencil(method="central", order=None):
    """The scheme object of a method name, as the API edge builds it."""
    return SCHEMES[method]() if order is None else SCHEMES[method](order)


# Textbook first-derivative weights (Fornberg 1988, Table 1), written out by hand.
TEXTBOOK = {
    ("central", 2): {-1: -1 / 2, 1: 1 / 2},
    ("central", 4): {-2: 1 / 12, -1: -2 / 3, 1: 2 / 3, 2: -1 / 12},
    ("central", 6): {-3: -1 / 60, -2: 3 / 20, -1: -3 / 4, 1: 3 / 4, 2: -3 / 20, 3: 1 / 60},
    ("forward", 1): {0: -1.0, 1: 1.0},
    ("forward", 2): {0: -3 / 2, 1: 2.0, 2: -1 / 2},
    ("backward", 1): {-1: -1.0, 0: 1.0},
    ("backward", 2): {-2: 1 / 2, -1: -2.0, 0: 3 / 2},
}


@pytest.mark.parametrize(("method", "order"), sorted(TEXTBOOK))
def test_weights_match_textbook(method, order):
    s = make_stencil(method, order)
    got = dict(zip(s.offsets, s.weights, strict=True))
    if s.center_weight:
        got[0] = s.center_weight
    assert got == pytest.approx(TEXTBOOK[(method, order)], rel=1e-15)


def test_natural_orders_and_costs():
    assert make_stencil("central").order == 2
    assert make_stencil("forward").order == 1
    assert make_stencil("central", 2).evaluations(8) == 16  # 2d
    assert make_stencil("forward", 1).evaluations(8) == 9  # d + 1: f(x) shared
    assert make_stencil("central", 4).evaluations(8) == 32


@given(
    coefficients=st.lists(st.integers(-20, 20), min_size=1, max_size=7),
    x=st.integers(-5, 5),
    method=st.sampled_from(["central", "forward", "backward"]),
    order=st.integers(1, 6),
)
def test_stencil_differentiates_polynomials_exactly(coefficients, x, method, order):
    """A stencil of order p with K points is exact for polynomials of degree ≤ p (exact rational arithmetic)."""
    if method == "central" and order % 2:
        order += 1
    s = make_stencil(method, order)
    coefficients = coefficients[: order + 1]  # degree ≤ order

    def poly(t):
        return sum(Fraction(c) * t**k for k, c in enumerate(coefficients))

    def dpoly(t):
        return sum(Fraction(k * c) * t ** (k - 1) for k, c in enumerate(coefficients) if k)

    h = Fraction(1, 8)
    weights = [Fraction(w).limit_denominator(10**6) for w in s.weights]
    estimate = sum(w * poly(x + k * h) for k, w in zip(s.offsets, weights, strict=True))
    estimate += Fraction(s.center_weight).limit_denominator(10**6) * poly(Fraction(x))
    assert estimate / h == dpoly(Fraction(x))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "centre"}, "`method` must be one of"),
        ({"method": "central", "order": 3}, r"`order` for method='central' must be one of 2, 4, 6, 8"),
        ({"order": 0}, "`order` for method='central' must be one of"),
        ({"order": 2.0}, "`order` for method='central' must be one of"),
        ({"order": 99}, "`order` for method='central' must be one of"),
        ({"method": "forward", "order": 9}, "`order` for method='forward' must be one of 1, 2"),
        ({"method": "richardson", "order": 2}, "`order` for method='richardson' must be one of 4, 6, 8"),
        ({"method": "complex", "order": 4}, "method='complex' has order 2"),
        ({"method": jg.Central(4), "order": 2}, "`order`=2 disagrees with method=Central"),
    ],
)
def test_bad_method_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jg.grad(functions.sphere, **kwargs)


def test_weights_need_distinct_offsets():
    with pytest.raises(ValueError, match="distinct"):
        finite_difference_weights((1, 1))


# --------------------------------------------------------------------------------------- schemes are objects
@pytest.mark.parametrize(
    ("name", "order", "scheme"),
    [("central", None, jg.Central()), ("central", 4, jg.Central(4)), ("forward", None, jg.Forward()),
     ("backward", 2, jg.Backward(2)), ("richardson", None, jg.Richardson(6)), ("complex", None, jg.ComplexStep())],
)  # fmt: skip
def test_a_method_name_and_its_scheme_object_give_identical_gradients(name, order, scheme, dtype):
    f = functions.rosenbrock
    points = jnp.asarray(f.sample(20, 4, seed=3, dtype=dtype))
    by_name = jg.batch_grad(f, points, method=name, order=order)
    by_object = jg.batch_grad(f, points, method=scheme)
    assert np.array_equal(np.asarray(by_name), np.asarray(by_object))
    assert hash(scheme) == hash(type(scheme)(scheme.order)) and scheme == type(scheme)(scheme.order)


def test_schemes_are_static_arguments_of_jit():
    """A scheme object is hashable and frozen, so it can be a static argument; equal schemes share one program."""

    @jax.jit
    def apply(x):
        return jg.grad(functions.sphere, method=jg.Central(4))(x)

    assert np.allclose(apply(jnp.array([3.0, 4.0])), [6.0, 8.0])
    with pytest.raises(Exception, match=r"cannot assign|frozen"):
        jg.Central(4).order = 2


@pytest.mark.parametrize("dim", [1, 3, 7])
def test_evaluation_counts_follow_the_formulas(dim):
    assert jg.Central(2).evaluations(dim) == 2 * dim
    assert jg.Central(6).evaluations(dim) == 6 * dim
    assert jg.Forward(3).evaluations(dim) == 3 * dim + 1
    assert jg.Richardson(6).evaluations(dim) == 6 * dim
    assert jg.ComplexStep().evaluations(dim) == dim
    assert jg.Central(2).evaluations(dim, with_error=True) == 4 * dim + 1  # ±h, ±2h and f(x)


def test_old_top_level_names_still_work_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="jaxgrad.numerics.tolerance"):
        assert jg.tolerance is jg.numerics.tolerance
    with pytest.warns(DeprecationWarning, match="moved"):
        assert jg.make_stencil("central", 4) == jg.Central(4)
    with pytest.warns(DeprecationWarning, match="moved"):
        assert jg.finite_difference_weights((-1, 1)) == (-0.5, 0.5)


# --------------------------------------------------------------------------------------- StepDirection
def test_step_direction_matches_the_one_sided_schemes_coordinate_by_coordinate(dtype):
    """Each coordinate gets what the uniform scheme of its direction gives there (to the rounding of f: the two
    programs may fuse f differently)."""
    f = functions.rosenbrock
    x = jnp.asarray(f.sample(1, 3, seed=8, dtype=dtype)[0])
    mixed = np.asarray(jg.grad(f, method=jg.StepDirection((1, 0, -1)))(x))
    for i, scheme in enumerate((jg.Forward(2), jg.Central(2), jg.Backward(2))):
        single = np.asarray(jg.grad(f, method=scheme)(x))[i]
        assert mixed[i] == pytest.approx(single, rel=1e-3 if dtype == np.float32 else 1e-9)


def test_step_direction_stays_inside_a_domain_that_ends_at_the_point():
    """x^2.5 is NaN for x < 0: at x0 = 0 the central stencil leaves the domain (and is repaired one-sided with a far
    shorter step, `_evaluate.repaired_gradient`), the forward one does not."""

    def f(x):
        return jnp.sum(x**2.5)

    x = jnp.array([0.0, 4.0])
    h = float(step_of(x)[0])
    central = np.asarray(jg.grad(f)(x), np.float64)
    assert np.isfinite(central).all() and abs(central[0]) <= h**1.5
    g = np.asarray(jg.grad(f, method=jg.StepDirection((1, 0)))(x), np.float64)
    assert abs(g[0]) <= h**1.5  # exact 0; forward order 2 leaves (2 − 2^1.5 / 2)·h^1.5 ≈ 0.83 h^1.5
    assert abs(g[1] - 20.0) < 1e-3  # 2.5·4^1.5


def test_step_direction_with_error_bounds_its_error(dtype):
    f = functions.logsumexp
    points = jnp.asarray(f.sample(200, 4, seed=2, dtype=dtype))
    scheme = jg.StepDirection((1, -1, 0, 1), order=2)
    est = jg.batch_grad(f, points, method=scheme, with_error=True)
    actual = np.abs(np.asarray(est.value, np.float64) - f.gradient(np.asarray(points, np.float64)))
    assert np.mean(actual <= np.asarray(est.error, np.float64)) >= 0.99
    assert np.all(np.asarray(est.status) == 0)
    assert jg.compare(f, points, method=scheme).ok
    assert scheme.evaluations(4) == 2 * 4 + 1  # p·d and one shared f(x)


def test_step_direction_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="must be -1, 0 or 1"):
        jg.StepDirection(2)
    with pytest.raises(ValueError, match="3 directions for a point of 2 coordinates"):
        jg.grad(functions.sphere, method=jg.StepDirection((1, 0, 0)))(jnp.ones(2))
    with pytest.raises(ValueError, match="does not support directional"):
        jg.jvp(functions.sphere, (jnp.ones(2),), (jnp.ones(2),), method=jg.StepDirection(1))


# --------------------------------------------------------------------------------------- complex step, directions
def test_jvp_takes_every_directional_scheme_including_the_complex_step():
    """One seam for directions: jvp's stencil points and weights come from the scheme, the complex step included."""
    x, v = jnp.array([0.3, -1.2, 2.0]), jnp.array([1.0, 0.5, -2.0])
    _, exact = jax.jvp(functions.rosenbrock, (x,), (v,))
    for scheme in (jg.Central(2), jg.Central(4), jg.Forward(2), jg.Richardson(6), jg.ComplexStep()):
        got = jg.jvp(functions.rosenbrock, (x,), (v,), method=scheme)[1]
        bound = 1e-2 if x.dtype == jnp.float32 else 1e-5
        assert abs(float(got) - float(exact)) <= bound * abs(float(exact)), scheme
    complex_step = float(jg.jvp(functions.rosenbrock, (x,), (v,), method=jg.ComplexStep())[1])
    assert complex_step == pytest.approx(float(exact), rel=1e-5 if x.dtype == jnp.float32 else 1e-13)


# --------------------------------------------------------------------------------------- from the review
def test_weights_take_any_sequence_of_offsets():
    assert finite_difference_weights([-1, 1]) == finite_difference_weights((-1, 1)) == (-0.5, 0.5)
    assert finite_difference_weights(np.array([0, 1, 2])) == (-1.5, 2.0, -0.5)


def test_step_direction_normalises_numpy_and_list_directions_to_plain_ints():
    assert jg.StepDirection(np.int64(1)) == jg.StepDirection(1)
    assert jg.StepDirection([1, 0, -1]) == jg.StepDirection((1, 0, -1))
    assert jg.StepDirection(np.array([1, 0])).direction == (1, 0)
    assert len({jg.StepDirection(np.int64(1)), jg.StepDirection(1), jg.StepDirection((1, 0, 1))}) == 2
    x = jnp.array([1.0, 2.0, 3.0])
    first = jg.grad(functions.sphere, method=jg.StepDirection(np.int64(1)))(x)  # then a tuple one: no stale cache
    second = jg.grad(functions.sphere, method=jg.StepDirection((1, 0, 1)))(x)
    assert np.allclose(first, 2 * x, rtol=1e-3) and np.allclose(second, 2 * x, rtol=1e-3)


def test_a_relative_step_is_checked_like_an_absolute_one():
    with pytest.raises(ValueError, match="must be positive and finite"):
        jg.grad(functions.sphere, step=jg.Relative(0.0))
    with pytest.raises(ValueError, match="below the resolution"):
        jg.grad(functions.sphere, step=jg.Relative(1e-30))(jnp.array([100.0, 1.0]))


def test_a_scheme_class_instead_of_an_instance_is_explained():
    with pytest.raises(ValueError, match=r"pass an instance: Central\(\)"):
        jg.grad(functions.sphere, method=jg.Central)


def test_a_step_study_refuses_a_per_coordinate_scheme_clearly():
    with pytest.raises(ValueError, match="sweeps one stencil along every axis"):
        jg.step_study(
            functions.sphere, functions.sphere.sample(4, 2), dtypes=("float32",), methods=(jg.StepDirection(1),)
        )


# --------------------------------------------------------------------------------------- exact zeros
SYMMETRIC = [jg.Central(2), jg.Central(4), jg.Central(6), jg.Central(8), jg.Richardson(4), jg.Richardson(6),
             jg.Richardson(8)]  # fmt: skip


@pytest.mark.parametrize("scheme", SYMMETRIC, ids=repr)
def test_symmetric_stencils_give_exact_zeros_at_every_order(scheme, dtype):
    """Pairs are combined as w·(f(x + kh) − f(x − kh)): a constant function, an even direction and the structural
    zeros of a Jacobian give exactly 0 (the sum w_k·f left 1e-15…1e-13 at order ≥ 4), with and without the error
    estimate."""
    x = jnp.asarray([0.3, -1.7, 2.0], dtype)

    def constant(v):
        return jnp.sum(v * 0) + 3.14159

    def even_in_x0(v):
        return jnp.cos(v[0] - jnp.asarray(0.3, dtype)) + jnp.sum(v[1:] ** 2)

    assert np.all(np.asarray(jg.grad(constant, method=scheme)(x)) == 0)
    assert np.asarray(jg.grad(even_in_x0, method=scheme)(x))[0] == 0
    assert np.asarray(jg.grad(even_in_x0, method=scheme, with_error=True)(x).value)[0] == 0
    upper = jnp.asarray(np.triu(np.random.default_rng(0).normal(size=(12, 12))), dtype)
    jac = np.asarray(jg.jacobian(lambda v: jnp.tanh(upper @ v), method=scheme)(jnp.linspace(-1, 1, 12, dtype=dtype)))
    assert np.all(jac[np.tril(np.ones((12, 12), bool), -1)] == 0)  # row i depends on x_j for j ≥ i only
