"""Scale: sharding over simulated devices, host-side streaming, memory-bounded chunks."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import jaxgrad as jg
from jaxgrad import functions

SHARDED = textwrap.dedent(
    """
    import json, jax, numpy as np, jax.numpy as jnp, jaxgrad as jg
    assert len(jax.devices()) == 4, jax.devices()
    f = jg.functions.rosenbrock
    out = {}
    for dtype in ("float32", "float64") if jax.config.jax_enable_x64 else ("float32",):
        x = f.sample(10, 5, seed=1, dtype=dtype)  # 10 points: not divisible by 4
        one = np.asarray(jg.batch_grad(f, x), np.float64)
        sharded = jg.batch_grad(f, x, sharding="auto")
        chunked = np.asarray(jg.batch_grad(f, x, sharding="auto", chunk_size=2), np.float64)
        est = jg.batch_grad(f, x, sharding="auto", with_error=True)
        tree = {"a": jnp.asarray(x[:, :3]), "b": jnp.asarray(x[:, 3:])}
        g_tree = jg.batch_grad(lambda t: f(jnp.concatenate([t["a"], t["b"]])), tree, sharding="auto")
        out[dtype] = {
            "one": one.tolist(), "sharded": np.asarray(sharded, np.float64).tolist(), "chunked": chunked.tolist(),
            "devices": len(sharded.sharding.device_set) if hasattr(sharded, "sharding") else 1,
            "shape": list(sharded.shape), "status": np.asarray(est.status).tolist(),
            "tree": np.concatenate([np.asarray(g_tree["a"]), np.asarray(g_tree["b"])], axis=1).tolist(),
            "even_spec": list(jg.batch_grad(f, f.sample(12, 5, dtype=dtype), sharding="auto").sharding.spec),
        }
    print(json.dumps(out))
    """
)


def test_sharded_equals_one_device_on_four_simulated_devices():
    env = dict(os.environ, JAX_NUM_CPU_DEVICES="4")
    done = subprocess.run([sys.executable, "-c", SHARDED], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for dtype, r in json.loads(done.stdout.strip().splitlines()[-1]).items():
        one = np.asarray(r["one"])
        eps = np.finfo(dtype).eps
        f = functions.rosenbrock
        x = f.sample(10, 5, seed=1, dtype=dtype).astype(np.float64)
        h = np.maximum(np.abs(x), 1) * eps ** (1 / 3)
        bound = 8 * eps * (np.abs(f(x))[:, None] + 1) / h  # the rounding of f, twice, over the step
        assert r["shape"] == [10, 5]
        for key in ("sharded", "chunked", "tree"):
            assert np.all(np.abs(np.asarray(r[key]) - one) <= bound), key
        assert r["status"] == [0] * 10
        assert r["even_spec"] == ["points"]  # N divisible by 4: the result stays split over the devices


def test_stream_writes_finished_chunks_to_a_memmap(tmp_path):
    f = functions.rosenbrock
    points = f.sample(1000, 4, seed=2, dtype="float32")
    path = tmp_path / "grads.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=points.shape)
    chunks = []
    for start, stop, _ in jg.stream_grad(f, points, chunk_size=300, out=out):
        chunks.append((start, stop))
        if len(chunks) == 2:
            break  # interrupted after two chunks: they are on disk, the rest is not
    del out
    saved = np.load(path)
    whole = np.asarray(jg.batch_grad(f, points))
    scale = np.abs(whole).max()
    assert chunks == [(0, 300), (300, 600)]
    np.testing.assert_allclose(saved[:600], whole[:600], rtol=0, atol=1e-5 * scale)
    assert not saved[600:].any()  # never written


def test_stream_covers_every_point_once_in_equal_chunks():
    points = np.random.default_rng(0).normal(size=(1001, 3))
    spans = [(a, b) for a, b, g in jg.stream_grad(functions.sphere, points, chunk_size=250)]
    assert spans[-1] == (751, 1001) and all(b - a == 250 for a, b in spans)
    covered = np.zeros(1001, int)
    for a, b in spans:
        covered[a:b] += 1
    assert covered.min() >= 1
    with pytest.raises(ValueError, match="`out` must have the shape"):
        next(jg.stream_grad(functions.sphere, points, out=np.zeros((3, 3))))


def test_bad_sharding_is_explained():
    with pytest.raises(ValueError, match="`sharding` must be None, 'auto'"):
        jg.batch_grad(functions.sphere, np.ones((4, 2)), sharding="everywhere")


def _temp_bytes(points, chunk, f=functions.rosenbrock, **static):
    """XLA's own figure for the temporaries of the program batch_grad runs, compiled with `chunk`."""
    from jaxgrad._batching import gradient_program

    compiled = gradient_program.lower(points, jg.DefaultStep(), fun=f, scheme=jg.Central(), chunk=chunk, **static)
    return compiled.compile().memory_analysis().temp_size_in_bytes


def test_memory_budget_bounds_the_temporaries():
    """A 64 KiB budget on 2,000 points of d = 50: XLA's own analysis says the single pass needs far more; the program
    batch_grad compiles for the budget (planned by tracing, not by compiling twice) stays within it, plus its
    output buffer."""
    from jaxgrad._batching import Batching

    points = functions.rosenbrock.sample(2000, 50, seed=4, dtype="float32")
    assert _temp_bytes(points, 2000) > 10 * 64 * 1024
    assert _temp_bytes(points, Batching(memory_budget=64 * 1024)) <= 64 * 1024 + points.nbytes


@pytest.mark.parametrize("with_error", [False, True])
def test_large_d_is_evaluated_in_coordinate_blocks_within_the_budget(with_error):
    """d = 2,000: one point's 2·d stencil rows alone are 32 MB in float32. With a 1 MiB budget the coordinates are
    evaluated in blocks inside the program: XLA's temporaries stay within the budget plus the outputs, where the
    unblocked program needs over 10 times more, and the gradients equal the analytic ones to the difference's
    accuracy."""
    from jaxgrad._batching import Batching

    f, budget = functions.rosenbrock, 2**20
    points = f.sample(2, 2000, seed=4, dtype="float32")
    outputs = points.nbytes * (3 if with_error else 1)
    assert _temp_bytes(points, 2, with_error=with_error) > 10 * budget
    assert _temp_bytes(points, Batching(memory_budget=budget), with_error=with_error) <= budget + outputs
    got = jg.batch_grad(f, points, memory_budget=budget, with_error=with_error)
    value = np.asarray(got.value if with_error else got, np.float64)
    x = np.asarray(points, np.float64)
    eps = float(np.finfo(np.float32).eps)
    h = np.maximum(np.abs(x), 1) * eps ** (1 / 3)
    rounding = 8 * eps * (np.abs(f(x))[:, None] + 1) / h  # f's rounding, twice, over h
    truncation = 400 * (1 + np.abs(x)) * h**2  # h²/6 times Rosenbrock's third derivative, at most 2400|x_i|
    assert np.all(np.abs(value - f.gradient(x)) <= rounding + truncation)
    if with_error:
        assert np.all(np.abs(value - f.gradient(x)) <= 10 * np.asarray(got.error, np.float64))


def test_a_budget_no_point_fits_is_refused_with_the_bytes_it_needs():
    with pytest.raises(ValueError, match=r"more than `memory_budget`=1,000\. Raise memory_budget to at least"):
        jg.batch_grad(functions.rosenbrock, np.ones((2, 300), np.float32), memory_budget=1000)


def test_stream_grad_refuses_a_pytree_and_names_batch_grad():
    with pytest.raises(TypeError, match="use batch_grad"):
        list(jg.stream_grad(functions.sphere, {"a": np.ones((4, 2))}))
