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
