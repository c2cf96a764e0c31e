"""The figures the docs quote, rendered from data files into the pages.

    python docs/figures/render.py           # write every marked block of README.md and docs/*.md afresh
    python docs/figures/render.py --check   # exit 1, naming the pages, if a block differs from its data

A figure a page quotes lives in a data file, `docs/figures/<topic>.json`, written and checked by the bench or by
the test that computes it (each file's "about" says which, and how to write it again). A page quotes figures only
inside a marked block:

    <!-- figures:NAME -->
    ...the text `docs/figures/templates/NAME.md` renders to...
    <!-- /figures:NAME -->

A template is Markdown with placeholders `{topic.key.key…}` or `{topic.key…:spec}`: `topic` is a data file's
name, the keys walk its objects (a number walks a list), and `spec` is Python's format spec (`,.0f`, `.2f`…).
A number renders with the spec (a negative one with a minus sign, −); a list of two numbers is a range, `lo–hi`
(one number when they are equal); a list of words renders `a, b and c`; a string as it is. Braces that do not
start with a data file's name are left alone. Paragraphs and list items are wrapped to the pages' width; tables
are left as they are. Standard library only: the bench may run it after writing a file.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

FIGURES = Path(__file__).resolve().parent
REPO = FIGURES.parents[1]
TEMPLATES = FIGURES / "templates"
WIDTH = 115  # the pages' line length: a rendered paragraph or list item is wrapped to it
BLOCK = re.compile(r"<!-- figures:([\w-]+) -->\n(.*?)<!-- /figures:\1 -->", re.S)
PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)((?:\.[\w-]+)+)(?::([^{}]*))?\}")


class FigureError(Exception):
    """A template names a figure its data file does not have, or a page's block names no template."""


def data() -> dict[str, Any]:
    """Every data file, by topic (its file name without .json)."""
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(FIGURES.glob("*.json"))}


def pages() -> list[Path]:
    """The pages that may quote figures: README.md and docs/*.md."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def lookup(values: dict[str, Any], topic: str, keys: list[str]) -> Any:
    value: Any = values[topic]
    walked = topic
    for key in keys:
        walked += f".{key}"
        try:
            value = value[int(key)] if isinstance(value, list) else value[key]
        except (KeyError, IndexError, ValueError, TypeError):
            raise FigureError(f"{{{walked}}}: docs/figures/{topic}.json has no such figure") from None
    return value


def number(value: float, spec: str) -> str:
    text = format(abs(value), spec) if spec else (str(abs(value)) if isinstance(value, int) else f"{abs(value):g}")
    return f"−{text}" if value < 0 else text


def shown(value: Any, spec: str, where: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return number(value, spec)
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        low, high = (number(v, spec) for v in value)
        return low if low == high else f"{low}–{high}"
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value[0] if len(value) == 1 else f"{', '.join(value[:-1])} and {value[-1]}"
    raise FigureError(f"{{{where}}}: a {type(value).__name__} is not a figure (a number, a range, words)")


def render_text(template: str, values: dict[str, Any]) -> str:
    def fill(match: re.Match) -> str:
        topic, path, spec = match.group(1), match.group(2), match.group(3) or ""
        if topic not in values:
            return match.group(0)
        keys = path[1:].split(".")
        return shown(lookup(values, topic, keys), spec, topic + path)

    return PLACEHOLDER.sub(fill, template)


def wrapped(text: str) -> str:
    """Paragraphs and list items wrapped to WIDTH (figures change length); tables and headings as they are."""
    out = []
    for paragraph in text.strip("\n").split("\n\n"):
        lines = paragraph.split("\n")
        if any(line.startswith(("|", "#", "<!--")) for line in lines):
            out.append(paragraph)
            continue
        items: list[list[str]] = []
        for line in lines:
            if line.startswith("- ") or not items:
                items.append([line])
            else:
                items[-1].append(line)
        out.append("\n".join(
            textwrap.fill(" ".join(" ".join(item).split()), WIDTH, break_long_words=False, break_on_hyphens=False,
                          subsequent_indent="  " if item[0].startswith("- ") else "")
            for item in items))
    return "\n\n".join(out) + "\n"


def render_block(name: str, values: dict[str, Any] | None = None) -> str:
    """What the block NAME says: its template with every figure filled in, wrapped."""
    template = TEMPLATES / f"{name}.md"
    if not template.exists():
        raise FigureError(f"figures:{name}: no template docs/figures/templates/{name}.md")
    return wrapped(render_text(template.read_text(encoding="utf-8"), data() if values is None else values))


def blocks(text: str) -> list[tuple[str, str]]:
    """The marked blocks of a page: (name, what it says now)."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]


def render_page(text: str, values: dict[str, Any] | None = None) -> str:
    values = data() if values is None else values
    return BLOCK.sub(lambda m: f"<!-- figures:{m.group(1)} -->\n{render_block(m.group(1), values)}"
                               f"<!-- /figures:{m.group(1)} -->", text)


def stale_pages() -> list[Path]:
    values = data()
    return [page for page in pages() if render_page(page.read_text(encoding="utf-8"), values)
            != page.read_text(encoding="utf-8")]


def main(argv: list[str]) -> int:
    try:
        if "--check" in argv:
            stale = stale_pages()
            for page in stale:
                print(f"{page.relative_to(REPO)}: figures differ from docs/figures/*.json "
                      f"(run python docs/figures/render.py)", file=sys.stderr)
            return 1 if stale else 0
        values = data()
        for page in pages():
            text = page.read_text(encoding="utf-8")
            rendered = render_page(text, values)
            if rendered != text:
                page.write_text(rendered, encoding="utf-8")
                print(f"{page.relative_to(REPO)}: figures written")
    except FigureError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
