"""float32 input stays float32 with x64 enabled, through every public call (issue 15 item 7).

Under ci/test the float32 cases of the other tests run in the float32-only pass alone (tests/conftest.py: DTYPES),
so what float32 input meets only when x64 is enabled is checked here: a float64 constant or default-dtype array in
the library would promote it, which the float32-only world cannot show. Each call's result is checked for its dtype
and against the analytic gradient (f = Σ sin(x_i)·x_i, f' = sin + x·cos) to float32's accuracy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrad as jg


def f(x):
    return jnp.sum(jnp.sin(x) * x)


def exact(x):
    x = np.asarray(x, np.float64)
    return np.sin(x) + x * np.cos(x)


POINTS = np.linspace(0.3, 2.4, 12, dtype=np.float32).reshape(4, 3)
TOLERANCE = 2e-3  # float32 central differences: ~eps^(2/3) relative, with room


def check(value, want, tolerance=TOLERANCE):
    for leaf in jax.tree_util.tree_leaves(value):
        assert jnp.asarray(leaf).dtype == jnp.float32, jnp.asarray(leaf).dtype
    np.testing.assert_allclose(np.asarray(value, np.float64), want, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize(
    "options",
    [{}, {"with_error": True}, {"step": "auto"}, {"order": 4}, {"method": "richardson"}, {"method": "forward"},
     {"method": "complex"}, {"step": "auto", "with_error": True}],
    ids=str,
)  # fmt: skip
def test_grad_and_batch_grad_keep_float32(options):
    x = jnp.asarray(POINTS[0])
    tolerance = 2e-2 if options.get("method") == "forward" else TOLERANCE  # first order: ~eps^(1/2)
    one = jg.grad(f, **options)(x)
    batch = jg.batch_grad(f, jnp.asarray(POINTS), chunk_size=3, **options)
    if options.get("with_error"):
        for estimate in (one, batch):
            assert estimate.error.dtype == jnp.float32 and (np.asarray(estimate.status) == jg.Status.OK).all()
        one, batch = one.value, batch.value
    check(one, exact(x), tolerance)
    check(batch, exact(POINTS), tolerance)


def test_other_calls_keep_float32():
    x = jnp.asarray(POINTS[0])
    out = np.zeros_like(POINTS)
    for _ in jg.stream_grad(f, POINTS, chunk_size=3, out=out):
        pass
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, exact(POINTS), rtol=TOLERANCE, atol=TOLERANCE)
    check(jg.jacobian(lambda v: jnp.stack([f(v), jnp.sum(v)]))(x)[0], exact(x))
    hessian = jg.hessian(f, with_error=True)(x)
    xd = np.asarray(x, np.float64)
    check(hessian.value, np.diag(2 * np.cos(xd) - xd * np.sin(xd)), 2e-2)  # second differences: ~eps^(1/2)
    assert hessian.error.dtype == jnp.float32
    value, tangent = jg.jvp(f, (x,), (jnp.ones(3, jnp.float32),))
    check(tangent, exact(x).sum())
    assert value.dtype == jnp.float32
    filtered = jg.grad(lambda p: f(p["w"]) * p["scale"])({"w": x, "scale": 2, "name": None})  # eqx.filter_grad style
    check(filtered["w"], 2 * exact(x))
    comparison = jg.compare(f, jnp.asarray(POINTS))
    assert comparison.ok and "float32" in repr(comparison)
