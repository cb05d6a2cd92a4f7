"""Built-in functions: analytic gradients against jax.grad, NumPy and JAX evaluations agree, lookup and import."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import DTYPES, autodiff

from jaxgrad import functions


@pytest.mark.parametrize("name", functions.names())
def test_analytic_gradient_matches_autodiff(name):
    f = functions.get(name)
    dtype = DTYPES[-1]
    x = f.sample(200, f.default_dim, seed=11, dtype=dtype)
    reference = np.asarray(autodiff(jax.grad, f)(jnp.asarray(x)), np.float64)
    analytic = np.asarray(f.gradient(jnp.asarray(x)), np.float64)
    scale = np.linalg.norm(reference, axis=1, keepdims=True)
    assert np.all(np.abs(analytic - reference) <= 1e3 * np.finfo(dtype).eps * (scale + 1))


@pytest.mark.parametrize("name", functions.names())
def test_numpy_and_jax_evaluations_agree(name):
    f = functions.get(name)
    x = f.sample(50, f.default_dim, seed=12)
    np_values = f(x)
    assert isinstance(np_values, np.ndarray)  # NumPy in, NumPy out (the reference runs at NumPy speed)
    jax_values = np.asarray(jax.vmap(f)(jnp.asarray(x, DTYPES[-1])), np.float64)
    np.testing.assert_allclose(jax_values, np_values, rtol=1e-5 if DTYPES[-1] == "float32" else 1e-12, atol=1e-4)


def test_sphere_is_the_notes_function():
    x = np.array([3.0, 4.0])
    assert functions.sphere(x) == 25.0
    np.testing.assert_array_equal(functions.sphere.gradient(x), [6.0, 8.0])


@pytest.mark.parametrize("name", functions.names())
def test_samples_lie_in_the_domain(name):
    f = functions.get(name)
    x = f.sample(500, f.default_dim, seed=1)
    low, high = f.domain
    assert x.shape == (500, f.default_dim)
    assert (x >= low).all() and (x <= high).all()


def test_known_minima():
    """Independent facts from the literature: f and ∇f vanish (or are known) at the known minimisers."""
    np.testing.assert_allclose(functions.rosenbrock.gradient(np.ones(5)), 0.0)
    np.testing.assert_allclose(functions.beale.gradient(np.array([3.0, 0.5])), 0.0, atol=1e-12)
    np.testing.assert_allclose(functions.himmelblau.gradient(np.array([3.0, 2.0])), 0.0, atol=1e-12)
    np.testing.assert_allclose(functions.rastrigin(np.zeros(4)), 0.0, atol=1e-12)
    np.testing.assert_allclose(functions.ackley(np.zeros(3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(functions.styblinski_tang.gradient(np.full(3, -2.903534)), 0.0, atol=1e-4)
    np.testing.assert_allclose(functions.logsumexp.gradient(np.zeros(4)), 0.25)


def test_dimension_checks():
    with pytest.raises(ValueError, match=r"^beale takes dim 2 only, got 5$"):
        functions.beale.sample(3, 5)
    with pytest.raises(ValueError, match=r"^rosenbrock takes dim 2 or more, got 1; pass --dim 2$"):
        functions.rosenbrock.check_dim(1, flag="--dim")
    with pytest.raises(ValueError, match=r"; pass --dim 2$"):
        functions.himmelblau.check_dim(3, flag="--dim")
    with pytest.raises(ValueError, match=r"^beale takes dim 2 only, got 3; pass --point with 2 coordinates$"):
        functions.beale.check_dim(3, flag="--point")
    functions.rosenbrock.check_dim(50)  # any d >= 2


def test_lookup_and_resolve(tmp_path, monkeypatch):
    assert functions.resolve("rosenbrock") is functions.rosenbrock
    with pytest.raises(ValueError, match="The built-in functions are: sphere, rosenbrock"):
        functions.resolve("rosenbrok")
    with pytest.raises(ValueError, match=r"Did you mean mymlp:flat_loss \(module:function, with a colon\)\?"):
        functions.resolve("mymlp.flat_loss")  # a dot where the colon goes
    with pytest.raises(ValueError, match=r"Did you mean pkg.losses:loss "):
        functions.resolve("pkg.losses.loss")
    (tmp_path / "mylosses.py").write_text("import jax.numpy as jnp\ndef loss(x):\n    return jnp.sum(x ** 4)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert functions.resolve("mylosses:loss")(np.array([1.0, 2.0])) == 17.0
    with pytest.raises(ValueError, match="has no attribute 'nope'"):
        functions.resolve("mylosses:nope")
    with pytest.raises(ValueError, match="does not import: ModuleNotFoundError"):
        functions.resolve("no_such_module_xyz:loss")
