"""step="auto": steps chosen per point and coordinate from f itself. Checked against analytic derivatives and
jax.grad, with the cost counted."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DTYPES
from test_accuracy import counting

import jaxgrad as jg


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def good(dtype):
    """A relative error a central order-2 difference at a well-chosen step reaches easily: 100·eps^(2/3)."""
    return 100 * float(jnp.finfo(dtype).eps) ** (2 / 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_seed_example_stays_exact(dtype):
    g = jg.grad(lambda x: x[0] ** 2 + x[1] ** 2, step="auto")(jnp.array([3.0, 4.0], dtype))
    assert g.dtype == dtype
    np.testing.assert_array_equal(np.asarray(g), [6.0, 8.0])


# x near 0 where f's length scale is x itself: the fixed default step (≈ eps^(1/3)) is as large as x
NEAR_ZERO = [
    ("log", jnp.log, lambda x: 1 / x),
    ("sqrt", jnp.sqrt, lambda x: 0.5 / np.sqrt(x)),
    ("reciprocal", lambda x: 1 / x, lambda x: -1 / x**2),
    ("x^1.5", lambda x: x**1.5, lambda x: 1.5 * np.sqrt(x)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "f", "df"), NEAR_ZERO, ids=[c[0] for c in NEAR_ZERO])
@pytest.mark.parametrize("x", [1e-3, 1e-5, 1e-8])
def test_small_scale_near_zero(dtype, name, f, df, x):
    point = jnp.asarray(x, dtype)
    exact = df(np.float64(point))
    assert rel(jg.grad(f, step="auto")(point), exact) <= good(dtype)


def test_the_fixed_default_fails_where_auto_does_not():
    """The issue's case: log at 1e-5 in float64 was 31% wrong with the fixed step."""
    x = jnp.asarray(1e-5, jnp.float64) if jax.config.jax_enable_x64 else jnp.asarray(1e-5)
    assert rel(jg.grad(jnp.log)(x), 1 / float(x)) > 0.1 or not jax.config.jax_enable_x64
    assert rel(jg.grad(jnp.log, step="auto")(x), 1 / float(x)) <= good(x.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_length_scale_of_its_own(dtype):
    """sin(x0·x1) at x0 = 100 oscillates in x1 with period 0.063; the fixed step comes from |x1| = 0.5."""

    def f(x):
        return jnp.sin(x[0] * x[1])

    x = jnp.array([100.0, 0.5], dtype)
    exact = np.array([0.5 * np.cos(50.0), 100 * np.cos(50.0)])
    fixed, auto = rel(jg.grad(f)(x), exact), rel(jg.grad(f, step="auto")(x), exact)
    assert auto <= good(dtype) and auto < fixed / 10


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("method", "order"), [("central", 2), ("central", 4), ("richardson", 6), ("forward", 2),
                                               ("backward", 2), ("complex", 2)])  # fmt: skip
def test_every_method_takes_auto(dtype, method, order):
    def f(x):
        return jnp.sum(jnp.sin(3 * x) * jnp.exp(x / 4))

    x = jnp.linspace(-1.0, 1.5, 6, dtype=dtype)
    exact = jax.grad(f)(x.astype(jnp.float64) if jax.config.jax_enable_x64 else x)
    assert rel(jg.grad(f, method=method, order=order, step="auto")(x), exact) <= good(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_grad_chunked_and_sharded_equal_grad(dtype):
    def f(x):
        return jnp.sum(jnp.log(x) * jnp.cos(7 * x))

    points = jnp.asarray(np.random.default_rng(0).uniform(1e-6, 2.0, (37, 3)), dtype)
    one_by_one = jnp.stack([jg.grad(f, step="auto")(p) for p in points])
    whole = jg.batch_grad(f, points, step="auto")
    chunked = jg.batch_grad(f, points, step="auto", chunk_size=5)
    sharded = jg.batch_grad(f, points, step="auto", sharding="auto")
    exact = jax.vmap(jax.grad(f))(points)
    tight = 64 * float(jnp.finfo(dtype).eps) * np.abs(np.asarray(exact)).max()
    for result in (whole, chunked, sharded):
        np.testing.assert_allclose(result, one_by_one, rtol=1e-3, atol=tight)
    assert np.median(np.abs(np.asarray(whole) - exact) / np.abs(np.asarray(exact))) <= good(dtype)


@pytest.mark.x64_independent
def test_a_pytree_mixing_float32_and_float64_leaves_steps_at_each_leafs_precision():
    """The procedure reads f's rounding at one precision per point: at float64's it read the float32 leaf's rounding
    as f''' and kept long steps 1% off with status OK, and compare (step="auto") reported a correct jax.grad as a
    MISMATCH at 4 of 200 points (from the review). Such a point takes the fixed steps, each leaf's own, and a step
    along a direction is taken at the least precise leaf's eps."""

    def loss(p):
        return jnp.sum(jnp.sin(p["a"]) * p["a"]) + jnp.sum(p["b"] ** 3)

    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        batch = {"a": jnp.asarray(rng.uniform(-3, 3, (200, 4)), jnp.float32),
                 "b": jnp.asarray(rng.uniform(-3, 3, (200, 2)), jnp.float64)}  # fmt: skip
        auto, fixed = jg.batch_grad(loss, batch, step="auto"), jg.batch_grad(loss, batch)
        exact = jax.vmap(jax.grad(loss))(batch)
        chex.assert_trees_all_equal(auto, fixed)
        assert float(jnp.max(jnp.abs(auto["a"] - exact["a"]))) < 1e-3  # was 0.178
        assert float(jnp.max(jnp.abs(auto["b"] - exact["b"]))) < 1e-8
        assert jg.compare(loss, batch).verdict == "OK"
        # a direction moves both leaves: its step at float32's eps (jvp was 32% off with auto, 6e-4 with the fixed
        # step at float64's; compare's directions said MISMATCH, 5e5 times the tolerance, for a correct gradient)
        point = jax.tree_util.tree_map(lambda leaf: leaf[0], batch)
        tangent = jax.tree_util.tree_map(jnp.ones_like, point)
        exact_jvp = float(jax.jvp(loss, (point,), (tangent,))[1])
        for step in (None, "auto"):
            numeric = float(jg.jvp(loss, (point,), (tangent,), step=step)[1])
            assert abs(numeric - exact_jvp) < 1e-4 * abs(exact_jvp), (step, numeric, exact_jvp)
        assert jg.compare(loss, batch, directions=4).verdict == "OK"
        bug = {"a": lambda a: jnp.cos(a) * a + 1.001 * jnp.sin(a), "b": lambda b: 3 * b**2}  # 0.1% off on a's sin
        wrong = jg.compare(loss, batch, directions=4, grad_fn=lambda p: {k: bug[k](p[k]) for k in p})
        assert wrong.verdict == "MISMATCH"


@pytest.mark.parametrize("dtype", DTYPES)
def test_jacobian_hessian_jvp_take_auto(dtype):
    def f(x):
        return jnp.sin(x[0] * x[1]) + jnp.log(x[2])

    x = jnp.array([100.0, 0.5, 1e-5], dtype)
    jac = jg.jacobian(lambda v: jnp.stack([f(v), v[0] * v[2]]), step="auto")(x)
    assert rel(jac[0], jax.grad(f)(x)) <= good(dtype)
    assert rel(jg.jvp(f, (x,), (jnp.array([0.0, 1.0, 0.0], dtype),), step="auto")[1], 100 * np.cos(50.0)) <= good(dtype)
    hessian_exact = np.array([[-0.25 * np.sin(50.0), np.cos(50.0) - 50 * np.sin(50.0), 0.0],
                              [np.cos(50.0) - 50 * np.sin(50.0), -1e4 * np.sin(50.0), 0.0],
                              [0.0, 0.0, -1e10]])  # fmt: skip
    fixed, auto = jg.hessian(f)(x), jg.hessian(f, step="auto")(x)
    bound = 100 * float(jnp.finfo(dtype).eps) ** 0.5  # theory: eps^(1/2)
    assert rel(auto, hessian_exact) <= bound and not rel(fixed, hessian_exact) <= bound  # fixed: NaN or off


@pytest.mark.parametrize(
    ("kwargs", "own", "climb"),
    [({}, 10, 0), ({"method": "central", "order": 4}, 20, 30), ({"method": "richardson"}, 30, 40),
     ({"method": "forward"}, 6, 0), ({"with_error": True}, 21, 0), ({"order": 4, "with_error": True}, 31, 0),
     ({"method": "complex"}, 5, 0)],
)  # fmt: skip
def test_auto_costs_what_num_evaluations_says(kwargs, own, climb):
    """d = 5: the method's own evaluations, the scout's 4d + 1 and the long step's trial: for central order 2 none
    beyond its own evaluation (its reference is on the scout line), above it the reference at the balanced step (K·d
    for K offsets) and the stencil at half the long step, whose new points are x ± h_i/2 (2·d) for central order 4
    and Richardson 6; none with the error estimate, which does not climb."""
    counter = []
    f = counting(lambda v: jnp.sum(jnp.sin(v)), counter)
    jax.block_until_ready(jg.grad(f, step="auto", **kwargs)(jnp.ones(5)))
    jax.effects_barrier()
    scout = 0 if kwargs.get("method") == "complex" else 4 * 5 + 1
    assert len(counter) == own + scout + climb == jg.num_evaluations(5, step="auto", **kwargs)
    if kwargs.get("method", "central") in ("central", "richardson") and not kwargs.get("with_error"):
        assert len(counter) <= 4 * own  # the target: at most 4× the same method's fixed step
    if not kwargs:
        assert len(counter) <= 4 * jg.num_evaluations(5)  # and 4× the fixed default


POLYNOMIALS = [("central", 2), ("central", 4), ("richardson", 6)]


def median_error(g, exact):
    """The median over points of |g − exact| / |exact| (rows are points)."""
    g, exact = np.asarray(g, np.float64), np.asarray(exact, np.float64)
    return float(np.median(np.linalg.norm(g - exact, axis=1) / np.linalg.norm(exact, axis=1)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("method", "order"), POLYNOMIALS)
def test_the_long_step_where_no_truncation_is_left(dtype, method, order):
    """sum x_i^4 − x_i^2 (degree 4: no truncation for central 4 and Richardson; central 2 keeps its third derivative
    and its balance) and sum x_i^2 (no truncation for any): the long step's error is rounding, 2-3 eps (against the
    analytic gradient); the fixed step's is at the balance, eps^(p/(p+1)): 6-250 eps in float32, 90-140,000 in
    float64."""
    eps = float(jnp.finfo(dtype).eps)
    x = jnp.asarray(np.random.default_rng(3).uniform(-4, 4, (64, 8)), dtype)
    for f, df, exact_for in ((lambda v: jnp.sum(v**2), lambda v: 2 * v, 2),
                             (lambda v: jnp.sum(v**4 - v**2), lambda v: 4 * v**3 - 2 * v, 4)):  # fmt: skip
        if order < exact_for:
            continue
        exact = df(np.asarray(x, np.float64))
        auto, fixed = (median_error(jg.batch_grad(f, x, method=method, order=order, step=step), exact)
                       for step in ("auto", None))  # fmt: skip
        assert auto <= 8 * eps and 2 * auto <= fixed


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_error_estimate_does_not_climb_and_covers_the_climbed_gradient(dtype):
    """Rosenbrock (degree 4), central order 4: with the error estimate the balanced steps stay (every point OK, the
    estimate covering the error on ≥ 99% of coordinates, jax.grad as the reference), and the gradient at the long
    step lies within that estimate of it, closer to jax.grad."""
    f = jg.functions.rosenbrock
    x = jnp.asarray(f.sample(64, 8, seed=5), dtype)
    e = jg.batch_grad(f, x, method="central", order=4, step="auto", with_error=True)
    climbed = np.asarray(jg.batch_grad(f, x, method="central", order=4, step="auto"), np.float64)
    exact = np.asarray(jax.vmap(jax.grad(f))(jnp.asarray(np.asarray(x, np.float64))))
    value, error = np.asarray(e.value, np.float64), np.asarray(e.error, np.float64)
    assert np.all(np.asarray(e.status) == jg.Status.OK)
    assert np.mean(np.abs(value - exact) <= error) >= 0.99
    assert np.mean(np.abs(climbed - value) <= error) >= 0.99
    assert 4 * median_error(climbed, exact) <= median_error(value, exact)


def test_the_long_step_is_refused_where_truncation_is_left():
    """sin on [-3, 3]: the long step (|x|/2 up to 1.5) is far from exact for sin; every method stays at the balance's
    accuracy (within 3× the fixed step's, which suits sin's length scale 1)."""
    x = jnp.asarray(np.random.default_rng(4).uniform(-3, 3, (64, 4)))
    exact = np.cos(np.asarray(x, np.float64))
    for method, order in POLYNOMIALS:
        auto, fixed = (median_error(jg.batch_grad(lambda v: jnp.sum(jnp.sin(v)), x, method=method, order=order,
                                                  step=step), exact) for step in ("auto", None))  # fmt: skip
        assert auto <= 3 * fixed


STYBLINSKI = ("styblinski_tang", "central", 4)
HALF_CHECKED = {
    "float32": [("logsumexp", "central", 4, 41), ("beale", "richardson", 6, 41), (*STYBLINSKI, 1)],
    "float64": [("beale", "richardson", 6, 41), (*STYBLINSKI, 41), (*STYBLINSKI, 1)],
}


@pytest.mark.parametrize(("dtype", "name", "method", "order", "seed"),
                         [(dtype, *case) for dtype in DTYPES for case in HALF_CHECKED[dtype]])  # fmt: skip
def test_the_long_step_is_checked_at_half_of_it(dtype, name, method, order, seed):
    """Above order 2 the long step H must also agree with the method at H/2 (or H/2 alone with the reference), the
    rounder of the two is kept, and the rounding bounds take f's measured noise: the median error over 100 points is
    within 2.1× that of the best of seven fixed steps per point, 2^k·max(|x|, 1) for k = −7..−1. Before (8d5ee01):
    log-sum-exp in float32 with central 4 3.3× (its truncation at H hid within the reference's rounding bound), Beale
    with Richardson 6 3.1× (float32) and 2.5× (float64), Styblinski-Tang with central 4 in float64 2.3× at one sample
    (a quartic whose values at x ± 2H dwarf f near x) and about 100× at another, whose sums of large terms cancel: the
    reference's actual rounding exceeded eps·|f| and the long step was refused on half the points."""
    f = jg.functions.BUILTINS[name]
    x64 = f.sample(100, f.default_dim, seed=seed)
    exact = np.asarray(jax.vmap(jax.grad(f))(jnp.asarray(x64)), np.float64)
    x = jnp.asarray(x64, dtype)

    def errors(step):
        g = np.asarray(jg.batch_grad(f, x, method=method, order=order, step=step), np.float64)
        return np.linalg.norm(g - exact, axis=1) / np.linalg.norm(exact, axis=1)

    best = np.min([errors(jg.Relative(2.0**k)) for k in range(-7, 0)], axis=0)
    assert np.median(errors("auto")) <= 2.1 * np.median(best)


@pytest.mark.x64_independent  # float32 throughout
def test_a_jacobian_column_takes_half_the_long_step_when_one_output_needs_it():
    """A Jacobian's outputs share each column's step: a quartic next to sum sin(x) (central 8, float32). Where sin's
    truncation at H fails the half step's check, H/2 is taken where it agrees with the reference, so the quartic's
    row keeps a median error within 4× that of the quartic's own gradient (before: the balanced step, 5×, and 9×
    with the half step's check alone). In float64 sin's truncation shows at H/2 too: the column keeps the balanced
    step, and the quartic's row is about 100× less accurate than its own gradient, as with any shared step."""
    dtype = "float32"
    quartic = lambda v: jnp.sum(v**4 - 16 * v**2 + 5 * v)  # noqa: E731
    x = jnp.asarray(np.random.default_rng(2).uniform(-3, 3, (100, 5)), dtype)
    exact = 4 * np.asarray(x, np.float64) ** 3 - 32 * np.asarray(x, np.float64) + 5
    jac = jax.vmap(jg.jacobian(lambda v: jnp.stack([quartic(v), jnp.sum(jnp.sin(v))]), order=8, step="auto"))(x)
    own = jg.batch_grad(quartic, x, order=8, step="auto")
    row, alone = (np.median(np.abs(np.asarray(g, np.float64) - exact)) for g in (jac[:, 0], own))
    assert row <= 4 * alone


def test_auto_costs_in_hessian_and_jvp():
    counter = []
    f = counting(lambda v: jnp.sum(jnp.sin(v)) * v[0], counter)
    jax.block_until_ready(jg.hessian(f, step="auto")(jnp.ones(4)))
    jax.effects_barrier()
    assert len(counter) == 2 * 4**2 + 1 + 4 * 4 + 1
    counter.clear()
    jax.block_until_ready(jg.jvp(f, (jnp.ones(50),), (jnp.ones(50),), step="auto"))
    jax.effects_barrier()
    assert len(counter) == 2 + 1 + 4 + 1  # the stencil, f(x) and the scout line


def test_no_retrace_on_a_second_call_of_the_same_shape():
    traces = []

    def f(x):
        traces.append(1)  # runs only while JAX traces f
        return jnp.sum(jnp.cos(x) / (1 + x**2))

    grad = jg.grad(f, step="auto")
    grad(jnp.arange(3.0))
    first = len(traces)
    grad(jnp.arange(3.0) + 1)
    jg.grad(f, step="auto")(jnp.ones(3))  # a new transformation of the same f shares the program
    assert len(traces) == first
    jg.batch_grad(f, jnp.ones((4, 3)), step="auto")
    batch = len(traces)
    jg.batch_grad(f, jnp.zeros((4, 3)), step="auto")
    assert len(traces) == batch


def test_chex_sees_one_trace_per_stage():
    @chex.assert_max_traces(n=2)  # the scout's vmap and the stencil's
    def f(x):
        return jnp.sum(jnp.cos(x) / (1 + x**2))

    grad = jg.grad(f, step="auto")
    grad(jnp.arange(3.0))
    grad(jnp.arange(3.0) + 1)
    chex.clear_trace_counter()


def test_auto_is_a_step_rule_and_an_error_names_it():
    assert jg.grad(jnp.sin, step=jg.AutoStep())(jnp.array(0.5)) == jg.grad(jnp.sin, step="auto")(jnp.array(0.5))
    with pytest.raises(ValueError, match="'auto'"):
        jg.grad(jnp.sin, step="automatic")


def test_step_study_overlays_the_chosen_steps():
    f = jg.functions.rastrigin
    study = jg.step_study(f, f.sample(100, 4, seed=3, dtype="float32"), dtypes=("float32",))
    (curve,) = study.curves
    assert curve.auto_share.shape == curve.steps.shape and abs(curve.auto_share.sum() - 1) < 1e-9
    best = study.best()[0]
    # the per-point choice is within 3x of the best single step of the grid, and far better than the fixed step
    assert best.auto_error <= 3 * best.best_error and best.auto_error < best.default_error / 10
    assert {"auto_share"} <= set(study.rows()[0])


def test_a_kink_inside_the_stencil_is_not_a_mismatch():
    """The issue's case: i0e has a kink at 0; at one point next to it jax.grad gives the one-sided 0.9996 and the
    fixed step's difference straddles the kink (0.069)."""

    def f(x):
        return jnp.sum(jax.scipy.special.i0e(x))

    points = jnp.asarray(np.random.default_rng(0).uniform(-10, 10, (2000, 4)), jnp.float32)
    assert jg.compare(f, points, reference=False).ok  # step="auto" steps around the kink
    fixed = jg.compare(f, points, reference=False, step=None)
    assert fixed.ok and fixed.kinked.sum() >= 1 and (~fixed.passed).sum() == fixed.kinked.sum()
    wrong = jg.compare(f, points, reference=False, grad_fn=lambda x: 1.01 * jax.grad(f)(x))
    assert not wrong.ok  # a wrong gradient is still a mismatch


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_complex_step_flags_functions_that_are_not_complex_safe(dtype):
    """softplus is not complex-safe: the complex step is 100% off with an estimate that says nothing. A real
    difference along one direction (4 evaluations) catches it: Status.NOT_ANALYTIC."""
    w = jnp.asarray(np.random.default_rng(0).normal(size=(6, 4)), dtype)

    def mlp(x):
        return jnp.sum(jax.nn.softplus(w @ x))

    points = jnp.asarray(np.random.default_rng(1).normal(size=(200, 4)), dtype)
    bad = jg.batch_grad(mlp, points, method="complex", with_error=True)
    exact = jax.vmap(jax.grad(mlp))(points)
    wrong = np.linalg.norm(np.asarray(bad.value) - np.asarray(exact), axis=1) > 0.1 * np.linalg.norm(exact, axis=1)
    assert wrong.mean() > 0.9 and np.all(np.asarray(bad.status)[wrong] == jg.Status.NOT_ANALYTIC)
    good = jg.batch_grad(lambda x: jnp.sum(jnp.sin(w @ x)), points, method="complex", with_error=True)
    assert np.all(np.asarray(good.status) == jg.Status.OK)


def test_complex_step_error_estimate_costs_d_plus_eight_evaluations_more():
    """h, 2h and f(x) (2d + 1), the shifted point for the rounding inside f (d), the real check (4 along each of
    2 directions)."""
    counter = []
    f = counting(lambda v: jnp.sum(jnp.sin(v)), counter)
    jax.block_until_ready(jg.grad(f, method="complex", with_error=True)(jnp.ones(5)))
    jax.effects_barrier()
    assert len(counter) == 3 * 5 + 1 + 8 == jg.num_evaluations(5, method="complex", with_error=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_complex_step_error_covers_the_rounding_inside_f(dtype):
    """Rastrigin's 10·cos(2πx) at |x| ≤ 5.12: 2πx rounds by eps·|2πx|, so the complex step (exact to the step) is off
    by about eps·|x|·|f''| ≈ 15 eps relative in float32, where its own estimate used to say 4 eps (10% of the
    coordinates were above it). Against jax.grad in float64, the error is now within the estimate at ≥ 99% of the
    coordinates (analytic gradient in NumPy float64), and never above 10× it; a function that is not complex-safe
    gets an infinite error."""
    f = jg.functions.BUILTINS["rastrigin"]
    p64 = f.sample(300, 4, seed=7)
    exact = 2 * p64 + 20 * np.pi * np.sin(2 * np.pi * p64)  # analytic, in NumPy float64
    e = jg.batch_grad(f, jnp.asarray(p64, dtype), method="complex", with_error=True)
    error = np.abs(np.asarray(e.value, np.float64) - exact)
    estimate = np.asarray(e.error, np.float64)
    assert np.mean(error <= estimate) >= 0.99 and np.all(error <= 10 * estimate)
    assert np.all(np.asarray(e.status) == jg.Status.OK)
    softplus = jg.grad(lambda x: jnp.sum(jax.nn.softplus(x)), method="complex", with_error=True)(jnp.ones(3, dtype))
    assert int(softplus.status) == jg.Status.NOT_ANALYTIC and np.all(np.isinf(np.asarray(softplus.error)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("kwargs", "power"), [({}, 2), ({"order": 4}, 4)])
def test_the_climb_in_coordinate_blocks(dtype, kwargs, power):
    """d = 64 within 30 kB, a few coordinates at a time: the scout, the reference and the long step's trial in blocks
    still take the long step where no truncation is left (x_i^power, analytic gradient: the median coordinate's
    error 8-13 eps; in float32 about 5% of the coordinates stay at the balanced step, f's sum of 64 terms rounding
    above eps·|f|) and not where there is (sin on three coordinates), as the whole stencil does (that one rounds f's
    sum in another order, so the two agree to rounding, not bit for bit), for gradients and a Jacobian's rows."""

    def f(v):
        return jnp.sum(v**power) + jnp.sum(jnp.sin(v[:3]))

    x = np.random.default_rng(0).uniform(-3, 3, (2, 64)).astype(dtype)
    exact = power * np.asarray(x, np.float64) ** (power - 1)
    exact[:, :3] += np.cos(np.asarray(x[:, :3], np.float64))
    plan = jg._batching.plan(jnp.asarray(x), jg.AutoStep(), 30_000, fun=f, scheme=jg.Central(power))
    assert plan.block is not None and plan.block < 64  # the blocked path is the one tested
    rows = jg.jacobian(lambda v: jnp.stack([f(v), 2 * f(v)]), step="auto", memory_budget=30_000, **kwargs)(x[1])

    def coordinate_error(g):  # the median over the polynomial coordinates of |g − exact| / |exact|
        return float(np.median(np.abs(np.asarray(g, np.float64)[:, 3:] - exact[:, 3:]) / np.abs(exact[:, 3:])))

    eps, fixed = float(jnp.finfo(dtype).eps), coordinate_error(jg.batch_grad(f, x, **kwargs))
    for g in (jg.batch_grad(f, x, step="auto", memory_budget=30_000, **kwargs), jg.batch_grad(f, x, step="auto",
              **kwargs), np.stack([jg.batch_grad(f, x[:1], step="auto", **kwargs)[0], rows[0]])):  # fmt: skip
        climbed = coordinate_error(g)
        assert climbed <= 32 * eps and 4 * climbed <= fixed
        assert rel(g[:, :3], exact[:, :3]) <= good(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("method", "order"), POLYNOMIALS)
def test_the_long_step_is_refused_where_it_rounds_more(dtype, method, order):
    """sum x_i² next to its minimum (|x| ≤ 1e-3): at the long step, 1/2, the values are 0.25, far above f near x,
    and their rounding swamps the gradient; the balanced step stays, as accurate as without the climb (the long step
    there was 4-380 times less accurate than the fixed step, float32 and float64)."""
    x = jnp.asarray(np.random.default_rng(8).uniform(-1e-3, 1e-3, (32, 4)), dtype)
    exact = 2 * np.asarray(x, np.float64)
    auto, fixed = (median_error(jg.batch_grad(lambda v: jnp.sum(v**2), x, method=method, order=order, step=step),
                                exact) for step in ("auto", None))  # fmt: skip
    assert auto <= 2 * fixed + 4 * float(jnp.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_long_step_is_refused_where_the_reference_is_not_resolved(dtype):
    """Saturated functions (sigmoid at 20, tanh at 10 in float32; sigmoid at 40 in float64): f rounds to the same
    value all along the scout line, the reference derivative is 0 within a rounding bound far above the true one,
    and the long step's truncation would pass for a derivative 190 times the true one (reviewed: 3.9e-7 for
    sigmoid'(20) = 2.1e-9). step="auto" gives what the fixed step gives (the balanced one here), within its
    rounding, 10·eps^(2/3) at most, of the truth."""
    x = jnp.asarray([20.0, 10.0] if dtype == "float32" else [40.0, 30.0], dtype)
    for f in (jax.nn.sigmoid, jnp.tanh):
        auto, fixed = (jax.vmap(jg.grad(f, step=step))(x) for step in ("auto", None))
        exact = np.asarray(jax.vmap(jax.grad(f))(jnp.asarray(np.asarray(x, np.float64))))
        np.testing.assert_array_equal(auto, fixed)
        assert np.all(np.abs(np.asarray(auto, np.float64) - exact) <= 10 * float(jnp.finfo(dtype).eps) ** (2 / 3))
