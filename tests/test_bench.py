"""The benchmark's baseline B (hand-written central differences), the floor's stencil, and `jaxgrad bench --compare`.
Numbers are checked against analytic gradients, jax.grad and arithmetic done here; no timing is asserted."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import autodiff, central_bound, interrupt_on_call, steps_of

import jaxgrad as jg
from jaxgrad import bench, functions
from jaxgrad.cli import main

THIRD = {"sphere": lambda x: 0 * x, "rosenbrock": lambda x: 2400 * np.abs(x)}
"""|∂³f/∂x_i³| by hand: 0 for the sphere; 2400·|x_i| for Rosenbrock (from 100 (x_{i+1} − x_i²)²)."""


def mlp_third(fun, x):
    """|∂³f/∂x_i³| of the MLP at every point, by jax's forward-mode autodiff in float64 (an independent reference)."""
    with jax.enable_x64(True):

        def along(p, i):
            e = jnp.zeros_like(p).at[i].set(1.0)
            d1 = lambda q: jax.jvp(fun, (q,), (e,))[1]  # noqa: E731
            d2 = lambda q: jax.jvp(d1, (q,), (e,))[1]  # noqa: E731
            return jax.jvp(d2, (p,), (e,))[1]

        points = jnp.asarray(x, jnp.float64)
        dims = jnp.arange(points.shape[1])
        thirds = jax.jit(jax.vmap(lambda p: jax.vmap(lambda i: along(p, i))(dims)))  # one program, not op by op
        return np.abs(np.asarray(thirds(points)))


@pytest.mark.parametrize("name", ["sphere", "rosenbrock", "mlp"])
@pytest.mark.parametrize("dim", [2, 10])
def test_hand_written_baseline_agrees_with_batch_grad_and_the_analytic_gradient(name, dim, dtype):
    fun = bench.mlp(dim) if name == "mlp" else functions.get(name)
    x = fun.sample(64, dim, seed=3, dtype=dtype)
    b = np.asarray(bench.hand_written(fun)(jnp.asarray(x)), np.float64)
    a = np.asarray(jg.batch_grad(fun, x), np.float64)
    exact = fun.gradient(x.astype(np.float64))
    reference = np.asarray(autodiff(jax.grad, fun)(jnp.asarray(x)), np.float64)
    h = steps_of(x)
    f_size = np.abs(np.asarray(fun(x.astype(np.float64))))[:, None] + np.abs(x.astype(np.float64)) * np.abs(exact)
    third = mlp_third(fun, x) if name == "mlp" else THIRD[name](x.astype(np.float64))
    bound = central_bound(dtype, f_size, h, third)
    assert b.dtype == np.float64 and np.all(np.isfinite(b))
    assert np.all(np.abs(b - exact) <= bound), np.max(np.abs(b - exact) / bound)
    assert np.all(np.abs(a - exact) <= bound), np.max(np.abs(a - exact) / bound)
    # A and B take the same step and the same stencil: they differ only by the rounding of f, not its truncation
    assert np.all(np.abs(a - b) <= 2 * central_bound(dtype, f_size, h)), np.max(np.abs(a - b))
    assert np.all(np.abs(b - reference) <= 2 * bound)  # jax.grad, whose own error is rounding only, far below


def test_hand_written_is_exact_on_the_notes_function_and_keeps_the_dtype(dtype):
    x = jnp.asarray([[3.0, 4.0], [-1.0, 0.5]], dtype)
    g = bench.hand_written(functions.sphere)(x)
    assert g.dtype == dtype
    np.testing.assert_array_equal(np.asarray(g), [[6.0, 8.0], [-2.0, 1.0]])  # power-of-two steps: exact


def test_stencil_rows_are_the_points_plus_and_minus_each_step(dtype):
    x = functions.rosenbrock.sample(5, 3, seed=1, dtype=dtype)
    rows = np.asarray(bench.stencil_rows(jnp.asarray(x)))
    h = steps_of(x).astype(dtype)
    expected = np.concatenate([x[:, None, :] + h[:, :, None] * np.eye(3, dtype=dtype),
                               x[:, None, :] - h[:, :, None] * np.eye(3, dtype=dtype)], axis=1)  # fmt: skip
    assert rows.shape == (5 * 2 * 3, 3)
    np.testing.assert_array_equal(rows, expected.reshape(-1, 3))


@pytest.mark.x64_independent
def test_peak_bandwidth_table_reads_device_kinds():
    kinds = {"NVIDIA H200": 4800, "NVIDIA H100 80GB HBM3": 3350, "NVIDIA H100 PCIe": 2000, "NVIDIA GH200 480GB": 4000,
             "NVIDIA A100-SXM4-80GB": 2039, "NVIDIA A100-SXM4-40GB": 1555, "NVIDIA L4": 300, "NVIDIA L40S": 864,
             "Tesla T4": 320, "NVIDIA A10G": 600, "cpu": None}  # fmt: skip
    assert {kind: bench.peak_bandwidth(kind) for kind in kinds} == kinds


@pytest.mark.x64_independent
def test_default_matrix_is_the_issues_thirty_configurations():
    jobs = list(bench.compare_configurations())
    assert len(jobs) == 30
    left_out = {(n, d, size, t) for n in ("sphere", "rosenbrock", "mlp") for d in (2, 10, 100)
                for size in (10_000, 100_000) for t in ("float32", "float64")} - set(jobs)  # fmt: skip
    assert {(d, size) for _, d, size, _ in left_out} == {(100, 100_000)}  # 8 and 16 GB of stencil
    assert len(list(bench.compare_configurations(bench.COMPARE_QUICK))) == 12


@pytest.mark.x64_independent
def test_compare_prints_the_matrix_and_json(tmp_path, capsys):
    out_json = tmp_path / "compare.json"
    argv = ["bench", "--compare", "--function", "sphere", "--function", "mlp", "--dim", "3", "--points", "50",
            "--dtype", "float32", "float64", "--repeats", "2", "--peak-bandwidth", "100", "--quiet",
            "--json", str(out_json)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("fun "))
    for column in ("A ms", "B ms", "D ms", "A/B", "A/D", "compile A s", "compile B s", "A GB/s", "A % peak",
                   "D % peak"):  # fmt: skip
        assert column in header
    assert "peak 100 GB/s" in out and "summary: A/B > 1 in " in out and " of 4 configurations" in out
    rows = json.loads(out_json.read_text())
    assert [(r["function"], r["dtype"]) for r in rows] == [("sphere", "float32"), ("sphere", "float64"),
                                                          ("mlp", "float32"), ("mlp", "float64")]  # fmt: skip
    for row in rows:
        itemsize = 4 if row["dtype"] == "float32" else 8
        assert row["stencil_bytes"] == 50 * (2 * 3) * (3 + 1) * itemsize  # 6 points of 3 coordinates, 6 values
        assert row["rounds"] == 2 and min(row["a_s"], row["b_s"], row["d_s"]) > 0
        assert row["a_over_b"] > 0 and row["a_over_d"] > 0 and row["compile_a_s"] >= 0
        assert row["compiles_b"] >= 1 and row["compile_b_s"] > 0  # B is a new jit each time: XLA compiles it
        assert row["a_peak"] == pytest.approx(row["stencil_bytes"] / row["a_s"] / 1e9 / 100)
        assert f"{100 * row['a_peak']:.1f}%" in out
    ratios = sorted(r["a_over_b"] for r in rows)
    assert f"median A/B {(ratios[1] + ratios[2]) / 2:.2f}" in out


@pytest.mark.x64_independent
def test_compare_bad_input_is_explained(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["bench", "--compare", "--peak-bandwidth", "0"])
    assert stop.value.code == 2
    assert "argument --peak-bandwidth: must be a positive number, got '0'" in capsys.readouterr().err
    assert main(["bench", "--compare", "--large"]) == 2
    assert "--compare and --large are two different benchmarks" in capsys.readouterr().err
    assert main(["bench", "--compare", "--dim", "100", "--points", "100000", "--max-stencil-gb", "1"]) == 2
    assert "exceeds --max-stencil-gb 1; raise it or pass smaller --dim/--points" in capsys.readouterr().err


@pytest.mark.x64_independent
def test_compare_interrupted_keeps_its_finished_rows(tmp_path, capsys, monkeypatch):
    interrupt_on_call(monkeypatch, bench, "compare_one", 2)
    out = tmp_path / "c.json"
    argv = ["bench", "--compare", "--function", "sphere", "--dim", "2", "--points", "30", "--repeats", "1", "--quiet",
            "--json", str(out)]  # fmt: skip
    assert main(argv) == 130
    assert [r["dtype"] for r in json.loads(out.read_text())] == ["float32"]
    assert "interrupted: 1 of 2 rows finished; in " in capsys.readouterr().out


def test_bench_row_leaves_b_out_where_its_stencil_would_not_fit(monkeypatch):
    monkeypatch.setattr(bench, "FLOOR_LIMIT", 1000)  # bytes: 200 points' stencil (9,600 bytes) is over it
    row = bench.bench_one("sphere", 2, 200, "float32", "central", 2, repeats=1, reference_points=5)
    assert row.hand_s is None and row.hand_ratio is None and row.floor_s is None and row.batch_grad_s > 0
    assert " -  " in bench.format_rows([row]).splitlines()[3]
