"""Build the portal's translations: extract the messages, fill German from de_messages.py,
write translations/de/LC_MESSAGES/messages.{po,mo}. `--check` fails if a message has no
German text (run by the tests), so a new English string cannot ship untranslated.

    python scripts/translations.py          # rebuild .po and .mo
    python scripts/translations.py --check  # exit 1 listing untranslated messages
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import write_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from de_messages import DE  # noqa: E402

METHODS = [("portal/selfservice/**.py", "python"), ("templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "ngettext": (1, 2)}


def extract() -> Catalog:
    catalog = Catalog(locale="de", project="mfa-portal", domain="messages")
    for filename, lineno, message, _comments, _ctx in extract_from_dir(
            str(ROOT), method_map=METHODS, keywords=KEYWORDS):
        catalog.add(message, None, [(filename, lineno)])
    return catalog


def build(check: bool) -> int:
    catalog = extract()
    missing = []
    for msg in catalog:
        if not msg.id:
            continue
        german = DE.get(msg.id)
        if german is None:
            missing.append(msg.id)
            continue
        msg.string = german
    if missing:
        print(  # noqa: T201
            "untranslated (add them to scripts/de_messages.py):", *map(repr, missing), sep="\n  ")
        return 1
    if check:
        return 0
    out = ROOT / "translations" / "de" / "LC_MESSAGES"
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    write_po(buf, catalog, width=100, omit_header=False)
    (out / "messages.po").write_bytes(buf.getvalue())
    with open(out / "messages.mo", "wb") as fh:
        write_mo(fh, catalog)
    print(f"{sum(1 for m in catalog if m.id)} messages written to {out}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(build("--check" in sys.argv))
