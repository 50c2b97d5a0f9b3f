"""Packaging: the declared dependencies are exactly what the package imports; one version source; a license."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import napari_dmicro

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "napari_dmicro"


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _distribution_name(requirement: str) -> str:
    """``"dask[array]>=2024.1"`` → ``"dask"`` (normalised as PEP 503 does)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def _third_party_imports(root: Path) -> set[str]:
    """Top-level module names imported anywhere below ``root`` (absolute imports, not stdlib, not ours)."""
    names = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    local = {p.stem for p in (REPO / "benchmarks").glob("*.py")}  # the benchmark scripts the harness tests import
    return names - set(sys.stdlib_module_names) - {"napari_dmicro", "__future__"} - local


def _distributions_of(modules: set[str]) -> set[str]:
    installed = packages_distributions()
    missing = sorted(m for m in modules if m not in installed)
    assert not missing, f"imported but not installed: {missing}"
    return {_distribution_name(dist) for m in modules for dist in installed[m]}


def _undeclared_and_unused(root: Path, requirements: list[str]) -> tuple[set[str], set[str]]:
    imported = _distributions_of(_third_party_imports(root))
    declared = {_distribution_name(r) for r in requirements}
    return imported - declared, declared - imported


def test_declared_dependencies_are_exactly_what_the_package_imports():
    assert _undeclared_and_unused(PACKAGE, _pyproject()["project"]["dependencies"]) == (set(), set())


def test_the_imports_check_names_an_undeclared_and_an_unused_dependency(tmp_path):
    (tmp_path / "module.py").write_text("import json\nimport tifffile\nfrom skimage import io\n")
    assert _undeclared_and_unused(tmp_path, ["scikit-image>=0.22", "magicgui>=0.8"]) == ({"tifffile"}, {"magicgui"})


def test_what_the_tests_import_is_in_the_test_extra_or_the_dependencies():
    project = _pyproject()["project"]
    declared = {_distribution_name(r) for r in [*project["dependencies"], *project["optional-dependencies"]["test"]]}
    assert _distributions_of(_third_party_imports(REPO / "tests")) <= declared


def test_the_version_has_one_source_and_the_license_is_spdx_with_its_file():
    project = _pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert _pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "napari_dmicro.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", napari_dmicro.__version__)
    assert project["license"] == "BSD-3-Clause" and project["license-files"] == ["LICENSE"]
    assert "BSD 3-Clause License" in (REPO / "LICENSE").read_text(encoding="utf-8")
