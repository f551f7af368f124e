"""The README's configuration table names every option the code reads."""

from __future__ import annotations

from pathlib import Path

from portal.config import OPTIONS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_option_is_documented() -> None:
    missing = [o.name for o in OPTIONS if f"`PORTAL_{o.name}`" not in README]
    assert missing == []


def test_readme_gives_the_two_commands() -> None:
    assert "make run" in README and "make test" in README


def test_the_settings_page_is_up_to_date() -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "gen_settings_doc.py"
    spec = importlib.util.spec_from_file_location("gen_settings_doc", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    current = (Path(__file__).resolve().parents[2] / "docs" / "settings.md").read_text()
    assert current == module.render(), "run: .venv/bin/python scripts/gen_settings_doc.py"
