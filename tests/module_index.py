"""The module index of docs/architecture.md: every module of the package with the first sentence of its docstring,
written from the code (``python -m tests.module_index --write``) and checked by tests/unit/test_module_index.py."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "orchestrator"
DOCUMENT = PACKAGE.parent / "docs" / "architecture.md"
BEGIN = "<!-- module index: written by `python -m tests.module_index --write`, checked by a test -->"
END = "<!-- end of the module index -->"


def summary(path: Path) -> str:
    """The first sentence of the module's docstring (its first paragraph, on one line)."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    paragraph = " ".join(docstring.split("\n\n")[0].split())
    sentence = re.split(r"(?<=[.:;])\s+(?=[A-Z`(])", paragraph)[0]
    return sentence.replace("``", "`")


def index() -> str:
    """The index as Markdown: one line per module, by package, migrations left out."""
    lines = [BEGIN, ""]
    for path in sorted(PACKAGE.rglob("*.py"), key=lambda p: p.relative_to(PACKAGE).parts):
        relative = path.relative_to(PACKAGE)
        if "migrations" in relative.parts or path.name == "__main__.py":
            continue
        name = str(relative.parent) + "/" if path.name == "__init__.py" else str(relative)
        name = "orchestrator/" if name == "./" else name
        lines.append(f"- `{name}`: {summary(path) or '(no docstring)'}")
    return "\n".join([*lines, "", END])


def current() -> str:
    """The index as docs/architecture.md holds it now."""
    text = DOCUMENT.read_text(encoding="utf-8")
    return text[text.index(BEGIN) : text.index(END) + len(END)]


def write() -> None:
    """Replace the index in docs/architecture.md with the one the code gives."""
    text = DOCUMENT.read_text(encoding="utf-8")
    DOCUMENT.write_text(text.replace(current(), index()), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        print(index())
