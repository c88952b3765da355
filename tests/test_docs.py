"""The README and the pages under docs/ say what works: every ```python block runs (on the demo model,
offline, on the CPU) and every relative link (file and #anchor) resolves.

How blocks run: the blocks of one page run in order in one namespace (a later block may use what an
earlier one made), each page in a fresh one, with a temporary folder as the working folder that holds
`photo.png` and `photo.jpg` (a 256x256 picture) and `mask.png` (its mask, white = redraw). A block that cannot run
here (a GPU, published weights, a running server) says why in an HTML comment on the line before it:
`<!-- no-run: needs a running studio -->`.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```", re.S | re.M)
NO_RUN = re.compile(r"<!--\s*no-run:\s*(.+?)\s*-->\s*$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """(line, code, why not run) of every ```python block of `page`."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        if m.group(1) != "python":
            continue
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = NO_RUN.search(before)
        out.append((text[: m.start()].count("\n") + 1, m.group(2), skip.group(1) if skip else None))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.+?)\s*#*$", text, re.M)}


def without_code(text: str) -> str:
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    picture = Image.new("RGB", (256, 256), (60, 120, 200))
    ImageDraw.Draw(picture).ellipse((64, 64, 192, 192), fill=(250, 200, 40))
    picture.save(tmp_path / "photo.png")
    picture.save(tmp_path / "photo.jpg")
    mask = Image.new("L", (256, 256), 0)
    ImageDraw.Draw(mask).rectangle((96, 96, 160, 160), fill=255)
    mask.save(tmp_path / "mask.png")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_python_blocks_run(page: Path, workdir: Path) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for line, code, why in blocks(page):
        if why is not None:
            continue
        # In a thread of its own, as in a reader's fresh interpreter: a browser test's Playwright leaves an
        # event loop on the main thread, where a snippet's asyncio.run would refuse to start.
        with ThreadPoolExecutor(1) as pool:
            failed = pool.submit(_run_block, code, f"{page.name}:{line}", namespace).result()
        if failed is not None:
            pytest.fail(f"{page.relative_to(ROOT)}, the block at line {line}: {failed}")


def _run_block(code: str, name: str, namespace: dict[str, object]) -> str | None:
    """None when the block runs, else what it raised."""
    try:
        exec(compile(code, name, "exec"), namespace)
    except Exception as e:  # noqa: BLE001 - say which block failed, whatever it raised
        return f"{type(e).__name__}: {e}"
    return None


def test_blocks_are_run_or_say_why_not() -> None:
    """Most blocks run; a skipped one gives a reason of a few words."""
    found = [(p, b) for p in PAGES for b in blocks(p)]
    assert found, "no python blocks found"
    for page, (line, _, why) in found:
        assert why is None or len(why) > 8, f"{page.name}:{line}: say why the block does not run"
    assert sum(why is None for _, (_, _, why) in found) >= 2


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for m in LINK.finditer(without_code(page.read_text(encoding="utf-8"))):
        target = m.group(1) or m.group(2)
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: links that do not resolve: {broken}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in PAGES[1:]:
        assert f"(docs/{page.name}" in readme, f"README.md does not link docs/{page.name}"
    assert len(readme.splitlines()) <= 220, "the README should stay short; put details in docs/"


def test_the_readme_test_command_is_ci_s() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci in (ROOT / "README.md").read_text(encoding="utf-8")
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
