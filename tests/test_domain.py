"""Domain safety (issue 12, item 3): where a stencil point leaves f's domain (NaN/Inf) while f(x) is finite, the
coordinate is repaired with a one-sided stencil away from the edge instead of returning NaN. Checked against analytic
derivatives, float32 and float64, grad and batch_grad (chunked), with the statuses of `with_error`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DTYPES, step_of

import jaxgrad as jg


def sum_sqrt(x):
    return jnp.sum(jnp.sqrt(x))


def sum_log(x):
    return jnp.sum(jnp.log(x))


def sum_arcsin(x):
    return jnp.sum(jnp.arcsin(x))


def arcsine_cdf(x):  # the Beta(1/2, 1/2) cdf, (2/π)·arcsin(√x): NaN above 1
    return jnp.sum(jax.scipy.special.betainc(0.5, 0.5, x))


# (name, f, exact gradient (float64), point by dtype): the default step (eps^(1/3): 5e-3 in float32, 6e-6 in float64)
# leaves the domain at x[0]; near 1, float32 cannot resolve a slope at 1e-6 from the edge (eps·|f| / h swamps it)
CASES = [
    ("sqrt near 0", sum_sqrt, lambda x: 0.5 / np.sqrt(x), {"float32": [1e-6, 4.0], "float64": [1e-6, 4.0]}),
    ("log near 0", sum_log, lambda x: 1 / x, {"float32": [1e-6, 4.0], "float64": [1e-6, 4.0]}),
    (
        "arcsin near 1",
        sum_arcsin,
        lambda x: 1 / np.sqrt(1 - x**2),
        {"float32": [0.9999, 0.5], "float64": [1 - 1e-6, 0.5]},
    ),
    (
        "Beta cdf near 1",
        arcsine_cdf,
        lambda x: 1 / (np.pi * np.sqrt(x * (1 - x))),
        {"float32": [0.9999, 0.5], "float64": [1 - 1e-6, 0.5]},
    ),
]
IDS = [c[0] for c in CASES]
# float32 loses what eps·|f|/h costs at the short steps a nearby edge forces: sum(sqrt) ≈ 2 with a term of slope 500
LIMIT = {"float32": 0.05, "float64": 1e-6}


def exact_at(exact, x):
    return exact(np.asarray(x, np.float64))  # the derivative at the point the dtype holds


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b) / np.abs(b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "f", "exact", "point"), CASES, ids=IDS)
def test_grad_repairs_a_step_that_leaves_the_domain(dtype, name, f, exact, point):
    x = jnp.asarray(point[dtype], dtype)
    h = float(step_of(x)[0])
    stencil = jax.vmap(f)(jnp.stack([x.at[0].add(-h), x.at[0].add(h)]))
    assert np.isfinite(float(f(x))) and not np.isfinite(np.asarray(stencil)).all()  # the plain stencil gives NaN
    g = jg.grad(f)(x)
    assert g.dtype == dtype and np.isfinite(np.asarray(g)).all()
    assert rel(g, exact_at(exact, x)).max() < LIMIT[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "f", "exact", "point"), CASES, ids=IDS)
def test_with_error_covers_the_repaired_coordinate(dtype, name, f, exact, point):
    x = jnp.asarray(point[dtype], dtype)
    est = jg.grad(f, with_error=True)(x)
    true_error = np.abs(np.asarray(est.value, np.float64) - exact_at(exact, x))
    assert np.isfinite(np.asarray(est.error)).all()
    assert (true_error <= 3 * np.asarray(est.error, np.float64)).all(), (true_error, est.error)
    assert int(est.status) in (jg.Status.OK, jg.Status.IMPRECISE)
    if (np.asarray(est.error) > np.abs(np.asarray(est.value))).any():
        assert int(est.status) == jg.Status.IMPRECISE


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_error", [False, True])
def test_batch_grad_chunked_repairs_only_the_points_that_need_it(dtype, with_error):
    rng = np.random.default_rng(0)
    points = rng.uniform(0.5, 4.0, size=(50, 3))
    points[[3, 17, 40], [0, 2, 1]] = 1e-6  # a few points next to the edge, in different chunks
    x = jnp.asarray(points, dtype)
    whole = jg.batch_grad(sum_sqrt, x, with_error=with_error)
    chunked = jg.batch_grad(sum_sqrt, x, with_error=with_error, chunk_size=8)
    exact = 0.5 / np.sqrt(np.asarray(x, np.float64))
    for result in (whole, chunked):
        value = result.value if with_error else result
        assert np.isfinite(np.asarray(value)).all()
        assert rel(value, exact).max() < LIMIT[dtype]
        if with_error:
            assert np.isfinite(np.asarray(result.error)).all()
    np.testing.assert_array_equal(np.asarray(whole.value if with_error else whole),
                                  np.asarray(chunked.value if with_error else chunked))  # fmt: skip
    # the other points (those in the same chunks included) are bit-for-bit what the stencil alone gives, value, error
    # and status: the same points without the edge ones
    others = np.setdiff1d(np.arange(50), [3, 17, 40])
    alone = jg.batch_grad(sum_sqrt, x[others], with_error=with_error)
    for result in (whole, chunked):
        for got, expected in zip(jax.tree_util.tree_leaves(result), jax.tree_util.tree_leaves(alone), strict=True):
            np.testing.assert_array_equal(np.asarray(got)[others], np.asarray(expected))


NEAR_ONE = {"float32": 0.9999, "float64": 1 - 1e-6}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["central", "forward", "backward", "richardson"])
def test_every_real_method_is_repaired(dtype, method):
    """x0 sits next to the lower edge, x1 next to the upper one: central and Richardson leave the domain at both,
    forward at x1 only, backward at x0 only; the coordinates that left it are repaired."""
    x = jnp.asarray([1e-6, NEAR_ONE[dtype]], dtype)
    f = lambda x: jnp.log(x[0]) + jnp.arcsin(x[1])  # noqa: E731
    order = {"central": 2, "richardson": 6}.get(method, 2)  # one-sided order 2: the step eps^(1/3) leaves the domain
    g = np.asarray(jg.grad(f, method=method, order=order)(x))
    exact = np.asarray([1 / float(x[0]), 1 / np.sqrt(1 - float(x[1]) ** 2)])
    left = {"central": [0, 1], "richardson": [0, 1], "forward": [1], "backward": [0]}[method]
    assert rel(g[left], exact[left]).max() < LIMIT[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_user_step_is_repaired(dtype):
    g = jg.grad(sum_log, step=1e-2)(jnp.asarray([1e-3, 2.0], dtype))
    assert rel(g[0], 1e3) < LIMIT[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_blocked_coordinates_are_repaired(dtype):
    x = jnp.asarray(np.r_[1e-6, np.linspace(0.5, 3.0, 39)], dtype)
    g = jg.batch_grad(sum_log, x[None], memory_budget=20_000)[0]
    exact = 1 / np.asarray(x, np.float64)
    assert rel(g, exact).max() < LIMIT[dtype]
    est = jg.batch_grad(sum_log, x[None], memory_budget=20_000, with_error=True)
    assert np.isfinite(np.asarray(est.error)).all()
    assert (np.abs(np.asarray(est.value[0], np.float64) - exact) <= 3 * np.asarray(est.error[0])).all()
    plan = jg._batching.plan(x[None], jg.DefaultStep(), 20_000, fun=sum_log, scheme=jg.Central())
    assert plan.block is not None and plan.block < x.shape[0]  # the blocked path was the one tested


@pytest.mark.parametrize("dtype", DTYPES)
def test_nothing_works_is_nonfinite(dtype):
    f = lambda x: jnp.where(x[0] == 1, 0.0, jnp.nan) + x[1] ** 2  # noqa: E731  finite only at x0 = 1 itself
    x = jnp.asarray([1.0, 3.0], dtype)
    g = jg.grad(f)(x)
    assert np.isnan(float(g[0])) and float(g[1]) == 6.0
    est = jg.grad(f, with_error=True)(x)
    assert int(est.status) == jg.Status.NONFINITE and np.isnan(float(est.value[0]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_nonfinite_f_at_x_stays_nan(dtype):
    x = jnp.asarray([0.0, 4.0], dtype)  # log 0 = -inf: f(x) itself is not finite
    g = jg.grad(sum_log)(x)
    assert np.isnan(float(g[0])) or np.isinf(float(g[0]))
    assert int(jg.grad(sum_log, with_error=True)(x).status) == jg.Status.NONFINITE


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_error", [False, True])
def test_finite_results_unchanged(dtype, with_error):
    """Nothing non-finite: the seed example stays exact, and a smooth f matches jax.grad (the repair never runs;
    bit-for-bit equality with the stencil alone is checked in the batch test above, point by point)."""
    seed = jg.grad(lambda x: x[0] ** 2 + x[1] ** 2, with_error=with_error)(jnp.array([3.0, 4.0], dtype))
    np.testing.assert_array_equal(np.asarray(seed.value if with_error else seed), [6.0, 8.0])
    if with_error:
        assert int(seed.status) == jg.Status.OK
    x = jnp.asarray([0.3, 1.7, 2.5], dtype)
    f = lambda x: jnp.sum(jnp.sin(3 * x)) * jnp.exp(0.1 * jnp.sum(x))  # noqa: E731
    g = jg.grad(f, with_error=with_error)(x)
    g = g.value if with_error else g
    np.testing.assert_allclose(np.asarray(g), np.asarray(jax.grad(f)(x)), rtol=1e-3 if dtype == "float32" else 1e-8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_error", [False, True])
def test_jvp_through_the_repair(dtype, with_error):
    """jax.jvp of jg.grad where the repair runs, vmapped over points (the tangent the same for all): with the steps
    fixed, the derivative of the repaired one-sided difference is the same difference of f', ≈ f'' = −1/x² for
    Σ log x. Checked column by column against the analytic Hessian (the repair's cond is differentiated as a plain
    cond: custom_vmap's own jvp returned these tangents with the batch axis twice)."""
    x = jnp.asarray([[1e-6, 4.0], [2e-6, 0.3]], dtype)
    gradient = jg.grad(sum_log, with_error=with_error)
    value = (lambda p: gradient(p).value) if with_error else gradient
    columns = [jax.vmap(lambda p, t=t: jax.jvp(value, (p,), (t,))[1])(x) for t in jnp.eye(2, dtype=dtype)]
    hessian = np.stack([np.asarray(c, np.float64) for c in columns], axis=-1)  # (points, i, j) = ∂g_i/∂x_j
    exact = -1 / np.asarray(x, np.float64) ** 2
    np.testing.assert_allclose(np.diagonal(hessian, axis1=1, axis2=2), exact, rtol=1e-3 if dtype == "float32" else 1e-6)
    assert (hessian[:, [0, 1], [1, 0]] == 0).all()  # Σ log x: g_i does not depend on x_j, up to no rounding at all


@pytest.mark.parametrize("with_error", [False, True])
@pytest.mark.parametrize("on_cpu", [True, False])
def test_repair_is_compiled_on_a_cpu_only_when_a_stencil_leaves_the_domain(monkeypatch, with_error, on_cpu):
    """Eager calls on a CPU run the program without the repair first (it triples the program's compile time) and the
    one with it only when a point with finite coordinates got a non-finite value; off the CPU (patched here: the
    same code runs on any device) the one with the repair at once, whose results are the same bit for bit
    (`_evaluate.lazily_repaired`)."""
    from jaxgrad import _evaluate

    expected = [jg.batch_grad(sum_log, jnp.asarray(p), with_error=with_error) for p in ([[1.0, 2.0]], [[1e-6, 2.0]])]
    traced = []
    for name in ("repaired_gradient", "repaired_parts"):
        original = getattr(_evaluate, name)
        monkeypatch.setattr(_evaluate, name, lambda *a, original=original, **k: traced.append(1) or original(*a, **k))
    monkeypatch.setattr(_evaluate, "_computed_on_cpu", lambda leaves: on_cpu)
    f = lambda x: jnp.sum(jnp.log(x)) + 0.0  # noqa: E731  a function of this test alone: no program compiled before
    finite = jg.batch_grad(f, jnp.asarray([[1.0, 2.0]]), with_error=with_error)
    jg.grad(f, with_error=with_error)(jnp.asarray([1.0, 2.0]))
    assert bool(traced) is not on_cpu
    repaired = jg.batch_grad(f, jnp.asarray([[1e-6, 2.0]]), with_error=with_error)
    assert traced
    leaves = jax.tree_util.tree_leaves
    for got, want in zip(leaves((finite, repaired)), leaves(expected), strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_error", [False, True])
def test_eager_and_traced_calls_agree_bit_for_bit(dtype, with_error):
    """An eager call (without the repair where nothing leaves the domain) and the same call under jax.jit (the repair
    always in the program) give the same values, errors and statuses, with and without points that need it."""
    f = lambda x: jnp.sum(jnp.log(x))  # noqa: E731
    one = jg.grad(f, with_error=with_error)
    batch, one_traced = jax.jit(lambda p: jg.batch_grad(f, p, with_error=with_error)), jax.jit(one)  # one compile each
    for points in ([[1.0, 2.0], [3.0, 4.0]], [[1e-6, 2.0], [3.0, 4.0]]):
        points = jnp.asarray(points, dtype)
        eager = jg.batch_grad(f, points, with_error=with_error)
        pairs = [(eager, batch(points)), (one(points[0]), one_traced(points[0]))]
        for eager, traced in pairs:
            for a, b in zip(jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(traced), strict=True):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
