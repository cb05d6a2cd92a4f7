"""The command line, run as a user would: through `python -m jaxgrad` in a fresh process, and through main()."""

import csv
import json
import os
import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest

from jaxgrad import functions
from jaxgrad.cli import main

# Every test here runs the command, which computes inside its own jax.enable_x64(True): the tests' x64 mode cannot
# change what it does, so ci/test runs them in its float32-only pass alone (see x64_independent in tests/conftest.py).
pytestmark = pytest.mark.x64_independent


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


def test_user_modules_import_under_the_users_own_x64(capsys, tmp_path, monkeypatch):
    """The command turns float64 on for itself; a user's module imported under it had float64 arrays where plain
    Python gives float32 (a float32 check of their loss ran in float64: errors of 5e-11, from a new-user review).
    Their --function and --like modules now import, and a --like callable runs, under the process's own setting."""
    monkeypatch.syspath_prepend(str(tmp_path))
    module = ("import jax.numpy as jnp\nDATA = jnp.linspace(0.5, 1.5, 3)\nSEEN = []\n"
              "def loss(p):\n    return jnp.sum((p * DATA) ** 2)\n"
              "def params():\n    SEEN.append(jnp.zeros(3).dtype.name)\n"
              "    return jnp.ones(3, 'float32')\n")  # fmt: skip
    for x64, dtype in ((False, "float32"), (True, "float64")):
        name = f"users_{dtype}"
        (tmp_path / f"{name}.py").write_text(module)
        with jax.enable_x64(x64):
            assert main(["grad", "--function", f"{name}:loss", "--like", f"{name}:params"]) == 0
        imported = sys.modules[name]
        assert (imported.DATA.dtype.name, imported.SEEN) == (dtype, [dtype])
    capsys.readouterr()


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
    assert "beale takes dim 2 only, got 3" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("command", "phrase"),
    [("grad", "Print the numerical gradient"), ("study", "Sweep the finite-difference step"),
     ("plot", "Draw a function of 2 coordinates"), ("functions", "List the built-in test functions")],
)  # fmt: skip
def test_each_command_describes_itself(capsys, command, phrase):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert phrase in " ".join(capsys.readouterr().out.split())


def test_plot_without_what_names_the_choices(capsys):
    assert main(["plot"]) == 2
    err = capsys.readouterr().err
    assert "say what to draw" in err and "jaxgrad plot field --out field.png" in err and "plot errormap" in err
    assert main(["plot", "field"]) == 2
    assert "--out is required" in capsys.readouterr().err


def test_dotted_module_function_gets_a_hint(capsys):
    assert main(["grad", "--function", "mymlp.flat_loss", "--point", "1,2"]) == 2
    assert "Did you mean mymlp:flat_loss" in capsys.readouterr().err


def test_builtin_dimension_error_names_the_fix(capsys):
    assert main(["study", "--function", "beale", "--dim", "3", "--quiet"]) == 2
    assert "beale takes dim 2 only, got 3; pass --dim 2" in capsys.readouterr().err


def test_descent_outside_the_domain_grows_the_box(capsys, tmp_path):
    out = str(tmp_path / "f.png")
    assert main(["plot", "field", "--function", "sphere", "--domain=-2,2", "--descent=-3,4", "--out", out]) == 0
    assert "drawn box [-3.35, 4.35] × [-3.35, 4.35]: --domain -2,2 grown" in capsys.readouterr().out
    diverging = ["plot", "field", "--descent=-3,4", "--learning-rate", "1.5", "--steps", "2000", "--out", out]
    assert main(diverging) == 2  # |x| grows by 2 per step: past float64 after ~1000 steps
    assert "diverges" in capsys.readouterr().err


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
    for column in ("batch_grad ms", "B ms", "A/B", "B compile s", "floor ms", "ratio", "numpy s", "vs numpy", "scipy s",
                   "float32", "float64"):  # fmt: skip
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
    for row in rows:  # B, the hand-written baseline, is central order 2: measured against that method only
        central = row["method"] == "central 2"
        assert (row["hand_s"] is not None and row["hand_s"] > 0 and row["hand_ratio"] > 0) == central
        assert (row["hand_compile_s"] is not None) == central


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
    from compile_count import counting_compiles

    with counting_compiles() as (compiles, _):  # a checking program per d and dtype, shared by the functions
        assert main(["compare", "--points", "300", "--quiet"]) == 0
    assert compiles["jit(_batch_check)"] <= 4, compiles  # d = 8 and 2, float32 and float64 (16 runs)
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


def test_compare_with_the_complex_step_says_why_it_is_inconclusive(capsys):
    """Every run is INCONCLUSIVE (the exact gradient's rounding is unknown at the complex step's precision) and the
    lines say to compare with a real difference; the NumPy reference, whose tolerance needs the real f's noise, passes
    (it passed 2-59% with the noise of Im f)."""
    assert main(["compare", "--method", "complex", "--points", "200", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "0 of 16 runs OK, 16 inconclusive, 0 mismatched" in out, out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] and line.split()[0] in functions.names()]
    rows = [row for row in rows if row[-1] == "INCONCLUSIVE"]  # the table's, not the lines under it
    assert len(rows) == 16 and all(row[10] == "100%" for row in rows), out  # the "ref pass" column
    assert "rosenbrock float64: inconclusive, the complex step cannot check a gradient to its own precision" in out
    assert "compare with --method central or --method richardson" in out


def test_compare_step_below_resolution_is_a_usage_error(capsys):
    argv = ["compare", "--function", "sphere", "--points", "10", "--dtype", "float32", "--quiet", "--step", "1e-30"]
    assert main(argv) == 2
    assert "below the resolution" in capsys.readouterr().err


def test_an_inconclusive_run_names_the_tolerance_the_user_widened(capsys):
    """A large --atol leaves every point unresolved: the advice names it (it blamed the step alone), names the step
    the run took (it said "the default step" for --step auto), and no overflow warning reaches the shell (from the
    review)."""
    argv = ["compare", "--function", "sphere", "--points", "50", "--dtype", "float64", "--quiet", "--atol", "1e308"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered" in the norm of the tolerances
        assert main(argv) == 0
    out = capsys.readouterr().out
    assert ("sphere float64: inconclusive, 50 of 50 points cannot be resolved at --step auto (the default)" in out
            and "the tolerance includes --atol 1e+308: smaller values resolve more" in out), out  # fmt: skip


def test_directions_with_a_step_of_ones_own_is_a_usage_error_in_flags(capsys):
    """The error names --step and --directions (it said "Pass step=None, or directions=None"); a directional run's
    advice offers no --step (it said "at --step auto (the default) ...: try another --step")."""
    argv = ["compare", "--function", "sphere", "--points", "10", "--directions", "3", "--step", "1e-3", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "drop --step, or --directions" in err and "=None" not in err, err
    argv = ["compare", "--function", "sphere", "--points", "20", "--dtype", "float64", "--directions", "3", "--quiet",
            "--atol", "1e308"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert ("20 of 20 points cannot be resolved (the tolerance is as large as the gradient there): try --method "
            "richardson; the tolerance includes --atol 1e+308" in out and "-step" not in out), out  # fmt: skip


def test_study_takes_methods_an_order_and_a_step_grid(tmp_path, capsys):
    argv = ["study", "--function", "sphere", "--points", "20", "--dtype", "float64", "--method", "central", "forward",
            "--order", "2", "--steps", "1e-2", "1e-3", "1e-4", "--out", str(tmp_path), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads((tmp_path / "study.json").read_text())["rows"]
    assert {(r["method"], r["order"]) for r in rows} == {("central", 2), ("forward", 2)}
    assert sorted({r["step"] for r in rows}) == pytest.approx([1e-4, 1e-3, 1e-2])


# ------------------------------------------------------------------------------------------------------ compare files
CLI_DTYPES = ("float32", "float64")  # the command's default --dtype, whatever the tests' x64 mode


def test_compare_records_each_finished_run_and_ctrl_c_keeps_them(tmp_path, capsys, monkeypatch):
    """Each finished run is appended to r.runs.jsonl (at the latest while the run after it runs): Ctrl-C during the
    third run finds the first runs in the record, and r.json and r.csv, written once at the end, hold both finished
    runs; the record is then removed."""
    import jaxgrad.cli.compare as command

    real, calls, seen = command.compare, [], []

    def third_is_interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            seen.append((tmp_path / "r.runs.jsonl").read_text())
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(command, "compare", third_is_interrupted)
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    argv = ["compare", "--function", "sphere", "--function", "beale", "--points", "30", "--quiet", "--json",
            str(out_json), "--csv", str(out_csv)]  # fmt: skip  # 30 points, as the tests beside: their programs
    assert main(argv) == 130
    assert "interrupted: 2 of 4 runs finished" in capsys.readouterr().out
    recorded = [json.loads(line) for line in seen[0].splitlines()]
    runs = json.loads(out_json.read_text())
    assert [(r["function"], r["dtype"], len(r["rows"])) for r in runs] == [("sphere", d, 30) for d in CLI_DTYPES]
    assert 1 <= len(recorded) <= 2 and recorded == runs[: len(recorded)]
    assert len(out_csv.read_text().splitlines()) == 1 + 2 * 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.json"]


def test_compare_record_outlives_a_failed_write_and_a_second_command_records_beside_it(tmp_path, capsys, monkeypatch):
    """When the files cannot be written at the end, r.runs.jsonl keeps every finished run (one JSON line each); a
    command started while it is there records into r.runs-2.jsonl and leaves it alone."""
    import jaxgrad.cli.compare as command

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    argv = ["compare", "--function", "beale", "--points", "30", "--quiet", "--json", str(tmp_path / "r.json")]
    with monkeypatch.context() as patch:
        patch.setattr(command, "write_json", disk_full)
        assert main(argv) == 2
    assert "No space left on device" in capsys.readouterr().err
    record = (tmp_path / "r.runs.jsonl").read_text()
    runs = [json.loads(line) for line in record.splitlines()]
    assert [(r["function"], r["dtype"], r["num_points"]) for r in runs] == [("beale", d, 30) for d in CLI_DTYPES]
    assert main([*argv, "--dtype", "float32"]) == 0
    assert (tmp_path / "r.runs.jsonl").read_text() == record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.runs.jsonl"]


def test_compare_files_hold_every_run_and_agree_with_each_other(tmp_path, capsys):
    """r.json is a list of runs (summary and per-point rows); r.csv has the same rows with the function and dtype; the
    same JSON goes to standard output with --json -."""
    argv = ["compare", "--function", "sphere", "--function", "beale", "--points", "30", "--quiet", "--seed", "3"]
    assert main([*argv, "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r.csv")]) == 0
    runs = json.loads((tmp_path / "r.json").read_text())
    assert [(r["function"], r["dtype"]) for r in runs] == [(f, d) for f in ("sphere", "beale") for d in CLI_DTYPES]
    with open(tmp_path / "r.csv", newline="") as stream:
        table = list(csv.DictReader(stream))
    assert len(table) == 30 * len(runs)
    for row, (run, point) in zip(table, [(r, p) for r in runs for p in r["rows"]], strict=True):
        assert (row["function"], row["dtype"], row["worst_column"]) == (run["function"], run["dtype"],
                                                                         point["worst_column"])  # fmt: skip
        assert float(row["numeric"]) == point["numeric"] and float(row["tolerance"]) == point["tolerance"]
        assert row["passed"] == str(point["passed"])
    capsys.readouterr()
    assert main([*argv, "--json", "-"]) == 0
    streamed = json.loads(capsys.readouterr().out)
    assert [r["rows"] for r in streamed] == [r["rows"] for r in runs]


def test_compare_table_says_what_unresolved_means(capsys):
    assert main(["compare", "--function", "himmelblau", "--points", "20", "--dtype", "float32", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "unresolved" in out.splitlines()[1]  # the column
    assert "unresolved: points where the tolerance is as large as the gradient itself" in out  # and its legend


def test_an_inconclusive_run_names_the_step_it_used(capsys):
    argv = ["compare", "--function", "sphere", "--points", "50", "--dtype", "float32", "--quiet"]
    assert main([*argv, "--step", "1e-6"]) == 0  # float32 cannot resolve a gradient at h = 1e-6: 24% off
    out = capsys.readouterr().out
    assert "50 of 50 points cannot be resolved at --step 1e-06 (" in out
    assert "try --dtype float64, another --step or --method richardson" in out  # spelled for the command line


def test_the_command_keeps_its_compiled_programs_between_runs(tmp_path):
    """With JAXGRAD_CACHE_DIR set, a second identical command reads its programs from JAX's persistent compilation
    cache (cache hits counted by jax.monitoring) instead of compiling them again."""
    script = (
        "import jax, jax.monitoring, jaxgrad.cli as cli\n"
        "hits = []\n"
        "jax.monitoring.register_event_listener(lambda name, **kw: hits.append(name) if name.endswith('cache_hits') "
        "else None)\n"
        "code = cli.main(['compare', '--function', 'sphere', '--dim', '3', '--points', '50', '--dtype', 'float32'])\n"
        "print(code, len(hits))\n"
    )
    env = {**os.environ, "JAXGRAD_CACHE_DIR": str(tmp_path / "xla")}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
            for _ in range(2)]  # fmt: skip
    first, second = (r.stdout.split()[-2:] for r in runs)
    assert runs[0].returncode == 0, runs[0].stderr
    assert first == ["0", "0"] and any((tmp_path / "xla").iterdir())
    assert second[0] == "0" and int(second[1]) >= 1
