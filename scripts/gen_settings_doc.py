"""Write docs/settings.md from portal/core/settings.py (run after changing a setting)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portal.core.settings import DEFINITIONS  # noqa: E402


def render() -> str:
    out = ["# Portal settings", "",
           "The MFA Server console switches, stored in the database with their original names. Show them with",
           "`flask --app wsgi settings`; change them with `flask --app wsgi settings key=value ...` (each change is",
           "validated and audited). Generated from `portal/core/settings.py` by `scripts/gen_settings_doc.py`.", ""]
    section = None
    for d in DEFINITIONS:
        if d.section != section:
            section = d.section
            out += ["", f"## {section}", "", "| MFA Server name | Key | Type | Default | What it does |",
                    "|---|---|---|---|---|"]
        kind = d.kind
        if d.kind == "int":
            kind = f"whole number {d.minimum}–{d.maximum}"
        elif d.kind == "choice":
            kind = "one of " + ", ".join(f"`{c}`" for c in d.choices)
        name = f"↳ {d.name}" if d.parent else f"**{d.name}**"
        out.append(f"| {name} | `{d.key}` | {kind} | `{d.default!r}` | {d.help} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    (ROOT / "docs" / "settings.md").write_text(render())
