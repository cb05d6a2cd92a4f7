"""Several hosts, for real: two local processes joined by `jax.distributed.initialize` on 127.0.0.1 (JAX's
multi-controller runtime, gloo CPU collectives), two CPU devices each, so "auto" spans 4 devices in 2 processes.

Both processes run the same script on the same points, as users do on several hosts; each reports what it computed
(gathered across processes with `multihost_utils.process_allgather`) and which rows its own devices hold. The
expected values are the one-device result of a plain single-process run and the analytic gradient in float64.
"""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import DTYPES, X64

from jaxgrad import functions

TIMEOUT_S = 180  # for both processes together: a hang (e.g. a peer that never joins) fails instead of blocking CI

WORKER = textwrap.dedent(
    """
    import json, sys
    import jax
    jax.config.update("jax_num_cpu_devices", 2)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    process_id, port = int(sys.argv[1]), int(sys.argv[2])
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=process_id,
                               initialization_timeout=90)
    import numpy as np, jax.numpy as jnp, jaxgrad as jg
    from jax.experimental.multihost_utils import process_allgather

    def gather(a):
        return np.asarray(process_allgather(a, tiled=True), np.float64).tolist()

    def rows(a):  # the rows of the global result this process's devices hold
        return sorted([s.index[0].start or 0, s.index[0].stop or a.shape[0]] for s in a.addressable_shards)

    f = jg.functions.rosenbrock
    out = {"process": jax.process_index(), "processes": jax.process_count(), "devices": jax.device_count(),
           "local_devices": jax.local_device_count()}
    for dtype in ("float32", "float64") if jax.config.jax_enable_x64 else ("float32",):
        even = f.sample(12, 5, seed=1, dtype=dtype)  # 12 points: 3 per device
        odd = even[:10]  # 10 points: padded to 12, the padding dropped
        split = jg.batch_grad(f, even, sharding="auto")
        estimate = jg.batch_grad(f, odd, sharding="auto", with_error=True)
        tree = jg.batch_grad(lambda t: f(jnp.concatenate([t["a"], t["b"]])), {"a": odd[:, :3], "b": odd[:, 3:]},
                             sharding="auto")
        mine = jax.make_array_from_process_local_data(jg.points_sharding(), even[6 * process_id : 6 * process_id + 6])
        try:
            jg.batch_grad(f, odd, sharding="auto", step=1e-30)
            vanished = "no error"
        except ValueError as error:
            vanished = str(error)
        out[dtype] = {
            "split": gather(split), "split_spec": list(split.sharding.spec), "split_rows": rows(split),
            "padded": gather(jg.batch_grad(f, odd, sharding="auto")),
            "chunked": gather(jg.batch_grad(f, odd, sharding="auto", chunk_size=2)),
            "tree": np.concatenate([gather(tree["a"]), gather(tree["b"])], axis=1).tolist(),
            "estimate": [gather(estimate.value), gather(estimate.error), gather(estimate.status)],
            "local_data": gather(jg.batch_grad(f, mine, sharding="auto")), "local_rows": rows(mine),
            "vanished": vanished,
        }
    print(json.dumps(out))
    """
)

# The same numbers on one device in this process: the reference the two-process run must reproduce.
ONE_DEVICE = textwrap.dedent(
    """
    import json, jax, numpy as np, jaxgrad as jg
    f = jg.functions.rosenbrock
    out = {}
    for dtype in ("float32", "float64") if jax.config.jax_enable_x64 else ("float32",):
        x = f.sample(12, 5, seed=1, dtype=dtype)
        estimate = jg.batch_grad(f, x[:10], with_error=True)
        out[dtype] = {"grad": np.asarray(jg.batch_grad(f, x), np.float64).tolist(),
                      "estimate": [np.asarray(a, np.float64).tolist() for a in estimate]}
    print(json.dumps(out))
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra) -> dict:
    """This run's x64 mode, on the CPU only (a GPU, where present, would otherwise be the default backend)."""
    return dict(os.environ, JAX_ENABLE_X64="1" if X64 else "0", JAX_PLATFORMS="cpu", **extra)


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def launch(script: str, directory, processes: int = 2, env=None) -> list[str]:
    """Run `script` as `processes` processes that meet at a free loopback port; return their stdouts. The first one
    to fail, or the deadline, ends them all (a peer left waiting in a collective would otherwise hang)."""
    port, deadline = free_port(), time.monotonic() + TIMEOUT_S
    logs = [(directory / f"out{i}.txt", directory / f"err{i}.txt") for i in range(processes)]
    children, env = [], env or child_env()
    try:
        for i, (out, err) in enumerate(logs):
            with out.open("w") as stdout, err.open("w") as stderr:
                children.append(subprocess.Popen([sys.executable, "-c", script, str(i), str(port)], env=env,
                                                 stdout=stdout, stderr=stderr, text=True))  # fmt: skip
        while any(c.poll() is None for c in children) and not any(c.poll() for c in children):
            if time.monotonic() > deadline:
                pytest.fail(f"the {processes}-process run did not finish within {TIMEOUT_S} s (a peer hung)")
            time.sleep(0.1)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()
    failed = [
        f"process {i} exited with {child.returncode}"
        + (" (killed after a peer failed)" if child.returncode == -9 else f":\n{err.read_text()[-4000:]}")
        for i, (child, (_, err)) in enumerate(zip(children, logs, strict=True))
        if child.returncode
    ]
    assert not failed, "\n".join(failed)
    return [out.read_text() for out, _ in logs]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both processes' reports, and the one-device reference computed in a plain single-process run."""
    reports = [last_json(stdout) for stdout in launch(WORKER, tmp_path_factory.mktemp("distributed"))]
    reference = subprocess.run([sys.executable, "-c", ONE_DEVICE], capture_output=True, text=True,
                               env=dict(child_env(), JAX_NUM_CPU_DEVICES="1"), timeout=TIMEOUT_S)  # fmt: skip
    assert reference.returncode == 0, reference.stderr[-4000:]
    return reports, last_json(reference.stdout)


RELATIVE = {"float32": 1e-3, "float64": 1e-8}  # norm-wise relative error of the default central difference


def rounding_bound(dtype, x):
    """How far two runs of the default central difference may differ: the rounding of f, twice, over the step."""
    f, eps = functions.rosenbrock, np.finfo(dtype).eps
    h = np.maximum(np.abs(x), 1) * eps ** (1 / 3)
    return 8 * eps * (np.abs(f(x))[:, None] + 1) / h


def test_two_processes_span_four_devices_and_each_holds_its_half(runs):
    processes, _ = runs
    assert [p["process"] for p in processes] == [0, 1]
    for p in processes:
        assert (p["processes"], p["devices"], p["local_devices"]) == (2, 4, 2)
        for dtype in DTYPES:
            r = p[dtype]
            assert r["split_spec"] == ["points"]  # N divisible by 4: the result stays split across the hosts
            half = 6 * p["process"]
            assert r["split_rows"] == [[half, half + 3], [half + 3, half + 6]]  # not gathered onto one host
            assert r["local_rows"] == [[half, half + 3], [half + 3, half + 6]]


@pytest.mark.parametrize("dtype", DTYPES)
def test_sharded_gradient_equals_one_device_and_analytic(runs, dtype):
    processes, reference = runs
    x = functions.rosenbrock.sample(12, 5, seed=1, dtype=dtype).astype(np.float64)
    one = np.asarray(reference[dtype]["grad"])
    bound = rounding_bound(dtype, x)
    exact = functions.rosenbrock.gradient(x)  # analytic, float64, independent of JAX
    assert np.max(np.linalg.norm(one - exact, axis=1) / np.linalg.norm(exact, axis=1)) <= RELATIVE[dtype]
    for p in processes:
        r = p[dtype]
        for key, n in (("split", 12), ("local_data", 12), ("padded", 10), ("chunked", 10), ("tree", 10)):
            got = np.asarray(r[key])
            assert got.shape == (n, 5), key
            assert np.all(np.abs(got - one[:n]) <= bound[:n]), (p["process"], key, np.abs(got - one[:n]).max())
    for key in ("split", "local_data", "padded", "chunked", "tree", "estimate"):
        assert processes[0][dtype][key] == processes[1][dtype][key], key  # the same global array in both


@pytest.mark.parametrize("dtype", DTYPES)
def test_with_error_across_processes_equals_one_device(runs, dtype):
    processes, reference = runs
    value, error, status = (np.asarray(a) for a in reference[dtype]["estimate"])
    x = functions.rosenbrock.sample(10, 5, seed=1, dtype=dtype).astype(np.float64)
    exact = functions.rosenbrock.gradient(x)
    assert np.all(status == 0) and np.all(np.abs(value - exact) <= error + rounding_bound(dtype, x))
    for p in processes:
        got_value, got_error, got_status = (np.asarray(a) for a in p[dtype]["estimate"])
        assert got_value.shape == got_error.shape == (10, 5) and got_status.shape == (10,)
        assert np.all(np.abs(got_value - value) <= rounding_bound(dtype, x))
        assert np.all(np.abs(got_error - error) <= rounding_bound(dtype, x))
        np.testing.assert_array_equal(got_status, status)


def test_a_step_below_resolution_is_reported_by_every_process(runs):
    processes, _ = runs
    for p in processes:
        for dtype in DTYPES:
            assert "below the resolution" in p[dtype]["vanished"], p[dtype]["vanished"]


# The README's launch script as written, run as its last sentence says (two shells on one machine, 2 CPU devices
# each), followed by checks of what it leaves in `local`.
README_CHECKS = textwrap.dedent(
    """
    import json
    exact = f.gradient(np.asarray(points, np.float64))  # analytic, float64
    rows = [[s.start or 0, len(points) if s.stop is None else s.stop] for s, _ in local]
    rel = np.concatenate([np.linalg.norm(v - exact[s], axis=1) / np.linalg.norm(exact[s], axis=1) for s, v in local])
    print(json.dumps({"rows": sorted(rows), "median_rel": float(np.median(rel)), "dtype": str(g.dtype)}))
    """
)


def test_readme_launch_runs_on_two_local_processes(tmp_path):
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"### Several hosts\s.*?```python\n(.*?)```", readme, re.S).group(1)
    # sys.argv of `python -c SCRIPT i port` is ["-c", i, port]: give the script the README's three arguments
    script = "import sys\nsys.argv[1:] = ['127.0.0.1:' + sys.argv[2], '2', sys.argv[1]]\n" + block + README_CHECKS
    reports = [last_json(out) for out in launch(script, tmp_path, env=child_env(JAX_NUM_CPU_DEVICES="2"))]
    assert reports[0]["rows"] == [[0, 25_000], [25_000, 50_000]]  # host 0 holds the first half, host 1 the second
    assert reports[1]["rows"] == [[50_000, 75_000], [75_000, 100_000]]
    for r in reports:
        assert r["dtype"] == "float32" and r["median_rel"] <= 1e-4  # the bound test_engine uses for float32
