"""The figures the docs quote come from data files, not from prose: each marked block of README.md and docs/*.md
(`<!-- figures:NAME -->` … `<!-- /figures:NAME -->`) says exactly what `docs/figures/templates/NAME.md` renders to
with the data files `docs/figures/*.json` (`python docs/figures/render.py` writes them). The tests that compute a
figure check the data file: tests/engine/test_stochastic.py (stochastic.json), tests/docs/test_study_figures.py
(hosting_capacity.json, inverters.json); bench.json is the bench's (its "about" says how it is written).
Also here: every relative link of the pages leads to a file, and to a heading there when it names one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.docs import DOCS, figures_renderer, pages
from support.paths import REPO

render = figures_renderer()


def marked_blocks() -> list[tuple[str, str, str]]:
    return [(page.relative_to(REPO).as_posix(), name, said) for page in pages()
            for name, said in render.blocks(page.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("page,name,said", marked_blocks(), ids=[f"{page}:{name}" for page, name, _ in marked_blocks()])
def test_each_marked_block_says_what_its_data_renders(page, name, said):
    assert said == render.render_block(name), f"{page}: figures:{name} differs (run python docs/figures/render.py)"


def test_every_template_is_used_once_and_every_data_file_says_how_it_is_written():
    used = [name for _, name, _ in marked_blocks()]
    templates = sorted(path.stem for path in (DOCS / "figures" / "templates").glob("*.md"))
    assert sorted(used) == templates, "each template is one marked block of one page"
    for topic, values in render.data().items():
        assert {"what", "how to regenerate"} <= set(values["about"]), topic


def test_the_render_command_checks_the_pages():
    run = subprocess.run([sys.executable, "docs/figures/render.py", "--check"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_figures_render_as_the_pages_write_them():
    values = {"t": {"n": 1340.0, "neg": -630, "range": [0.81, 0.86], "same": [2, 2], "words": ["83", "85", "92"],
                    "one": ["Line.l115"], "rows": [{"bus": "85"}], "pu": 1.05037, "flag": True}}
    text = ("{t.n:,.0f} {t.neg:,} {t.range:.2f} {t.same} {t.words} {t.one} {t.rows.0.bus} {t.pu:.4f} {t.flag} "
            "{x.y} {not a figure}")
    assert render.render_text(text, values) == "1,340 −630 0.81–0.86 2 83, 85 and 92 Line.l115 85 1.0504 yes {x.y} " \
                                               "{not a figure}"
    with pytest.raises(render.FigureError, match=r"\{t\.missing\}"):
        render.render_text("{t.missing}", values)


def test_a_stale_block_is_found_and_written_afresh():
    page = "a\n<!-- figures:stochastic -->\nold words\n<!-- /figures:stochastic -->\nb\n"
    fresh = render.render_page(page)
    assert fresh != page and render.blocks(fresh) == [("stochastic", render.render_block("stochastic"))]
    assert render.render_page(fresh) == fresh


LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but hyphens dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```$", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, flags=re.M)}


def test_every_relative_link_leads_somewhere():
    for page in pages():
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            assert path.exists(), f"{page.relative_to(REPO)}: {target} leads nowhere"
            if anchor:
                assert anchor in anchors(path), f"{page.relative_to(REPO)}: {target}: no such heading"
