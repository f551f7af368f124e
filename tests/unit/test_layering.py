"""portal/core must not import Flask, Flask-WTF or zeep: the domain stands alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "portal" / "core"
FORBIDDEN = ("flask", "flask_wtf", "wtforms", "zeep", "werkzeug")


@pytest.mark.parametrize("module", sorted(CORE.rglob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_web_framework(module: Path) -> None:
    tree = ast.parse(module.read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN, f"{module.name} imports {name}"


def test_the_check_sees_an_import() -> None:
    tree = ast.parse("from flask import Flask")
    node = tree.body[0]
    assert isinstance(node, ast.ImportFrom) and node.module == "flask"


SELFSERVICE = CORE.parent / "selfservice"
FRONTENDS = sorted([*SELFSERVICE.rglob("*.py"), *(CORE.parent / "mobileapp").rglob("*.py")])
PHONE = sorted((CORE.parent / "phone").rglob("*.py"))


def _imports(module: Path) -> list[str]:
    """Absolute names of what ``module`` (inside portal/) imports, relative imports resolved."""
    package = ["portal", *module.relative_to(CORE.parent).parent.parts]
    found: list[str] = []
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            found.append(".".join([*base, node.module or ""]).rstrip("."))
    return found


@pytest.mark.parametrize("module", FRONTENDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_frontends_reach_the_core_only_through_the_port(module: Path) -> None:
    for name in _imports(module):
        assert not name.startswith("portal.core"), f"{module.name} imports {name}: use portal.sdk.backend"


def test_the_portal_check_sees_a_relative_core_import(tmp_path: Path) -> None:
    assert "portal.core.audit" in _imports_of_text("from ..core.audit import Actor")


def _imports_of_text(text: str) -> list[str]:
    probe = SELFSERVICE / "_probe_for_test.py"
    probe.write_text(text)
    try:
        return _imports(probe)
    finally:
        probe.unlink()


@pytest.mark.parametrize("module", PHONE, ids=lambda p: p.name)
def test_the_reference_phone_uses_the_documented_protocol_only(module: Path) -> None:
    for name in _imports(module):
        assert not name.startswith("portal.") or name.startswith("portal.phone"), f"{module.name} imports {name}"
