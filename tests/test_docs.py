"""The docs site and the notebooks it is built from.

Every notebook in notebooks/ is executed here, once; the site is then built in strict mode from a copy of notebooks/
holding those executed notebooks (the build itself executes nothing), so a broken link, a bad cross-reference or a
docstring griffe cannot read fails.
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONFIG = ROOT / "ci" / "mkdocs.yml"


def turns_float64_on(path: pathlib.Path) -> bool:
    """Whether the notebook's first code cell turns float64 on, before it computes anything: the JAX_ENABLE_X64 its
    kernel inherits from this run then changes nothing, and the notebook runs in ci/test's float32-only pass alone."""
    first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    return 'jax.config.update("jax_enable_x64", True)' in first.source


NOTEBOOK_PARAMS = [
    pytest.param(p, id=p.stem, marks=[pytest.mark.x64_independent] if turns_float64_on(p) else []) for p in NOTEBOOKS
]


@pytest.fixture(scope="session")
def executed(tmp_path_factory) -> pathlib.Path:
    """A copy of notebooks/ into which test_notebook_executes writes each notebook it ran, with its outputs."""
    docs = tmp_path_factory.mktemp("docs") / "notebooks"
    shutil.copytree(ROOT / "notebooks", docs)
    return docs


def build(config: pathlib.Path, site: pathlib.Path, docs: pathlib.Path) -> subprocess.CompletedProcess:
    # No --quiet: it drops warnings before --strict counts them. NO_MKDOCS_2_WARNING hides Material's notice.
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", JAXGRAD_DOCS_DIR=str(docs))
    env.update(JAXGRAD_DOCS_EXECUTE="false", JAXGRAD_DOCS_CACHE="false")  # executed by the tests; nothing cached
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=site.parent, timeout=300)


@pytest.mark.x64_independent
def test_notebooks_exist_without_outputs():
    names = {p.name for p in NOTEBOOKS}
    assert {"01_partial_derivatives_and_gradient.ipynb", "02_numeric_vs_autodiff.ipynb"} <= names, names
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs: strip them"


@pytest.mark.parametrize("path", NOTEBOOK_PARAMS)
def test_notebook_executes(path, executed):
    """Each notebook runs top to bottom without an error; its own asserts check its numbers against analytic
    derivatives, jax.grad or NumPy."""
    book = nbformat.read(path, as_version=4)
    NotebookClient(
        book, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    assert all(cell.execution_count for cell in book.cells if cell.cell_type == "code")
    nbformat.write(book, executed / path.name)


def relative_links(html: str):
    for target in re.findall(r'(?:href|src)="([^"#?]+)[^"]*"', html):
        if not re.match(r"^[a-z][a-z0-9+.-]*:|^//", target):
            yield target


@pytest.mark.x64_independent
def test_site_builds_in_strict_mode(tmp_path, executed):
    """From the executed notebooks (the originals, without outputs, for those this run did not execute)."""
    site = tmp_path / "site"
    result = build(CONFIG, site, executed)
    assert result.returncode == 0, result.stdout + result.stderr
    pages = sorted(p for p in site.rglob("*.html") if p.name != "404.html")  # 404.html links from the site root
    expected = {p.stem for p in NOTEBOOKS} | {"api"}
    assert expected <= {p.parent.name for p in pages}, sorted(p.parent.name for p in pages)
    api = (site / "api" / "index.html").read_text()
    for name in ("jaxgrad.batch_grad", "jaxgrad.check_grad", "jaxgrad.numerics.tolerance", "jaxgrad.reference"):
        assert f'id="{name}"' in api, name
    assert "&gt;&gt;&gt;" in api and "<blockquote>\n<blockquote>" not in api  # examples render as code, not quotes
    first = NOTEBOOKS[0]
    if any(cell.get("outputs") for cell in nbformat.read(executed / first.name, as_version=4).cells):  # ran here
        assert "data:image/png;base64" in (site / first.stem / "index.html").read_text()
    # mkdocs checks the links of Markdown pages; the notebooks' links are checked here, in the built HTML.
    broken = [
        f"{page.relative_to(site)} -> {target}"
        for page in pages
        for target in relative_links(page.read_text())
        if not (page.parent / target).resolve().exists()
    ]
    assert broken == []


@pytest.mark.x64_independent
def test_strict_build_fails_on_a_broken_link(tmp_path):
    """The check above could fail: the same build with one link to a missing page is refused, naming the link."""
    docs, ci = tmp_path / "notebooks", tmp_path / "ci"
    shutil.copytree(ROOT / "notebooks", docs)
    shutil.copytree(ROOT / "ci", ci)
    config = ci / "mkdocs.yml"
    config.write_text(config.read_text().replace("paths: [..]", f"paths: [{ROOT}]"))  # import this checkout
    (docs / "README.md").write_text((docs / "README.md").read_text() + "\nSee [the missing page](missing.md).\n")
    book = nbformat.read(docs / NOTEBOOKS[0].name, as_version=4)
    book.cells.append(nbformat.v4.new_markdown_cell("See [a missing notebook](missing.ipynb)."))
    nbformat.write(book, docs / NOTEBOOKS[0].name)
    result = build(config, tmp_path / "site", docs)
    assert result.returncode != 0
    assert "'missing.md'" in result.stderr and "'missing.ipynb'" in result.stderr, result.stderr
