"""Accuracy methods: higher orders, Richardson, complex step, error estimates and status, Jacobian, Hessian, JVP."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import zoo
from conftest import DTYPES, autodiff, step_of

import jaxgrad as jg
from jaxgrad import functions

# Functions whose derivatives scale like their values (where eps^(1/(p+1))·max(|x|, 1) is the right step) and that
# are written with complex-safe operations; tests/accuracy_report.py reports every function, these included.
SMOOTH = [functions.sphere, functions.rosenbrock, functions.styblinski_tang, functions.beale, functions.himmelblau,
          zoo.log_norm, zoo.xlogy_mix, zoo.expit_chain]  # fmt: skip
BOUNDS = {  # the medians, per dtype
    ("float64", "central", 4): 1e-12,
    ("float64", "central", 6): 1e-13,
    ("float64", "richardson", 6): 1e-13,
    ("float64", "complex", 2): 1e-14,
    ("float32", "central", 4): 1e-5,
}


def points_for(f, n, dtype, seed=41):
    if isinstance(f, functions.BuiltinFunction):
        return f.sample(n, f.default_dim, seed=seed, dtype=dtype)
    return zoo.sample(n, 6, dtype, seed=seed)


def median_rel(f, method, order, dtype, n=1000):
    points = points_for(f, n, "float64")
    exact = np.asarray(autodiff(jax.grad, f)(jnp.asarray(points, DTYPES[-1])), np.float64)
    g = np.asarray(jg.batch_grad(f, jnp.asarray(points.astype(dtype)), method=method, order=order), np.float64)
    return float(np.median(np.linalg.norm(g - exact, axis=1) / np.linalg.norm(exact, axis=1)))


@pytest.mark.parametrize(("dtype", "method", "order"), [k for k in BOUNDS if k[0] in DTYPES])
def test_higher_order_methods_meet_their_bounds(dtype, method, order):
    medians = [median_rel(f, method, order, dtype) for f in SMOOTH]
    assert np.median(medians) <= BOUNDS[(dtype, method, order)], medians
    assert max(medians) <= 10 * BOUNDS[(dtype, method, order)], medians


def test_error_shrinks_as_the_order_grows():
    dtype = DTYPES[-1]
    errors = [median_rel(functions.rosenbrock, "central", p, dtype, n=200) for p in (2, 4, 6)]
    assert errors[0] > errors[1] > errors[2] and errors[0] > 5 * errors[2], errors


# ----------------------------------------------------------------------------------------------- error estimates
CASES = [*functions.BUILTINS.values(), *zoo.CORRECT.values()]


@pytest.mark.parametrize("f", CASES, ids=[getattr(f, "name", None) or f.__name__ for f in CASES])
def test_error_estimate_bounds_the_true_error(f, dtype):
    """At ≥ 95% of points the estimate is at least the actual error, and at ≥ 90% at most 100 times it."""
    points = points_for(f, 500, "float64", seed=43)
    exact = np.asarray(autodiff(jax.grad, f)(jnp.asarray(points, DTYPES[-1])), np.float64)
    est = jg.batch_grad(f, jnp.asarray(points.astype(dtype.name)), with_error=True)
    actual = np.linalg.norm(np.asarray(est.value, np.float64) - exact, axis=1)
    estimated = np.linalg.norm(np.asarray(est.error, np.float64), axis=1)
    assert np.mean(estimated >= actual) >= 0.95
    assert np.mean(estimated <= 100 * actual) >= 0.90
    assert est.status.shape == (500,) and est.status.dtype == jnp.int8


KINKS = {  # a function, a point with a kink in one coordinate, a point where it is smooth
    "abs": (lambda v: jnp.sum(jnp.abs(v)), [0.0, 0.5, 1.5], [0.3, 0.5, 1.5]),
    "relu": (lambda v: jnp.sum(jnp.maximum(v, 0.0)), [0.7, 0.0, -1.0], [0.7, 0.2, -1.0]),
    "abs shifted": (lambda v: jnp.sum(jnp.abs(v - 1.0)), [0.5, -2.0, 1.0], [0.5, -2.0, 1.5]),
}


@pytest.mark.parametrize("name", list(KINKS))
def test_kinks_are_flagged(name, dtype):
    fun, kinked, smooth = KINKS[name]
    est = jg.batch_grad(fun, jnp.asarray([kinked, smooth], dtype), with_error=True)
    assert np.asarray(est.status).tolist() == [jg.Status.NOT_SMOOTH, jg.Status.OK]


def test_a_kink_inside_the_stencil_is_within_the_error_estimate(dtype):
    # relu with its kink δ < h from x: the central difference is off by (h − δ)/(2h) (0.375 at δ = h/4), where the
    # Richardson estimate saw 0.0665 and the smoothness test flagged only δ < h/5 (the status read OK)
    fun = lambda v: jnp.sum(jax.nn.relu(v)) + 0.1 * jnp.sum(v**2)  # noqa: E731
    h = float(step_of(np.array([0.7, 0.0, -1.0], dtype))[1])
    offsets = np.array([1 / 8, 1 / 4, 3 / 8, 1 / 2, 5 / 8, 3 / 4, 7 / 8]) * h
    points = np.tile(np.array([0.7, 0.0, -1.0]), (len(offsets), 1))
    points[:, 1] = offsets
    est = jg.batch_grad(fun, jnp.asarray(points, dtype), with_error=True)
    actual = np.abs(np.asarray(est.value, np.float64) - ((points > 0) + 0.2 * points))
    assert np.all(np.asarray(est.error, np.float64) >= actual), (actual[:, 1], np.asarray(est.error)[:, 1])
    along = jax.jit(lambda x: jg.jvp(fun, (x,), (jnp.asarray([0.0, 1.0, 0.0], dtype),), with_error=True)[1])
    for point, error in zip(points, actual[:, 1], strict=True):  # along a direction (the error was 0.0999 at h/4)
        est = along(jnp.asarray(point, dtype))
        assert float(est.error) >= error, (point[1] / h, float(est.value), float(est.error))
    # and over a float32/float64 batch of 100 coordinates, some near their kink: no point reads OK beyond its estimate
    points = np.random.default_rng(0).standard_normal((300, 100)).astype(dtype)
    est = jg.batch_grad(fun, jnp.asarray(points), with_error=True)
    ratio = np.abs(np.asarray(est.value, np.float64) - ((points > 0) + 0.2 * points.astype(np.float64)))
    ratio = ratio / np.asarray(est.error, np.float64)
    ok = np.asarray(est.status) == jg.Status.OK
    assert np.max(ratio[ok]) < 1.5, float(np.max(ratio[ok]))  # float32: 1.006 at 1,000 points (6.9 before)


def test_status_codes(dtype):
    f = functions.sphere
    x = jnp.asarray([[0.3, 0.5], [np.nan, 1.0], [0.0, 0.0]], dtype)
    status = np.asarray(jg.batch_grad(f, x, with_error=True).status)
    assert status.tolist() == [jg.Status.OK, jg.Status.NONFINITE, jg.Status.IMPRECISE]
    assert int(jg.grad(lambda v: jnp.sum(jnp.abs(v)), with_error=True)(jnp.zeros(3, dtype)).status) == (
        jg.Status.NOT_SMOOTH
    )


def test_estimate_is_a_pytree_through_jit_and_vmap():
    f = functions.rosenbrock
    x = jnp.asarray(f.sample(8, 3, seed=1, dtype=DTYPES[-1]))
    est = jax.jit(jax.vmap(jg.grad(f, with_error=True)))(x)
    assert isinstance(est, jg.Estimate) and est.value.shape == est.error.shape == (8, 3) and est.status.shape == (8,)
    tree = {"a": jnp.ones(2, DTYPES[-1]), "b": jnp.ones((2, 2), DTYPES[-1])}
    est = jg.grad(lambda t: jnp.sum(t["a"] ** 2) + jnp.sum(jnp.sin(t["b"])), with_error=True)(tree)
    assert jax.tree_util.tree_structure(est.error) == jax.tree_util.tree_structure(tree)


# ---------------------------------------------------------------------------------------------------- complex step
def test_complex_step_refuses_functions_that_drop_the_imaginary_part():
    with pytest.raises(ValueError, match="returned a real value"):
        jg.grad(lambda v: jnp.sum(jnp.abs(v)), method="complex")(jnp.ones(3))


def test_complex_step_explains_functions_that_cannot_take_complex_input():
    import jax.scipy.special as jsp

    with pytest.raises(TypeError, match="cannot take complex input"):
        jg.grad(lambda v: jnp.sum(jsp.erf(v)), method="complex")(jnp.ones(3))


def test_complex_step_is_exact_to_rounding_where_central_is_not(dtype):
    x = jnp.asarray([0.7, -1.3, 2.1], dtype)
    f = lambda v: jnp.sum(jnp.exp(v) * jnp.sin(v))  # noqa: E731
    exact = np.asarray(jnp.exp(x) * (jnp.sin(x) + jnp.cos(x)), np.float64)
    complex_err = np.abs(np.asarray(jg.grad(f, method="complex")(x), np.float64) - exact) / np.abs(exact)
    central_err = np.abs(np.asarray(jg.grad(f)(x), np.float64) - exact) / np.abs(exact)
    eps = np.finfo(dtype).eps
    assert complex_err.max() <= 8 * eps and central_err.max() > 8 * eps


def test_complex_step_check_does_not_refuse_a_right_value_where_f_sums_large_terms(dtype):
    """complex_checked compares the complex step with one real difference along a direction, allowing for f's
    rounding: f rounds like its terms, not like its value (Styblinski-Tang sums 0.5·x⁴ and −16·x² that cancel).
    With max |f| alone it refused 39 of 20,000 right values in float64 (error inf, NOT_ANALYTIC)."""
    f = functions.styblinski_tang
    x = jnp.asarray(f.sample(2000, 8, seed=0, dtype=dtype.name))
    est = jax.vmap(jg.grad(f, method="complex", with_error=True))(x)
    exact = np.asarray(autodiff(jax.grad, f)(x), np.float64)
    assert np.all(np.asarray(est.status) == jg.Status.OK)
    assert np.all(np.abs(np.asarray(est.value, np.float64) - exact) <= np.asarray(est.error, np.float64))


def test_complex_step_check_refuses_a_function_that_is_not_complex_safe_at_every_point(dtype):
    """softplus compares the real part, so its complex step is 0.4 to 1.2 off; along one direction errors in
    several coordinates cancelled at 27 of 10,000 points in float32 (status OK, the value confidently wrong). Along
    two, every point is refused."""
    x = jnp.asarray(zoo.sample(10_000, 6, dtype.name, seed=21))
    est = jax.jit(jax.vmap(jg.grad(zoo.softplus_ridge, method="complex", with_error=True)))(x)
    assert np.all(np.asarray(est.status) == jg.Status.NOT_ANALYTIC)


def test_complex_step_check_allows_for_terms_of_f_that_cancel(dtype):
    """tanh(a) + tanh(b) with a ≈ −b ≥ 4: f is ~0, its terms ±1; the real difference the check takes rounds like
    the terms, which the noise of its four values shows. Allowing only for |f| and Σ|g_j x_j| it refused right
    values at 782 (float32) and 471 (float64) of 20,000 points on [-10, 10]²; now 339 and 87. Wherever the status is
    OK, the value is right within its error estimate."""
    f = lambda v: jnp.sum(jnp.tanh(v))  # noqa: E731
    x = np.random.default_rng(5).uniform(-10, 10, (20_000, 2)).astype(dtype)
    est = jax.jit(jax.vmap(jg.grad(f, method="complex", with_error=True)))(jnp.asarray(x))
    status = np.asarray(est.status)
    assert np.mean(status == jg.Status.NOT_ANALYTIC) < (0.02 if dtype == np.float32 else 0.005)
    true = 1 / np.cosh(x.astype(np.float64)) ** 2
    ok = status == jg.Status.OK
    error = np.abs(np.asarray(est.value, np.float64) - true)
    assert np.all(error[ok] <= np.asarray(est.error, np.float64)[ok])


def test_complex_step_error_covers_rounding_through_values_of_size_one(dtype):
    """log(cosh(x)) near 0: XLA's complex cosh computes Im = sinh(x)·sin(h) through e^x ≈ 1, off by eps/|x| relative
    (0.7% in float32 at |x| ≈ 1e-5). The error estimate takes the rounding of f's arguments to be eps·max(|x|, 1); with
    eps·|x| 95% of these coordinates were above it, status OK."""
    f = lambda v: jnp.sum(jnp.log(jnp.cosh(v)))  # noqa: E731
    x = np.random.default_rng(7).uniform(-1e-3, 1e-3, (1000, 3)).astype(dtype)
    est = jax.jit(jax.vmap(jg.grad(f, method="complex", with_error=True)))(jnp.asarray(x))
    ok = np.asarray(est.status) == jg.Status.OK
    assert ok.mean() > 0.9
    error = np.abs(np.asarray(est.value, np.float64) - np.tanh(x.astype(np.float64)))
    assert np.all(error[ok] <= np.asarray(est.error, np.float64)[ok])


# ------------------------------------------------------------------------------------------ Jacobian, Hessian, JVP
def test_hessian_matches_jax_hessian_and_is_symmetric(dtype):
    f = functions.rosenbrock
    x = jnp.asarray(f.sample(50, 4, seed=2, dtype=dtype.name))
    hess = np.asarray(jax.vmap(jg.hessian(f))(x), np.float64)
    exact = np.asarray(autodiff(jax.hessian, f)(jnp.asarray(x, DTYPES[-1])), np.float64)
    np.testing.assert_array_equal(hess, np.swapaxes(hess, 1, 2))
    rel = np.linalg.norm((hess - exact).reshape(50, -1), axis=1) / np.linalg.norm(exact.reshape(50, -1), axis=1)
    assert np.median(rel) <= 100 * np.finfo(dtype).eps ** 0.5  # theory: eps^(1/2)


def test_jacobian_matches_jacfwd(dtype):
    def vector(v):
        return jnp.stack([jnp.sin(v[0] * v[1]), jnp.exp(v[1]) - v[2] ** 2, v[0] + v[1] * v[2]])

    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (40, 3)), dtype)
    jac = np.asarray(jax.vmap(jg.jacobian(vector))(x), np.float64)
    exact = np.asarray(jax.vmap(jax.jacfwd(vector))(jnp.asarray(x, DTYPES[-1])), np.float64)
    assert jac.shape == (40, 3, 3)
    assert np.max(np.abs(jac - exact)) <= 100 * np.finfo(dtype).eps ** (2 / 3)


def test_pytree_layouts_match_jax():
    tree = {"a": jnp.ones((2, 3)) * 0.3, "b": jnp.arange(2.0)}

    def loss(t):
        return jnp.sum(jnp.sin(t["a"])) * jnp.sum(t["b"] ** 2 + 1)

    def vector(t):
        return {"p": t["a"] * t["b"][:, None], "q": jnp.sum(t["b"])}

    for ours, theirs in ((jg.hessian(loss)(tree), jax.hessian(loss)(tree)), (jg.jacobian(vector)(tree),
                                                                             jax.jacfwd(vector)(tree))):  # fmt: skip
        assert jax.tree_util.tree_structure(ours) == jax.tree_util.tree_structure(theirs)
        for a, b in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(theirs), strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=100 * float(np.finfo(a.dtype).eps) ** 0.5)


def test_jvp_is_the_directional_derivative(dtype):
    f = functions.rosenbrock
    x = jnp.asarray(f.sample(1, 6, seed=3, dtype=dtype.name)[0])
    v = jnp.asarray(np.random.default_rng(1).normal(size=6), dtype)
    exact = float(jnp.dot(jax.grad(f)(jnp.asarray(x, DTYPES[-1])), jnp.asarray(v, DTYPES[-1])))
    assert abs(float(jg.jvp(f, (x,), (v,))[1]) - exact) <= 100 * np.finfo(dtype).eps ** (2 / 3) * abs(f(x))


# ----------------------------------------------------------------------------------------------------------- costs
def counting(fun, counter):
    def counted(x):
        jax.debug.callback(lambda leaf: counter.append(1), jax.tree_util.tree_leaves(x)[0])
        return fun(x)

    return counted


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, 10),
        ({"method": "forward"}, 6),
        ({"method": "central", "order": 4}, 20),
        ({"method": "richardson"}, 30),
        ({"method": "complex"}, 5),
        ({"with_error": True}, 21),
    ],
)
def test_evaluation_counts(kwargs, expected):
    counter = []
    f = counting(lambda v: jnp.sum(jnp.sin(v)), counter)
    jax.block_until_ready(jg.grad(f, **kwargs)(jnp.ones(5)))
    jax.effects_barrier()
    method = {k: v for k, v in kwargs.items() if k in ("method", "order", "with_error")}
    assert len(counter) == expected == jg.num_evaluations(5, **method)


def test_hessian_and_jvp_counts():
    counter = []
    f = counting(lambda v: jnp.sum(jnp.sin(v)) * v[0], counter)
    jax.block_until_ready(jg.hessian(f)(jnp.ones(4)))
    jax.effects_barrier()
    assert len(counter) == 2 * 4**2 + 1
    counter.clear()
    jax.block_until_ready(jg.jvp(f, (jnp.ones(50),), (jnp.ones(50),)))
    jax.effects_barrier()
    assert len(counter) == 2 + 1  # the stencil and f(x), whatever the dimension
