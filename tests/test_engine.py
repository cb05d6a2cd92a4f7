"""The engine: grad and batch_grad against the seed example, analytic gradients, jax.grad, theory and each other."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DTYPES, X64, central_bound, eps, step_of, steps_of
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jaxgrad as jg
from jaxgrad import functions


def function_2(x):
    return x[0] ** 2 + x[1] ** 2


SEED = [((3.0, 4.0), (6.0, 8.0)), ((0.0, 2.0), (0.0, 4.0)), ((3.0, 0.0), (6.0, 0.0))]


def rel_error(approx, exact):
    """Norm-wise relative error per point: |g - g*| / |g*| (a per-coordinate ratio is meaningless near zero)."""
    approx, exact = np.asarray(approx, np.float64), np.asarray(exact, np.float64)
    return np.linalg.norm(approx - exact, axis=-1) / np.linalg.norm(exact, axis=-1)


# ------------------------------------------------------------------------------------------------------ seed example
def test_seed_table_grad_and_batch_grad_are_exact(dtype):
    """The notes' example, exactly: the power-of-two default step makes every difference exact here."""
    points = jnp.asarray([p for p, _ in SEED], dtype=dtype)
    expected = np.asarray([g for _, g in SEED], dtype=dtype)
    batch = jg.batch_grad(function_2, points)
    assert batch.dtype == dtype
    np.testing.assert_array_equal(np.asarray(batch), expected)
    for point, g in zip(points, expected, strict=True):
        single = jg.grad(function_2)(point)
        assert single.dtype == dtype
        np.testing.assert_array_equal(np.asarray(single), g)


def test_seed_table_reference(dtype):
    for point, g in SEED:
        got = jg.reference.numerical_gradient(function_2, np.asarray(point, dtype))
        assert got.dtype == dtype
        # round-off bound of the notes' h = 1e-4: two evaluations of |f| <= 25 with relative error eps each
        np.testing.assert_allclose(got, g, rtol=0, atol=4 * eps(dtype) * 25 / 2e-4)


def test_integer_input_is_promoted_and_right():
    expected_dtype = jnp.result_type(float)  # float64 under x64, else float32
    g = jg.grad(function_2)(jnp.asarray([3, 4]))
    assert g.dtype == expected_dtype
    np.testing.assert_array_equal(np.asarray(g), [6.0, 8.0])
    gb = jg.batch_grad(function_2, np.asarray([[3, 4], [0, 2]]))
    assert gb.dtype == expected_dtype
    np.testing.assert_array_equal(np.asarray(gb), [[6.0, 8.0], [0.0, 4.0]])


# ------------------------------------------------------------------------------------------ accuracy on built-ins
# Functions whose derivatives scale like the function itself, where the relative step rule eps^(1/3)·max(|x|, 1) is
# made for: the bounds hold. Rastrigin and Ackley oscillate with period 1 at every |x|, so a step that grows
# with |x| is too large for them; `test_oscillating_functions_error_is_truncation` pins down that it is the step.
SMOOTH_SCALED = ["sphere", "rosenbrock", "styblinski_tang", "beale", "himmelblau", "logsumexp"]
MEDIAN_BOUND = {"float32": 1e-4, "float64": 1e-9}


@pytest.mark.parametrize("name", SMOOTH_SCALED)
def test_default_step_accuracy_on_builtins(name, dtype):
    f = functions.get(name)
    x = f.sample(1000, f.default_dim, seed=7, dtype=dtype)
    g = np.asarray(jg.batch_grad(f, jnp.asarray(x)))
    exact = f.gradient(x.astype(np.float64))  # analytic, in float64, independent of JAX
    autodiff = np.asarray(jax.vmap(jax.grad(f))(jnp.asarray(x)))
    assert np.median(rel_error(g, exact)) <= MEDIAN_BOUND[dtype.name]
    assert np.median(rel_error(g, autodiff)) <= MEDIAN_BOUND[dtype.name]


@pytest.mark.parametrize("name", ["rastrigin", "ackley"])
def test_oscillating_functions_error_is_truncation(name):
    """Halving the step divides the error by about 4 (= 2^p, p = 2): the error is the h² truncation of the default
    step, not round-off or a bug. Checked in the widest dtype available."""
    dtype = DTYPES[-1]
    f = functions.get(name)
    x = jnp.asarray(f.sample(300, f.default_dim, seed=3, dtype=dtype))
    exact = f.gradient(np.asarray(x, np.float64))
    h = jnp.asarray(steps_of(x), x.dtype)  # powers of two: exact in x's dtype

    def with_step(point, step):
        return jg.grad(f, step=step)(point)

    errors = [np.median(rel_error(jax.vmap(with_step)(x, h / k), exact)) for k in (1, 2)]
    assert 3.0 < errors[0] / errors[1] < 5.0, errors


# -------------------------------------------------------------------------------------------- numerical properties
finite32 = {"allow_nan": False, "allow_infinity": False, "allow_subnormal": False, "width": 32}


def affine(v, a, c):
    return jnp.dot(a, v) + c


def quadratic(v, q):
    return 0.5 * v @ q @ v


@given(
    a=hnp.arrays(np.float32, 4, elements=st.floats(-100, 100, **finite32)),
    x=hnp.arrays(np.float32, 4, elements=st.floats(-1000, 1000, **finite32)),
    c=st.floats(-100, 100, **finite32),
    method=st.sampled_from(["central", "forward", "backward"]),
)
def test_linear_functions_are_exact_to_rounding(a, x, c, method):
    dtype = DTYPES[-1]
    a_, x_ = jnp.asarray(a, dtype), jnp.asarray(x, dtype)
    g = np.asarray(jg.grad(affine, method=method)(x_, a_, c), np.float64)  # one compiled program per method
    h = step_of(x_, 1 if method != "central" else 2)
    size = np.abs(a.astype(np.float64)) @ np.abs(x.astype(np.float64)) + abs(c) + np.abs(a) * h
    assert np.all(np.abs(g - a) <= central_bound(dtype, size, h))


@given(
    m=hnp.arrays(np.float64, (3, 3), elements=st.integers(-40, 40).map(lambda k: k / 4)),
    x=hnp.arrays(np.float32, 3, elements=st.floats(-100, 100, **finite32)),
)
def test_quadratics_are_exact_to_rounding_for_central_differences(m, x):
    dtype = DTYPES[-1]
    q = jnp.asarray(m + m.T, dtype)
    g = np.asarray(jg.grad(quadratic)(jnp.asarray(x, dtype), q), np.float64)
    qn, xn = m + m.T, x.astype(np.float64)
    h = step_of(jnp.asarray(x, dtype))
    size = 0.5 * np.abs(xn) @ np.abs(qn) @ np.abs(xn) + np.abs(qn) @ np.abs(xn) * h + np.abs(np.diag(qn)) * h**2
    assert np.all(np.abs(g - qn @ xn) <= central_bound(dtype, size, h))


@pytest.mark.parametrize(("method", "order"), [("forward", 1), ("backward", 1), ("central", 2), ("central", 4)])
def test_error_shrinks_at_the_order_of_the_stencil(method, order):
    """Error(h) / Error(h/2) ≈ 2^p on exp, whose derivatives are all exp: the stencil has the stated order."""
    dtype = DTYPES[-1]
    x = jnp.asarray([0.3, -0.2], dtype)
    exact = np.exp(np.asarray(x, np.float64))
    steps = (0.1, 0.05) if dtype == np.float64 else (0.4, 0.2)
    errors = [
        np.abs(np.asarray(jg.grad(lambda v: jnp.sum(jnp.exp(v)), method=method, order=order, step=h)(x)) - exact)
        for h in steps
    ]
    rates = np.log2(errors[0] / errors[1])
    np.testing.assert_allclose(rates, order, atol=0.25)


def test_one_sided_methods_match_theory():
    """Forward/backward error ≈ (h/2)·f'' with opposite signs, at the default √eps-scaled step."""
    dtype = DTYPES[-1]
    x = jnp.asarray([0.5, 1.5], dtype)
    f = lambda v: jnp.sum(jnp.sin(v))  # noqa: E731
    h = step_of(x, 1)
    curvature = -np.sin(np.asarray(x, np.float64))
    for method, sign in (("forward", 1), ("backward", -1)):
        err = np.asarray(jg.grad(f, method=method)(x), np.float64) - np.cos(np.asarray(x, np.float64))
        predicted = sign * h / 2 * curvature
        assert np.all(np.abs(err - predicted) <= 0.05 * np.abs(predicted) + 16 * eps(dtype) / h), (err, predicted)


# --------------------------------------------------------------------------------------- batching and composition
def rounding_bound(fun, points, dtype):
    """|Δg| allowed between two programs that evaluate f in a different operation order or with FMA contraction
    (XLA contracts a·b + c into one rounding depending on how it fuses): the rounding part of `central_bound`."""
    values = np.abs(np.asarray(jax.vmap(fun)(points), np.float64))[:, None]
    return central_bound(dtype, values, steps_of(points))


@pytest.mark.parametrize("name", ["rosenbrock", "himmelblau", "logsumexp"])
def test_batch_grad_equals_a_loop_of_grad(name, dtype):
    f = functions.get(name)
    points = jnp.asarray(f.sample(40, f.default_dim, seed=2, dtype=dtype))
    batch = np.asarray(jg.batch_grad(f, points), np.float64)
    loop = np.stack([np.asarray(jg.grad(f)(p), np.float64) for p in points])
    assert np.all(np.abs(batch - loop) <= rounding_bound(f, points, dtype))


@pytest.mark.parametrize("chunk_size", [1, 7, 40])
def test_chunked_equals_one_pass(chunk_size, dtype):
    f = functions.rosenbrock
    points = jnp.asarray(f.sample(101, 8, seed=4, dtype=dtype))
    one_pass = np.asarray(jg.batch_grad(f, points, chunk_size=101), np.float64)
    chunked = np.asarray(jg.batch_grad(f, points, chunk_size=chunk_size), np.float64)
    assert np.all(np.abs(chunked - one_pass) <= rounding_bound(f, points, dtype))


def test_memory_budget_forces_chunks_with_the_same_result(dtype):
    """A budget far below the single pass's temporaries makes batch_grad loop over chunks (the plan says so)."""
    from jaxgrad._batching import plan

    f = functions.rosenbrock
    points = jnp.asarray(f.sample(500, 16, seed=5, dtype=dtype))
    chosen = plan(points, jg.DefaultStep(), 64 * 1024, fun=f, scheme=jg.Central())
    assert chosen.temp_bytes > 64 * 1024 and 1 <= chosen.chunk < 500
    small = np.asarray(jg.batch_grad(f, points, memory_budget=64 * 1024), np.float64)
    big = np.asarray(jg.batch_grad(f, points, memory_budget=2**30), np.float64)
    assert np.all(np.abs(small - big) <= rounding_bound(f, points, dtype))


def test_composes_with_jit_and_vmap(dtype):
    f = functions.rosenbrock
    points = jnp.asarray(f.sample(64, 5, seed=6, dtype=dtype))
    composed = jax.jit(jax.vmap(jg.grad(f)))(points)
    assert composed.dtype == dtype
    assert np.all(
        np.abs(np.asarray(composed, np.float64) - np.asarray(jg.batch_grad(f, points), np.float64))
        <= rounding_bound(f, points, dtype)
    )


def test_batch_grad_inside_jit(dtype):
    f = functions.sphere
    points = jnp.asarray(f.sample(10, 3, seed=1, dtype=dtype))
    inside = np.asarray(jax.jit(lambda p: jg.batch_grad(f, p))(points), np.float64)
    assert np.all(np.abs(inside - 2 * np.asarray(points, np.float64)) <= rounding_bound(f, points, dtype))


class GradVariantsTest(chex.TestCase):
    """grad gives the same answer with and without an outer jit."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_grad_variants(self):
        x = jnp.asarray([0.5, -1.0, 2.0])
        g = np.asarray(self.variant(jg.grad(lambda v: jnp.sum(jnp.sin(v) * v)))(x), np.float64)
        xn = np.asarray(x, np.float64)
        exact = np.cos(xn) * xn + np.sin(xn)
        bound = central_bound(x.dtype, np.sum(np.abs(xn)), step_of(x), third=3 + np.abs(xn))
        assert np.all(np.abs(g - exact) <= bound)


@pytest.mark.parametrize("argnums", [0, 2, -1, -3, (2, 0), (0, 2), (1,), (-1, 1)])
def test_argnums_and_has_aux_follow_jax_grad(argnums):
    """Any order, negative positions, arguments of different shapes: the same layout as jax.grad."""

    def f(a, b, c):
        return jnp.sum(a**2) * b + 10.0 * jnp.sum(c**2), {"b": b}

    args = (jnp.asarray([1.0, 2.0]), jnp.asarray(3.0), jnp.asarray([5.0, 6.0, 7.0]))
    numeric, aux = jg.grad(f, argnums=argnums, has_aux=True)(*args)
    exact, exact_aux = jax.grad(f, argnums=argnums, has_aux=True)(*args)
    assert jax.tree_util.tree_structure(numeric) == jax.tree_util.tree_structure(exact)
    for got, want in zip(jax.tree_util.tree_leaves(numeric), jax.tree_util.tree_leaves(exact), strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5)  # quadratics: exact to rounding
    assert float(aux["b"]) == float(exact_aux["b"])


def test_bad_argnums_are_explained():
    def f(a, b):
        return jnp.sum(a * b)

    x = jnp.ones(2)
    with pytest.raises(ValueError, match="refers past the 2 arguments"):
        jg.grad(f, argnums=2)(x, x)
    with pytest.raises(ValueError, match="names an argument twice"):
        jg.grad(f, argnums=(0, -2))(x, x)


def test_second_call_does_not_retrace():
    traced = chex.assert_max_traces(lambda x: jnp.sum(x**3), n=1)
    points = jnp.asarray(np.random.default_rng(0).normal(size=(50, 4)))
    first = jg.batch_grad(traced, points)
    second = jg.batch_grad(traced, points + 1.0)  # same shapes and options, new values: would raise on a retrace
    assert first.shape == second.shape
    x = np.asarray(points + 1.0, np.float64)
    bound = central_bound(points.dtype, np.sum(np.abs(x) ** 3, axis=1, keepdims=True), steps_of(points + 1.0), 6)
    assert np.all(np.abs(np.asarray(second, np.float64) - 3 * x**2) <= bound)


def test_second_call_does_not_retrace_when_chunked():
    calls = []

    def cube(x):
        calls.append(1)
        return jnp.sum(x**3)

    points = jnp.asarray(np.random.default_rng(0).normal(size=(50, 4)))
    jg.batch_grad(cube, points, memory_budget=1024)
    traces = len(calls)
    jg.batch_grad(cube, points * 2, memory_budget=1024)
    assert len(calls) == traces


def test_a_call_made_again_still_reads_what_its_values_decide(dtype):
    """batch_grad remembers a plain call whose checks passed and takes it straight to its program the next time
    (`_grad._plain_call`); what the values decide is still read at every call: a stencil that leaves f's domain is
    repaired, a step that vanishes is reported, and an unhashable step or another dtype is not confused with it."""
    points = jnp.asarray([[1.0, 2.0], [3.0, 4.0]], dtype)
    edge = jnp.asarray([[1e-6, 2.0], [3.0, 4.0]], dtype)  # the default step leaves log's domain at 1e-6
    log_sum = lambda x: jnp.sum(jnp.log(x))  # noqa: E731  this test's own function: nothing remembered before
    for x in (points, points, edge, edge, points):
        g = jg.batch_grad(log_sum, x)
        assert g.dtype == dtype
        np.testing.assert_allclose(np.asarray(g, np.float64), 1 / np.asarray(x, np.float64), rtol=0.05)
    linear = lambda x: jnp.sum(3.0 * x)  # noqa: E731
    far = jnp.asarray([[1e20, 1.0]], dtype)  # x + 1e-3 == x: the step vanishes at the first coordinate
    for _ in range(2):
        np.testing.assert_allclose(jg.batch_grad(linear, points[:1], step=1e-3), [[3.0, 3.0]], rtol=1e-3)
        with pytest.raises(ValueError, match="below the resolution"):
            jg.batch_grad(linear, far, step=1e-3)
        steps = np.full(2, 1e-3)  # an array: not hashable, checked at every call
        np.testing.assert_allclose(jg.batch_grad(linear, points, step=steps), np.full((2, 2), 3.0), rtol=1e-3)
    for other in DTYPES:
        assert jg.batch_grad(linear, points.astype(other)).dtype == other


def test_a_call_made_again_runs_its_compiled_program_without_jit(dtype, monkeypatch):
    """The second plain call of a function, shape and options goes to the program the first one compiled (a
    `jax.stages.Compiled`, not `jax.jit`'s dispatch): the same bits with gradient_program out of reach, and back to
    gradient_program where that program refuses its arguments."""
    from jaxgrad import _grad

    cube = lambda x: jnp.sum(x**3)  # noqa: E731  this test's own function: nothing remembered before
    points = jnp.asarray([[1.0, 2.0], [3.0, -4.0]], dtype)
    first = np.asarray(jg.batch_grad(cube, points))
    np.testing.assert_allclose(first, 3 * np.asarray(points) ** 2, rtol=10 * eps(dtype) ** (2 / 3))
    real = _grad.gradient_program

    def unreachable(*args, **kwargs):
        raise AssertionError("a call made again went through jax.jit")

    monkeypatch.setattr(_grad, "gradient_program", unreachable)
    np.testing.assert_array_equal(np.asarray(jg.batch_grad(cube, points)), first)
    monkeypatch.setattr(_grad, "gradient_program", real)

    def refuses(*args):
        raise TypeError("Argument types differ from the types for which this computation was compiled")

    ready = next(r for k, r in _grad._CHECKED_CALLS.items() if k[0] is cube)
    monkeypatch.setattr(ready, "compiled", refuses)
    np.testing.assert_array_equal(np.asarray(jg.batch_grad(cube, points)), first)
    assert ready.compiled is None


# ------------------------------------------------------------------------------------------------------- pytrees
def test_pytree_in_pytree_out(dtype):
    rng = np.random.default_rng(0)
    params = {"w": jnp.asarray(rng.normal(size=(3, 2)), dtype), "b": jnp.asarray(rng.normal(size=2), dtype)}
    inputs = jnp.asarray(rng.normal(size=(5, 3)), dtype)

    def loss(p):
        return jnp.mean(jnp.tanh(inputs @ p["w"] + p["b"][None, :]) ** 2)

    g = jg.grad(loss)(params)
    exact = jax.grad(loss)(params)
    assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(params)
    for leaf, ref in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(exact), strict=True):
        assert leaf.shape == ref.shape and leaf.dtype == dtype
        np.testing.assert_allclose(np.asarray(leaf), np.asarray(ref), atol=20 * eps(dtype) ** (2 / 3))


@settings(max_examples=25)  # every example has new shapes, so a new compile
@given(
    shapes=st.lists(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), min_size=1, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_pytree_results_have_the_input_structure(shapes, seed):
    rng = np.random.default_rng(seed)
    tree = {f"leaf{i}": jnp.asarray(rng.uniform(-2, 2, size=s)) for i, s in enumerate(shapes)}

    def f(t):
        return sum(jnp.sum(jnp.cos(leaf)) for leaf in jax.tree_util.tree_leaves(t))

    g = jg.grad(f)(tree)
    assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(tree)
    for leaf, x in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(tree), strict=True):
        assert leaf.shape == x.shape
        xn = np.asarray(x, np.float64)
        bound = central_bound(leaf.dtype, sum(np.size(v) for v in tree.values()), step_of(x), 1)
        assert np.all(np.abs(np.asarray(leaf, np.float64) + np.sin(xn)) <= bound)


def test_batched_pytree_points(dtype):
    rng = np.random.default_rng(1)
    points = {"a": jnp.asarray(rng.normal(size=(6, 2)), dtype), "b": jnp.asarray(rng.normal(size=(6,)), dtype)}
    g = jg.batch_grad(lambda t: jnp.sum(t["a"] ** 2) + 3 * t["b"], points)
    np.testing.assert_allclose(np.asarray(g["a"]), 2 * np.asarray(points["a"]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(g["b"]), 3.0, rtol=1e-4)


def test_mixed_dtype_pytree_keeps_each_float_leaf_dtype():
    """Each leaf is stepped in its own dtype; float leaves keep it, integer leaves become the default float."""
    other = jnp.float64 if X64 else jnp.int32
    tree = {"a": jnp.asarray([1.5], jnp.float32), "b": jnp.asarray([2], other)}
    g = jg.grad(lambda t: jnp.sum(t["a"].astype(float) ** 2) + jnp.sum(t["b"] ** 2))(tree)
    assert g["a"].dtype == jnp.float32
    assert g["b"].dtype == jnp.result_type(float)
    np.testing.assert_allclose(np.asarray(g["a"]), [3.0], rtol=1e-4)
    np.testing.assert_allclose(np.asarray(g["b"]), [4.0], rtol=1e-4)


# ------------------------------------------------------------------------------------------------------- steps
def test_user_step_scalar_and_array(dtype):
    """The central difference of x³ is exactly 3x² + h²: the user's step is the step taken."""
    x = jnp.asarray([1.0, 2.0, 3.0], dtype)
    f = lambda v: jnp.sum(v**3)  # noqa: E731
    xn = np.asarray(x, np.float64)
    for step in (np.asarray([2**-7, 2**-6, 2**-5], dtype), 2**-7):
        h = np.broadcast_to(np.asarray(step, np.float64), xn.shape)
        g = np.asarray(jg.grad(f, step=step)(x), np.float64)
        bound = 8 * eps(dtype) * np.sum(np.abs(xn) ** 3) / h  # rounding of |f| in two evaluations
        assert np.all(np.abs(g - (3 * xn**2 + h**2)) <= bound)


# ------------------------------------------------------------------------------------------------------ bad input
def test_non_scalar_output_names_the_shape():
    with pytest.raises(ValueError, match=r"returned shape \(3,\)"):
        jg.grad(lambda x: x * 2)(jnp.ones(3))
    with pytest.raises(ValueError, match=r"returned shape \(3,\)"):
        jg.batch_grad(lambda x: x * 2, jnp.ones((4, 3)))


def test_non_array_output_is_a_type_error():
    with pytest.raises(TypeError, match="must return a scalar array, got tuple"):
        jg.grad(lambda x: (x[0], x[1]))(jnp.ones(2))


@pytest.mark.parametrize("step", [0.0, -1e-3, float("nan"), float("inf"), np.array([1e-3, -1e-3])])
def test_bad_steps_raise(step):
    with pytest.raises(ValueError, match="`step` must be positive and finite"):
        jg.grad(function_2, step=step)
    with pytest.raises(ValueError, match="`step` must be positive and finite"):
        jg.batch_grad(function_2, jnp.ones((2, 2)), step=step)


def test_wrong_shaped_step_raises():
    with pytest.raises(ValueError, match=r"`step` has shape \(3,\) where the input has shape \(2,\)"):
        jg.grad(function_2, step=np.full(3, 1e-3))(jnp.ones(2))


def test_step_below_resolution_raises(dtype):
    x = jnp.asarray([1e8, 1.0], dtype)  # ulp(1e8) is 8 in float32 and 1.5e-8 in float64
    with pytest.raises(ValueError, match="below the resolution"):
        jg.grad(function_2, step=1e-9)(x)
    with pytest.raises(ValueError, match="below the resolution"):
        jg.batch_grad(function_2, x[None], step=1e-9)


def test_points_without_batch_axis():
    with pytest.raises(ValueError, match=r"points\[None\]"):
        jg.batch_grad(function_2, jnp.asarray([3.0, 4.0]))
    with pytest.raises(ValueError, match="needs a leading batch axis"):
        jg.batch_grad(function_2, jnp.asarray(3.0))


def test_mismatched_batch_sizes():
    with pytest.raises(ValueError, match="same leading"):
        jg.batch_grad(lambda t: jnp.sum(t["a"]) + jnp.sum(t["b"]), {"a": jnp.ones((3, 2)), "b": jnp.ones((4,))})


@pytest.mark.parametrize("chunk_size", [0, -3, 2.5, True])
def test_bad_chunk_size(chunk_size):
    with pytest.raises(ValueError, match="`chunk_size` must be a positive integer"):
        jg.batch_grad(function_2, jnp.ones((3, 2)), chunk_size=chunk_size)


def test_empty_batch_gives_empty_result(dtype):
    g = jg.batch_grad(function_2, jnp.zeros((0, 2), dtype))
    assert g.shape == (0, 2) and g.dtype == dtype


def test_nonfinite_point_affects_only_itself(dtype):
    f = functions.rosenbrock
    points = np.asarray(f.sample(6, 4, seed=9, dtype=dtype))
    points[2, 1] = np.nan
    points[4, 0] = np.inf
    g = np.asarray(jg.batch_grad(f, jnp.asarray(points)))
    assert not np.isfinite(g[2]).all() and not np.isfinite(g[4]).all()
    clean = [0, 1, 3, 5]
    assert np.isfinite(g[clean]).all()
    alone = np.asarray(jg.batch_grad(f, jnp.asarray(points[clean])), np.float64)
    assert np.all(np.abs(g[clean] - alone) <= rounding_bound(f, jnp.asarray(points[clean]), dtype))


def test_caller_arrays_are_not_mutated(dtype):
    points = np.asarray(functions.sphere.sample(5, 3, seed=0, dtype=dtype))
    before = points.copy()
    jg.batch_grad(functions.sphere, points)
    jg.grad(functions.sphere)(points[0])
    np.testing.assert_array_equal(points, before)


def test_evaluation_count_matches_the_docstring():
    """central order 2 evaluates fun 2d times per point, forward d + 1 (counted on the host, outside jit)."""
    for method, expected in (("central", 2 * 5), ("forward", 5 + 1), ("backward", 5 + 1)):
        counted = []

        def f(x, counted=counted):
            jax.debug.callback(lambda v: counted.append(v.shape), x)
            return jnp.sum(x**2)

        jax.block_until_ready(jg.grad(f, method=method)(jnp.ones(5)))
        jax.effects_barrier()
        assert len(counted) == expected == jg.num_evaluations(5, method=method)


def test_programs_compile_with_their_options_on_their_own_and_without_them_elsewhere(monkeypatch):
    """jaxgrad's programs (`_compile.program`) carry XLA options that JAX takes only at the top level: inside the
    user's jit they are staged without them, and an XLA that does not know an option compiles without it. The
    options change how XLA compiles, not what: all three give the same bits, within the central-difference bound of
    the analytic gradient."""
    from jaxgrad import _compile

    def f(x):
        return jnp.sum(jnp.sin(x) * x)

    x = jnp.linspace(0.1, 1.0, 3, dtype=DTYPES[-1])
    own = jg.grad(f)(x)  # compiled on its own, with the options
    exact = np.sin(np.float64(x)) + np.float64(x) * np.cos(np.float64(x))
    bound = central_bound(x.dtype, np.sum(np.abs(np.float64(x))), steps_of(x[None])[0], third=3.0)
    assert np.all(np.abs(np.asarray(own, np.float64) - exact) <= bound)
    np.testing.assert_array_equal(jax.jit(jg.grad(f))(x), own)  # staged in the user's jit: no options
    monkeypatch.setattr(_compile, "COMPILER_OPTIONS", {"xla_cpu_no_such_option": True})
    unknown = _compile.program(jg.grad(f))
    np.testing.assert_array_equal(unknown(x), own)
    assert unknown._jitted is unknown._plain  # told once, then compiled without
