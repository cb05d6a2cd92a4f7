"""Filtered pytrees, as `eqx.filter_grad` sees them: an Equinox model (its activation functions are leaves) and a
Flax-style params dict with a "config" string and int leaves are differentiated at their floating-point array
leaves only, the other leaves carried through, None in the gradient. The references are Equinox's own
`eqx.filter_grad` (autodiff) and `jax.grad` of the float leaves; pytrees of arrays and numbers keep today's
behaviour (everything differentiated, integers promoted), checked against analytic derivatives."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgrad as jg

X = jnp.array([0.3, -0.7])


def _mlp(key, dtype, activation=jax.nn.tanh):
    return eqx.nn.MLP(2, "scalar", 4, 1, activation=activation, dtype=dtype, key=key)


def _loss(model):
    return model(X.astype(model.layers[0].weight.dtype))


def _bound(dtype, scale):
    """What a central difference of order 2 may miss by: a generous multiple of eps^(2/3) times the size of f."""
    return 100 * float(np.finfo(dtype).eps) ** (2 / 3) * (1 + scale)


def _assert_close(got, want, dtype):
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=0, atol=_bound(dtype, float(jnp.max(jnp.abs(w)))))


# ------------------------------------------------------------------------------------------- an Equinox model
def test_grad_of_an_equinox_mlp_matches_eqx_filter_grad(dtype):
    model = _mlp(jax.random.key(0), dtype)
    got = jg.grad(_loss)(model)
    _assert_close(got, eqx.filter_grad(_loss)(model), dtype)
    assert got.activation is None and got.final_activation is None
    assert got.layers[0].weight.shape == (4, 2)


def test_grad_of_an_equinox_model_compiles_once_per_layout():
    traces = []

    def loss(model):
        traces.append(1)
        return _loss(model)

    gradient = jg.grad(loss)
    gradient(_mlp(jax.random.key(0), "float32"))
    first = len(traces)
    other = _mlp(jax.random.key(1), "float32")
    _assert_close(gradient(other), eqx.filter_grad(_loss)(other), "float32")
    assert len(traces) == first  # another model of the same layout reuses the compiled program


def test_grad_of_an_equinox_model_under_filter_jit_and_with_error():
    model = _mlp(jax.random.key(2), "float32")
    want = eqx.filter_grad(_loss)(model)
    _assert_close(eqx.filter_jit(jg.grad(_loss))(model), want, "float32")
    value, error, status = jg.grad(_loss, with_error=True)(model)
    _assert_close(value, want, "float32")
    assert error.activation is None and int(status) == 0
    assert jax.tree_util.tree_structure(error) == jax.tree_util.tree_structure(want)


def test_check_grad_passes_an_equinox_mlp_and_names_its_leaves(dtype):
    model = _mlp(jax.random.key(0), dtype)
    rep = jg.check_grad(_loss, model)
    assert rep.ok and rep.num_points == 1 and rep.dim == 4 * 2 + 4 + 4 + 1
    assert rep.coordinate_names[0] == "x.layers[0].weight[0, 0]"
    assert jg.check_grad(_loss, model, grad_fn=eqx.filter_grad(_loss)).ok


def test_check_grad_catches_a_wrong_custom_gradient_inside_an_equinox_mlp(dtype):
    @jax.custom_jvp
    def act(x):
        return jnp.tanh(x)

    act.defjvp(lambda p, t: (act(p[0]), 1.2 * (1 - jnp.tanh(p[0]) ** 2) * t[0]))  # planted: 20% too steep
    model = _mlp(jax.random.key(0), dtype, activation=act)
    with pytest.raises(jg.GradientMismatchError, match=r"worst: point 0, x\.layers\[[01]\]\."):
        jg.check_grad(_loss, model)


def test_batch_grad_and_compare_over_a_batch_of_equinox_models(dtype):
    """The float leaves carry the batch axis (as eqx.filter_vmap makes them); the activations are shared."""
    models = eqx.filter_vmap(lambda key: _mlp(key, dtype))(jax.random.split(jax.random.key(3), 5))
    got = jg.batch_grad(_loss, models)
    _assert_close(got, eqx.filter_vmap(eqx.filter_grad(_loss))(models), dtype)
    assert got.layers[1].weight.shape == (5, 1, 4) and got.activation is None
    rep = jg.compare(_loss, models, reference=False)
    assert rep.ok and rep.num_points == 5 and rep.coordinate_names[-1] == "x.layers[1].bias[0]"
    with pytest.raises(ValueError, match="same leading"):  # one model is not a batch
        jg.batch_grad(_loss, _mlp(jax.random.key(0), dtype))


# ------------------------------------------------------------------------------------------- a Flax-style dict
def _params(dtype):
    kernel = jnp.asarray(np.linspace(-1.0, 1.0, 6).reshape(3, 2), dtype)
    return {
        "params": {"Dense_0": {"kernel": kernel, "bias": jnp.asarray([0.1, -0.2], dtype)}},
        "config": "tanh",  # a string: the pytree is filtered
        "depth": 2,  # a Python int, used by range(): static
        "pick": np.array([1, 0]),  # an integer array, used as an index: carried, never perturbed
        "scale": 0.5,  # a Python float: carried (eqx.filter_grad does not differentiate it either)
    }


def _apply(p):
    dense = p["params"]["Dense_0"]
    y = jnp.ones(3, dense["kernel"].dtype) @ dense["kernel"] + dense["bias"]
    for _ in range(p["depth"]):
        y = getattr(jnp, p["config"])(y)
    return p["scale"] * jnp.sum(y[p["pick"]] * jnp.arange(1, 3))


def test_grad_of_a_flax_style_dict_matches_jax_grad_of_its_float_leaves(dtype):
    p = _params(dtype)
    got = jg.grad(_apply)(p)
    assert got["config"] is None and got["depth"] is None and got["pick"] is None and got["scale"] is None
    want = jax.grad(lambda params: _apply({**p, "params": params}))(p["params"])
    _assert_close(got["params"], want, dtype)
    _assert_close(got, eqx.filter_grad(_apply)(p), dtype)


def test_integer_leaves_of_a_filtered_dict_are_carried_not_differentiated():
    """The integer array steers f (it picks entries): perturbing it would change f's meaning. Another `pick`
    gives another gradient, from the same compiled program."""
    p = _params("float32")
    swapped = {**p, "pick": np.array([0, 1])}
    got = jg.grad(_apply)(swapped)
    want = jax.grad(lambda params: _apply({**swapped, "params": params}))(p["params"])
    _assert_close(got["params"], want, "float32")
    assert not np.allclose(got["params"]["Dense_0"]["bias"], jg.grad(_apply)(p)["params"]["Dense_0"]["bias"])


def test_check_grad_and_compare_on_a_flax_style_dict(dtype):
    p = _params(dtype)
    rep = jg.check_grad(_apply, p)
    assert rep.ok and rep.dim == 8
    assert rep.coordinate_names == (
        "x['params']['Dense_0']['bias'][0]",
        "x['params']['Dense_0']['bias'][1]",
        *(f"x['params']['Dense_0']['kernel'][{i}, {j}]" for i in range(3) for j in range(2)),
    )

    def full_gradient(q):  # a gradient in the full structure: its values at the other leaves are ignored
        g = jax.grad(lambda params: _apply({**q, "params": params}))(q["params"])
        return {**q, "params": g, "pick": jnp.zeros(2)}

    # 3 points: with 2, the shared `pick` (2,) would have the batch's leading size, refused as maybe per point
    batch = {**p, "params": jax.tree_util.tree_map(lambda a: jnp.stack([a, 2 * a, -a]), p["params"])}
    rep = jg.compare(_apply, batch, grad_fn=full_gradient, reference_points=2)  # the NumPy reference too
    assert rep.ok and rep.reference.shape == (2, 8)

    def wrong(q):
        g = full_gradient(q)
        return {**g, "params": {"Dense_0": {**g["params"]["Dense_0"], "bias": 1.5 * g["params"]["Dense_0"]["bias"]}}}

    rep = jg.compare(_apply, batch, grad_fn=wrong, reference=False)
    assert not rep.ok and rep.worst.name.startswith("x['params']['Dense_0']['bias']")


def test_filtered_dict_with_has_aux_argnums_and_numpy_fun():
    p = _params("float32")
    want = jax.grad(lambda params: _apply({**p, "params": params}))(p["params"])
    (g, aux) = jg.grad(lambda w, q: (_apply(q) * w, q["pick"]), argnums=1, has_aux=True)(jnp.float32(1.0), p)
    _assert_close(g["params"], want, "float32")
    np.testing.assert_array_equal(aux, p["pick"])
    assert g["config"] is None and g["pick"] is None

    def numpy_apply(q):
        dense = q["params"]["Dense_0"]
        y = np.ones(3) @ np.asarray(dense["kernel"]) + np.asarray(dense["bias"])
        for _ in range(q["depth"]):
            y = getattr(np, q["config"])(y)
        return q["scale"] * np.sum(y[q["pick"]] * np.arange(1, 3))

    _assert_close(jg.grad(numpy_apply, traceable=False)(p)["params"], want, "float32")


def test_an_unhashable_static_leaf_is_carried_by_identity():
    class Config:  # __eq__ without __hash__: unhashable
        def __init__(self, power):
            self.power = power

        def __eq__(self, other):
            return isinstance(other, Config) and other.power == self.power

    w = jnp.array([1.0, 2.0])
    got = jg.grad(lambda q: jnp.sum(q["w"] ** q["cfg"].power))({"w": w, "cfg": Config(3)})
    _assert_close(got["w"], 3 * w**2, "float32")
    assert got["cfg"] is None


def test_a_filtered_batch_without_float_leaves_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"`points` has no floating-point array leaves.*jnp.asarray"):
        jg.batch_grad(lambda q: 1.0, {"n": np.arange(3), "config": "relu"})


# ------------------------------------------------------------------------------------------- unchanged
def test_pytrees_of_arrays_and_numbers_are_still_differentiated_whole():
    """No function, string or object among the leaves: every leaf is a coordinate, integers promoted, as before."""
    got = jg.grad(lambda q: jnp.sum(q["w"] * q["k"]) * q["n"])({"w": jnp.array([1.0, 2.0]), "k": jnp.array([2, 3]),
                                                                "n": 3})  # fmt: skip
    np.testing.assert_allclose(got["w"], [6.0, 9.0], rtol=1e-5)  # n·k
    np.testing.assert_allclose(got["k"], [3.0, 6.0], rtol=1e-5)  # n·w, the integer leaf promoted
    np.testing.assert_allclose(got["n"], 8.0, rtol=1e-5)  # sum(w·k)
    assert jnp.issubdtype(got["k"].dtype, jnp.floating)
    assert jg.grad(lambda q: jnp.sum(q["w"] ** 2))({"w": jnp.array([3.0]), "b": None})["b"] is None


# ------------------------------------------------------------------------------------------- integer arrays in a batch
class _Masked(eqx.Module):
    w: jax.Array
    mask: jax.Array  # an integer array field: eqx.filter_vmap gives it the batch axis too
    act: object = jnp.tanh

    def __call__(self, x):
        return jnp.sum(self.act(self.w * x) * self.mask)


def _masked_loss(model):
    return model(jnp.array([1.0, 2.0, 3.0]))


def test_a_batch_whose_integer_arrays_may_be_per_point_is_refused_with_the_fix():
    """batch_grad shared the (3, 3) mask between the 3 models: each saw all 3 masks, broadcast, and its gradient came
    out 3× too large with compare and check_grad saying OK (from the review). One model alone is still fine."""
    models = eqx.filter_vmap(lambda s: _Masked(jnp.array([0.5, -1.0, 2.0]) * s, jnp.array([1, 0, 1])))(
        jnp.arange(1.0, 4.0)
    )
    fixes = (r"eqx\.filter_vmap\(jg\.grad", r"jg\.check_grad\(fun, point, batched=False\)")
    for call, fix in zip((jg.batch_grad, lambda f, p: jg.compare(f, p, reference=False), jg.check_grad),
                         (fixes[0], fixes[1], fixes[1]), strict=True):  # fmt: skip
        with pytest.raises(ValueError, match=r"`points`\.mask, an array of int(32|64) of shape \(3, 3\).*" + fix):
            call(_masked_loss, models)
    got = eqx.filter_vmap(jg.grad(_masked_loss))(models)  # the fix the message names
    _assert_close(got.w, eqx.filter_vmap(eqx.filter_grad(_masked_loss))(models).w, "float32")
    one = _Masked(jnp.array([0.5, -1.0, 2.0]), jnp.array([1, 0, 1]))  # w reads as 3 rows too: said, with the fix
    with pytest.raises(ValueError, match=r"If `points` is one point \(one model\), pass batched=False"):
        jg.check_grad(_masked_loss, one)
    assert jg.check_grad(_masked_loss, one, batched=False).ok
    _assert_close(jg.grad(_masked_loss)(one).w, eqx.filter_grad(_masked_loss)(one).w, "float32")


def test_batch_grad_of_a_filtered_batch_inside_jit():
    """Its integer array is a tracer there: it was hashed by content, a raw 'Non-hashable static arguments'."""
    f = lambda p: jnp.sum(p["w"][p["idx"]] ** 2)  # noqa: E731
    w, idx = jnp.arange(12.0).reshape(4, 3) / 10, jnp.array([0, 2])
    inside = jax.jit(lambda w, i: jg.batch_grad(f, {"w": w, "idx": i, "act": "sq"})["w"])(w, idx)
    want = jax.vmap(jax.grad(lambda row: jnp.sum(row[idx] ** 2)))(w)
    _assert_close(inside, want, "float32")


@pytest.mark.parametrize("act", ["tanh", "float32"])  # a string numpy reads as a dtype passed the first check
@pytest.mark.parametrize("call", ["jacobian", "hessian", "jvp"])
def test_jacobian_hessian_and_jvp_say_where_a_pytree_with_other_leaves_goes(call, act):
    """They perturb every leaf: a string leaf was a raw "data type 'tanh' not understood" (from the review)."""
    p = {"w": jnp.array([1.0, 2.0]), "act": act}
    f = lambda p: jnp.sum(jnp.tanh(p["w"]))  # noqa: E731
    run = {"jacobian": lambda: jg.jacobian(f)(p), "hessian": lambda: jg.hessian(f)(p),
           "jvp": lambda: jg.jvp(f, (p,), (p,))}[call]  # fmt: skip
    with pytest.raises(
        TypeError, match=r"holds a str at x(\[0\])?\['act'\] \('" + act + r"'\).*eqx.filter\(x, eqx.is_inex"
    ):
        run()
