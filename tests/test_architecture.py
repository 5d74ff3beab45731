"""The layout keeps its promises (docs/architecture.md): who may import whom, module sizes,
and a public API that no sub-package shadows."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import integrations

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "integrations"
MAX_LINES = 400

# What each part of integrations/ may import from the rest of the app. The foundation
# (models, exceptions, signals) is open to all; `checks`, `apps` and `management` wire things
# together at the top.
FOUNDATION = {"models", "exceptions", "signals"}
ALLOWED = {
    "security": set(),
    "store": {"security"},
    "providers": set(),
    "refreshing": {"store", "providers"},
    "api": {"store", "providers", "refreshing"},
    "psa": {"security", "store", "providers", "refreshing"},
    "background": {"store", "providers", "refreshing"},
    "web": {"store", "providers", "refreshing", "api", "psa"},
    "admin": {"store", "providers", "refreshing", "psa", "templatetags"},
    "templatetags": set(),
}


def _modules(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*.py") if "migrations" not in path.parts]


def _imported(path: Path) -> set[str]:
    """Every module `path` imports, including under TYPE_CHECKING and inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_backends_import_nothing_from_the_app():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in _imported(path) if name.split(".")[0] == "integrations"
        )
        for path in _modules(ROOT / "backends")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_sub_packages_import_only_what_they_may(package):
    allowed = ALLOWED[package] | FOUNDATION | {package}
    wrong = set()
    for path in _modules(APP / package):
        for name in _imported(path):
            parts = name.split(".")
            if (
                parts[0] == "integrations"
                and len(parts) > 1
                and parts[1] not in allowed
                and (parts[1] in ALLOWED or parts[1] in {"checks", "apps", "management"})
            ):
                wrong.add(f"{path.relative_to(ROOT)} imports {name}")
    assert sorted(wrong) == []


def test_every_part_of_the_app_is_in_the_map():
    parts = {
        path.name for path in APP.iterdir() if path.is_dir() and (path / "__init__.py").exists()
    }
    assert parts - {"migrations", "management"} == set(ALLOWED)


def test_no_module_is_over_the_size_limit():
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for folder in ("integrations", "backends", "site_config")
        for path in _modules(ROOT / folder)
    }
    assert {path: size for path, size in sizes.items() if size > MAX_LINES} == {}


def test_no_sub_package_shadows_a_public_name():
    """Importing a sub-package sets it as an attribute of `integrations`: one named like a
    public function would replace that function for everyone (`from integrations import
    refresh` would give a module)."""
    sub_packages = {path.name for path in APP.iterdir() if (path / "__init__.py").exists()}
    sub_modules = {path.stem for path in APP.glob("*.py")}
    assert set(integrations.__all__) & (sub_packages | sub_modules) == set()


@pytest.mark.parametrize("name", integrations.__all__)
def test_the_public_api_is_importable(name):
    for package in ALLOWED:
        importlib.import_module(f"integrations.{package}")
    assert not isinstance(getattr(integrations, name), type(integrations))
