"""The house rules of the package layout, checked from the source: no import cycle between modules, no private
name imported across a module boundary, and the public surface in tiers."""

import ast
import pathlib

import pytest

import jaxgrad as jg

pytestmark = pytest.mark.x64_independent  # the source and the names it defines: ci/test's float32-only pass alone

PACKAGE = pathlib.Path(jg.__file__).parent


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    relative = pathlib.Path(*dotted.split(".")[1:]) if "." in dotted else pathlib.Path()
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative / "__init__.py").exists()


def _imports():
    """(importing module, imported module, imported name or None) for every relative import in the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    yield (module, full, None) if _is_module(full) else (module, target, alias.name)


def test_no_private_name_is_imported_across_modules():
    private = [f"{m} imports {t}.{n}" for m, t, n in _imports() if n and n.startswith("_") and not n.startswith("__")]
    assert not private, private


def test_the_modules_import_each_other_without_a_cycle():
    graph = {}
    for module, target, _ in _imports():
        if target != module and not module.startswith(target + "."):  # a package's own __init__ is not a cycle
            graph.setdefault(module, set()).add(target)
    state, cycles = {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


def test_the_top_level_holds_transformations_verification_results_and_the_scheme_and_step_classes():
    for name in ("grad", "batch_grad", "jacobian", "hessian", "jvp", "compare", "check_grad", "taylor_test",
                 "step_study", "Estimate", "Status", "Comparison", "Verdict", "Central", "StepDirection",
                 "DefaultStep", "Absolute", "Relative"):  # fmt: skip
        assert name in jg.__all__ and hasattr(jg, name), name
    for name in ("tolerance", "noise_estimate", "error_estimate", "finite_difference_weights", "default_step"):
        assert name not in jg.__all__ and hasattr(jg.numerics, name), name
