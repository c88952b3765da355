"""Screenshots for the studio's guide (docs/studio.md): every browser test that shows a step of the page takes
its picture through `guide_shot`. They go to test-artifacts/guide/; with VAR_EDIT_GUIDE=1 in the environment
also to docs/guide/, which the guide shows (so that CI never rewrites the docs)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "guide"
DOCS = ROOT / "docs" / "guide"


def guide_shot(pg: Page, name: str, selector: str | None = None, full_page: bool = False) -> Path:
    """Screenshot of the page (or of the element `selector`) as `name`.png for the guide."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if selector is not None:
        pg.locator(selector).first.screenshot(path=str(path))
    else:
        pg.screenshot(path=str(path), full_page=full_page)
    if os.environ.get("VAR_EDIT_GUIDE") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS / path.name)
    return path
