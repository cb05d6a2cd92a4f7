"""The command line, run as a user would: through `python -m jaxgrad` in a fresh process, and through main()."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxgrad.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "jaxgrad", *args], capture_output=True, text=True, timeout=300)


def test_seed_example_from_a_shell():
    done = run_cli("grad", "--function", "sphere", "--point", "3,4")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[6. 8.]\n"


@pytest.mark.parametrize(("point", "expected"), [("0,2", "[0. 4.]"), ("3,0", "[6. 0.]")])
def test_seed_points_float32(capsys, point, expected):
    assert main(["grad", "--point", point, "--dtype", "float32"]) == 0
    assert capsys.readouterr().out.strip() == expected


def test_grad_options_and_user_function(capsys, tmp_path, monkeypatch):
    (tmp_path / "cubes.py").write_text("import jax.numpy as jnp\ndef f(x):\n    return jnp.sum(x ** 3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["grad", "--function", "cubes:f", "--point=-1,2", "--method", "forward", "--step", "1e-6"]) == 0
    values = np.array(capsys.readouterr().out.strip("[]\n").split(), float)
    np.testing.assert_allclose(values, [3.0, 12.0], rtol=1e-5)


def test_functions_lists_every_builtin(capsys):
    from jaxgrad import functions

    assert main(["functions"]) == 0
    out = capsys.readouterr().out
    for name in functions.names():
        assert name in out


def test_unknown_function_lists_the_names(capsys):
    assert main(["grad", "--function", "spehre", "--point", "1,2"]) == 2
    err = capsys.readouterr().err
    assert "Unknown function 'spehre'" in err and "rosenbrock" in err


def test_wrong_dimension_is_explained(capsys):
    assert main(["grad", "--function", "beale", "--point", "1,2,3"]) == 2
    assert "takes d 2" in capsys.readouterr().err


def test_bad_point_is_explained():
    done = run_cli("grad", "--point", "3,four")
    assert done.returncode == 2
    assert "argument --point: must be finite numbers separated by commas" in done.stderr


def test_bench_prints_the_table_and_json(tmp_path, capsys):
    out_json = tmp_path / "bench.json"
    argv = ["bench", "--quick", "--function", "rosenbrock", "--function", "mlp", "--points", "2000", "--dim", "4",
            "--repeats", "1", "--reference-points", "20"]  # fmt: skip
    assert main([*argv, "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    for column in ("batch_grad ms", "floor ms", "ratio", "numpy s", "vs numpy", "scipy s", "float32", "float64"):
        assert column in out
    rows = json.loads(out_json.read_text())
    assert [(r["function"], r["dtype"], r["method"]) for r in rows] == [
        ("rosenbrock", "float32", "central 2"),
        ("rosenbrock", "float64", "central 2"),
        ("rosenbrock", "float64", "richardson 6"),
        ("mlp", "float32", "central 2"),
        ("mlp", "float64", "central 2"),
        ("mlp", "float64", "richardson 6"),
    ]
    for row in rows:
        assert row["batch_grad_s"] > 0 and row["floor_s"] > 0 and row["reference_s"] > 0
        assert row["ratio_to_floor"] == pytest.approx(row["batch_grad_s"] / row["floor_s"])
        assert row["error"] < (1e-3 if row["dtype"] == "float32" else 1e-8)  # checked against the analytic gradient
    assert rows[1]["scipy_error"] < 1e-10 and rows[0]["scipy_s"] is None  # scipy runs in float64 only
    assert rows[2]["error"] < 1e-12  # Richardson meets scipy's accuracy


def test_bench_large_runs_small(capsys):
    assert main(["bench", "--large", "--points", "3000", "--dim", "20"]) == 0
    out = capsys.readouterr().out
    assert "naive stencil GB" in out and "3,000" in out


# ------------------------------------------------------------------------------------------------------ compare
BUG_MODULE = """
import jax, jax.numpy as jnp

@jax.custom_jvp
def loss(x):
    return jnp.sum(jnp.log(jnp.cosh(x))) + 0.5 * jnp.sum(x ** 2)

@loss.defjvp
def _loss_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    g = jnp.tanh(x) + x
    return loss(x), jnp.dot(g.at[1].multiply(-1), t)   # planted bug: sign flip in x[1]

def right(x):
    return 2 * x

def wrong(x):
    return 2.1 * x
"""


def test_compare_builtin_suite_exits_0(capsys):
    assert main(["compare", "--points", "300", "--quiet"]) == 0
    out = capsys.readouterr().out
    from jaxgrad import functions

    for name in functions.names():
        assert name in out
    assert "16 of 16 runs OK, 0 inconclusive, 0 mismatched" in out and "MISMATCH" not in out


def test_compare_planted_bug_module_exits_1(tmp_path):
    (tmp_path / "bugmod.py").write_text(BUG_MODULE)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    out_json, out_csv = tmp_path / "out.json", tmp_path / "out.csv"
    done = subprocess.run(
        [sys.executable, "-m", "jaxgrad", "compare", "--function", "bugmod:loss", "--dim", "5", "--points", "500",
         "--json", str(out_json), "--csv", str(out_csv), "--quiet"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "MISMATCH" in done.stdout and "x[1]" in done.stdout
    runs = json.loads(out_json.read_text())
    assert [r["dtype"] for r in runs] == ["float32", "float64"] and not any(r["ok"] for r in runs)
    assert all(r["worst"]["name"] == "x[1]" for r in runs)
    assert len(out_csv.read_text().splitlines()) == 1 + 2 * 500


def test_compare_checks_a_given_gradient(tmp_path, monkeypatch, capsys):
    (tmp_path / "bugmod.py").write_text(BUG_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["compare", "--function", "sphere", "--points", "200", "--no-reference", "--quiet"]
    assert main([*argv, "--grad", "bugmod:right"]) == 0
    assert main([*argv, "--grad", "bugmod:wrong"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_negative_numbers_after_point_and_domain(capsys):
    assert main(["grad", "--function", "sphere", "--point", "-1,2.5"]) == 0
    assert capsys.readouterr().out.strip() == "[-2.  5.]"
    assert main(["compare", "--function", "sphere", "--domain", "-2,-1", "--points", "20", "--quiet"]) == 0
    done = run_cli("grad", "--point=")
    assert done.returncode == 2 and "argument --point: must be finite numbers separated by commas" in done.stderr


def test_module_in_the_current_directory_is_found(capsys, tmp_path, monkeypatch):
    """A console script has no current directory on sys.path; the CLI adds it, as `python -m` does."""
    (tmp_path / "herelosses.py").write_text("import jax.numpy as jnp\ndef f(x):\n    return jnp.sum(x ** 2)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    assert main(["grad", "--function", "herelosses:f", "--point", "3,4"]) == 0
    assert capsys.readouterr().out.strip() == "[6. 8.]"


def test_numpy_function_on_the_command_line(capsys, tmp_path, monkeypatch):
    source = "import numpy as np\ndef f(x):\n    return np.sum(np.sin(x))\ndef g(x):\n    return np.cos(x)\n"
    (tmp_path / "nplosses.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["compare", "--function", "nplosses:f", "--dim", "3", "--points", "20", "--quiet"]
    assert main(argv) == 2
    assert "not traceable by JAX" in capsys.readouterr().err
    assert main([*argv, "--numpy"]) == 2
    assert "--numpy needs --grad" in capsys.readouterr().err
    assert main([*argv, "--numpy", "--grad", "nplosses:g"]) == 0
    capsys.readouterr()
    assert main(["grad", "--function", "nplosses:f", "--point", "1,-2", "--numpy"]) == 0
    np.testing.assert_allclose(
        np.array(capsys.readouterr().out.strip("[]\n").split(), float), np.cos([1, -2]), rtol=1e-8
    )
    assert main(["compare", "--function", "nplosses:f", "--grad", "nplosses:nosuch", "--points", "5"]) == 2
    assert "`--grad nplosses:nosuch`: 'nplosses' has no attribute 'nosuch'" in capsys.readouterr().err


def test_study_without_matplotlib_writes_the_tables_and_says_why(capsys, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    argv = ["study", "--function", "sphere", "--points", "10", "--dtype", "float32", "--method", "central"]
    assert main([*argv, "--out", str(tmp_path), "--quiet"]) == 0
    assert "no pictures: matplotlib is not installed" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.csv", "study.json"]


# ------------------------------------------------------------------------------------------------------ parity
def test_compare_takes_method_order_and_step_like_grad(tmp_path):
    out = tmp_path / "r.json"
    argv = ["compare", "--function", "rosenbrock", "--points", "100", "--dtype", "float64", "--quiet", "--no-reference"]
    assert main([*argv, "--method", "richardson", "--order", "4", "--json", str(out)]) == 0
    (run,) = json.loads(out.read_text())
    assert (run["method"], run["order"], run["verdict"]) == ("richardson", 4, "OK")
    assert main([*argv, "--method", "forward", "--step", "1e-6", "--json", str(out)]) == 0
    (run,) = json.loads(out.read_text())
    assert (run["method"], run["order"]) == ("forward", 1)


def test_compare_step_below_resolution_is_a_usage_error(capsys):
    argv = ["compare", "--function", "sphere", "--points", "10", "--dtype", "float32", "--quiet", "--step", "1e-30"]
    assert main(argv) == 2
    assert "below the resolution" in capsys.readouterr().err


def test_study_takes_methods_an_order_and_a_step_grid(tmp_path, capsys):
    argv = ["study", "--function", "sphere", "--points", "20", "--dtype", "float64", "--method", "central", "forward",
            "--order", "2", "--steps", "1e-2", "1e-3", "1e-4", "--out", str(tmp_path), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads((tmp_path / "study.json").read_text())["rows"]
    assert {(r["method"], r["order"]) for r in rows} == {("central", 2), ("forward", 2)}
    assert sorted({r["step"] for r in rows}) == pytest.approx([1e-4, 1e-3, 1e-2])
