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


def test_memory_budget_bounds_the_temporaries():
    """A 64 KiB budget on 2,000 points of d = 50: XLA's own analysis of the single pass says it needs far more, the
    plan picks chunks whose program stays within a few times the budget, and the answer is the same."""
    from jaxgrad._batching import gradient_program, plan

    f = functions.rosenbrock
    points = f.sample(2000, 50, seed=4, dtype="float32")
    chosen = plan(gradient_program, points, jg.DefaultStep(), 64 * 1024, fun=f, scheme=jg.Central())
    assert chosen.temp_bytes > 100 * 64 * 1024 and chosen.chunk < 2000
    compiled = gradient_program.lower(
        points, jg.DefaultStep(), fun=f, scheme=jg.Central(), chunk=chosen.chunk
    ).compile()
    chunk_temp = compiled.memory_analysis().temp_size_in_bytes
    assert chunk_temp <= 4 * 64 * 1024 + points.nbytes  # the chunk's temporaries (and the output buffer)


def test_stream_grad_refuses_a_pytree_and_names_batch_grad():
    with pytest.raises(TypeError, match="use batch_grad"):
        list(jg.stream_grad(functions.sphere, {"a": np.ones((4, 2))}))
