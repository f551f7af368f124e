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
