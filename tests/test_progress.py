"""progress=True: a bar per chunk, ticked from inside the compiled program; nothing in the program when off.

The ticks are captured with a fake bar in place of tqdm (`_batching.new_bar`); the expected counts come from the
chunking arithmetic (ceil(N / chunk) chunks, the last one's new points N − (chunks − 1)·chunk), the gradients from
the analytic 2x of the sphere and from jax.grad.
"""

import functools
import json
import os
import subprocess
import sys
import textwrap
import typing

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import X64

import jaxgrad as jg
from jaxgrad import _batching


class FakeBar:
    """Records what a tqdm bar would be told."""

    made: typing.ClassVar[list] = []

    def __init__(self, total, desc):
        self.total, self.desc, self.n, self.updates, self.closed = total, desc, 0, [], False
        FakeBar.made.append(self)

    def update(self, count):
        self.updates.append(int(count))
        self.n += int(count)

    def close(self):
        self.closed = True

    def refresh(self):
        pass


@pytest.fixture
def bars(monkeypatch):
    """The bars made during the test, in order (each a `FakeBar`)."""
    FakeBar.made = []
    monkeypatch.setattr(_batching, "new_bar", FakeBar)
    return FakeBar.made


def sphere(x):
    return jnp.sum(x**2)


def points(n, d=3, dtype="float32"):
    return np.random.default_rng(n).normal(size=(n, d)).astype(dtype)


def only_bar(bars):
    assert len(bars) == 1
    bar = bars[0]
    assert bar.closed and bar.n == bar.total
    assert not _batching._BARS  # the registry forgets it
    return bar


def tolerance(dtype):
    return {"float32": 2e-2, "float64": 1e-6}[np.dtype(dtype).name]


def test_one_pass_ticks_once_with_every_point(bars, dtype):
    x = points(7, dtype=dtype)
    g = jg.batch_grad(sphere, x, progress=True)
    assert only_bar(bars).updates == [7]
    np.testing.assert_allclose(g, 2 * x, atol=tolerance(dtype))


@pytest.mark.parametrize(("n", "chunk", "expected"), [(10, 3, [3, 3, 3, 1]), (10, 4, [4, 4, 2]), (9, 4, [3, 3, 3])])
def test_chunked_run_ticks_once_per_chunk_in_order(bars, n, chunk, expected):
    """Balanced chunks of ceil(N / ceil(N / chunk_size)) points (9 by 4: three of 3); the last tick counts only the
    points its chunk adds."""
    x = points(n)
    g = jg.batch_grad(sphere, x, chunk_size=chunk, progress=True)
    bar = only_bar(bars)
    assert bar.updates == expected and bar.total == n and bar.desc == "batch_grad"
    np.testing.assert_allclose(g, 2 * x, atol=2e-2)


def test_many_chunks_tick_in_groups_at_most_max_ticks(bars):
    """250 chunks of one point: 100 ticks at most, so ceil(250 / 100) = 3 chunks a tick: 83 ticks of 3, then 1."""
    assert _batching.MAX_TICKS == 100
    x = points(250, d=2)
    g = jg.batch_grad(sphere, x, chunk_size=1, progress=True)
    assert only_bar(bars).updates == [3] * 83 + [1]
    np.testing.assert_allclose(g, 2 * x, atol=2e-2)


def test_budget_planned_chunks_tick_to_n(bars):
    """Chunks planned from a small memory budget: several ticks, all but the last a full chunk, summing to N."""
    x = points(2000, d=10)
    g = jg.batch_grad(sphere, x, memory_budget=64 * 1024, progress=True)
    updates = only_bar(bars).updates
    assert len(updates) > 1 and sum(updates) == 2000
    assert len(set(updates[:-1])) == 1 and 0 < updates[-1] <= updates[0]
    np.testing.assert_allclose(g, 2 * x, atol=2e-2)


@pytest.mark.parametrize("chunk_size", [None, 4])
def test_results_unchanged_with_progress(bars, chunk_size, dtype):
    f = jg.functions.rosenbrock
    x = f.sample(11, 4, seed=3, dtype=dtype)
    on = jg.batch_grad(f, x, chunk_size=chunk_size, progress=True)
    off = jg.batch_grad(f, x, chunk_size=chunk_size)
    np.testing.assert_array_equal(on, off)
    exact = jax.vmap(jax.grad(f))(x)
    scale = np.maximum(np.abs(exact), 1)
    assert np.all(np.abs(np.asarray(on) - exact) <= tolerance(dtype) * scale)
    assert only_bar(bars).updates == ([11] if chunk_size is None else [4, 4, 3])


def test_estimates_unchanged_with_progress(bars):
    f = jg.functions.rosenbrock
    x = f.sample(11, 4, seed=3, dtype="float32")
    on = jg.batch_grad(f, x, chunk_size=4, with_error=True, progress=True)
    off = jg.batch_grad(f, x, chunk_size=4, with_error=True)
    for a, b in zip(on, off, strict=True):
        np.testing.assert_array_equal(a, b)
    exact = jax.vmap(jax.grad(f))(x)
    assert np.all(np.abs(np.asarray(on.value) - exact) <= tolerance("float32") * np.maximum(np.abs(exact), 1))
    assert only_bar(bars).updates == [4, 4, 3]


def test_pytree_points_tick(bars):
    tree = {"a": points(6, d=2), "b": points(6, d=1)[:, 0]}
    g = jg.batch_grad(lambda p: jnp.sum(p["a"] ** 2) + p["b"] ** 2, tree, chunk_size=4, progress=True)
    assert only_bar(bars).updates == [3, 3]  # balanced chunks: 6 points by 4 are two of 3
    np.testing.assert_allclose(g["a"], 2 * tree["a"], atol=2e-2)
    np.testing.assert_allclose(g["b"], 2 * tree["b"], atol=2e-2)


def callbacks_in(fn, *args) -> int:
    """How many host callbacks (equations whose primitive's name says callback) the program of fn(*args) holds,
    nested programs included."""
    from jax.extend.core import jaxprs_in_params

    def count(jaxpr) -> int:
        own = sum("callback" in eqn.primitive.name for eqn in jaxpr.eqns)
        return own + sum(count(sub) for eqn in jaxpr.eqns for sub in jaxprs_in_params(eqn.params))

    return count(jax.make_jaxpr(fn)(*args).jaxpr)


@pytest.mark.parametrize("chunk", [3, 10, _batching.Batching()])
def test_no_callback_in_the_program_when_off(chunk):
    x, rule = jnp.asarray(points(10)), jg.DefaultStep()
    program = functools.partial(_batching.gradient_program, fun=sphere, scheme=jg.Central(), chunk=chunk)
    assert callbacks_in(program, x, rule) == 0
    assert callbacks_in(lambda x, r: program(x, r, progress=np.int32(1)), x, rule) == 1  # the check can fail


def test_no_callback_in_the_sharded_program_when_off():
    from jaxgrad._sharding import _sharded_gradient, points_sharding

    sharding = points_sharding("auto")
    options = dict(fun=sphere, scheme=jg.Central(), with_error=False, batching=_batching.Batching(chunk_size=2),
                   mesh=sharding.mesh, axis="points")  # fmt: skip
    x, rule = jnp.asarray(points(jax.device_count() * 4)), jg.DefaultStep()
    assert callbacks_in(functools.partial(_sharded_gradient, **options), x, rule) == 0
    assert callbacks_in(lambda x, r: _sharded_gradient(x, r, np.int32(1), **options), x, rule) == 1


def test_sharded_on_this_process_devices(bars):
    x = points(9)
    g = jg.batch_grad(sphere, x, sharding="auto", chunk_size=2, progress=True)
    bar = only_bar(bars)
    assert sum(bar.updates) == 9 and len(bar.updates) >= 5  # ceil(9 / devices / 2) chunks on each device
    np.testing.assert_allclose(g, 2 * x, atol=2e-2)


SHARDED = textwrap.dedent(
    """
    import json, sys, jax, numpy as np, jax.numpy as jnp
    if len(sys.argv) > 1:  # one of two processes (tests/test_distributed.py's launcher)
        jax.config.update("jax_num_cpu_devices", 2)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{sys.argv[2]}", num_processes=2,
                                   process_id=int(sys.argv[1]), initialization_timeout=90)
    else:
        jax.config.update("jax_num_cpu_devices", 4)
    import jaxgrad as jg
    from jax.experimental.multihost_utils import process_allgather
    from jaxgrad import _batching
    bars = []
    class Bar:
        def __init__(self, total, desc): self.total, self.n, self.ticks = total, 0, []; bars.append(self)
        def update(self, count): self.ticks.append(int(count)); self.n += int(count)
        def refresh(self): pass
        def close(self): pass
    _batching.new_bar = Bar
    x = np.arange(27, dtype=np.float32).reshape(9, 3) / 10
    f = lambda p: jnp.sum(p ** 2)
    out = {"devices": jax.device_count()}
    meshes = {"auto": "auto"}
    if jax.process_count() == 1:
        meshes["2x2"] = jax.sharding.Mesh(np.asarray(jax.devices()).reshape(2, 2), ("points", "model"))
    for name, sharding in meshes.items():
        g = jg.batch_grad(f, x, sharding=sharding, chunk_size=2, progress=True)
        g = process_allgather(g, tiled=True) if jax.process_count() > 1 else g
        out[name] = {"total": bars[-1].total, "ticks": bars[-1].ticks, "error": float(np.abs(g - 2 * x).max())}
    print(json.dumps(out))
    """
)


def test_sharded_over_four_devices_ticks_each_shards_chunks():
    """9 points on 4 devices: padded to 12, 3 per device in chunks of 2: ticks 2 and 1 from each device, in any
    interleaving; the bar counts N (the padding is not shown). A 2×2 mesh splits the points in 2 shards of 5 (chunks
    2, 2, 1), each computed by 2 devices: the bar counts the 20 rows its devices compute."""
    env = dict(os.environ, JAX_ENABLE_X64="1" if X64 else "0", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", SHARDED], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4
    assert out["auto"]["total"] == 9 and len(out["auto"]["ticks"]) == 8 and sum(out["auto"]["ticks"]) == 9
    assert out["2x2"]["total"] == 20 and sorted(out["2x2"]["ticks"]) == [1] * 4 + [2] * 8
    assert out["auto"]["error"] < 2e-2 and out["2x2"]["error"] < 2e-2


def test_each_of_two_processes_counts_its_own_devices_points(tmp_path):
    """jax.distributed, 2 processes × 2 devices, 9 points padded to 12: each process's devices compute 6 rows (3
    each, chunks of 2 and 1), and its bar counts those 6."""
    from test_distributed import child_env, last_json, launch

    for stdout in launch(SHARDED, tmp_path, env=child_env()):
        out = last_json(stdout)["auto"]
        assert out["total"] == 6 and sorted(out["ticks"]) == [1, 1, 2, 2] and out["error"] < 2e-2


def test_host_function_ticks_per_point(bars):
    x = points(5)
    g = jg.batch_grad(lambda p: float(np.sum(np.asarray(p) ** 2)), x, traceable=False, progress=True)
    assert only_bar(bars).updates == [1] * 5  # called row by row: one tick per point's stencil
    np.testing.assert_allclose(g, 2 * x, atol=2e-2)


def test_batched_host_function_ticks_once(bars):
    x = points(5)
    g = jg.batch_grad(lambda p: np.sum(np.asarray(p) ** 2, axis=-1), x, traceable=False, progress=True)
    assert only_bar(bars).updates == [5]  # one call on every stencil row at once
    np.testing.assert_allclose(g, 2 * x, atol=2e-2)


def test_stream_grad_ticks_per_chunk_without_counting_the_overlap(bars):
    x = points(10)
    out = np.zeros_like(x)
    spans = [(a, b) for a, b, _ in jg.stream_grad(sphere, x, chunk_size=4, out=out, progress=True)]
    assert spans == [(0, 4), (4, 8), (6, 10)]
    bar = only_bar(bars)
    assert bar.updates == [4, 4, 2] and bar.desc == "stream_grad"
    np.testing.assert_allclose(out, 2 * x, atol=2e-2)


def test_stream_grad_bar_closes_when_the_loop_is_broken_off(bars):
    stream = jg.stream_grad(sphere, points(10), chunk_size=4, progress=True)
    next(stream)
    stream.close()
    assert bars[0].closed and bars[0].updates == [4]


def test_no_bar_when_off(bars):
    jg.batch_grad(sphere, points(4))
    list(jg.stream_grad(sphere, points(4), chunk_size=2))
    assert bars == []


def test_real_bar_reaches_every_point(capsys):
    jg.batch_grad(sphere, points(12), chunk_size=5, progress=True)
    shown = capsys.readouterr().err
    assert "batch_grad" in shown and "12/12" in shown and "100%" in shown


@pytest.mark.parametrize("call", [lambda: jg.batch_grad(sphere, points(3), progress="yes"),
                                  lambda: list(jg.stream_grad(sphere, points(3), progress=1))])  # fmt: skip
def test_bad_progress_names_the_argument(call):
    with pytest.raises(TypeError, match="`progress` must be True or False"):
        call()


def test_progress_under_the_users_jit_is_refused():
    with pytest.raises(ValueError, match=r"outside jax\.jit"):
        jax.jit(lambda x: jg.batch_grad(sphere, x, progress=True))(points(3))
