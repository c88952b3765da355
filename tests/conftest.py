"""Fixtures shared by the test modules: the tiny published-format files and a stand-in hub serving
them; the studio as `python app.py` starts it and a headless Chromium, shared by the browser tests
(each test opens its own page, so that it runs alone and in any order)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS, studio_page
from hub_standin import StandInHub, published_files
from PIL import Image
from studio_server import Studio, WorkersStudio, running

if TYPE_CHECKING:  # Playwright is imported by the browser fixture only: other tests collect without it
    from playwright.sync_api import Browser, Page


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """Under `--dist loadscope`, a module's tests on one pytest-xdist worker and the Ray modules on one (groups.py)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from groups import ModuleScheduling

    return ModuleScheduling(config, log)


@pytest.fixture(scope="module")
def published() -> dict[str, bytes]:
    """The tiny reference pair as plain .pth state dicts under the published d16 names."""
    return published_files()


@pytest.fixture
def hub(published: dict[str, bytes]) -> Iterator[StandInHub]:
    """A stand-in hub on 127.0.0.1 serving `published`; stopped after the test."""
    server = StandInHub(published)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    """`python app.py` (plus $VAR_APP_ARGS) as a subprocess, for every test that only needs a studio
    (no test changes what the studio serves to another page)."""
    log = tmp_path_factory.mktemp("app-log") / "app.log"
    with running(shlex.split(os.environ.get("VAR_APP_ARGS", "")), log) as started:
        yield started


@pytest.fixture(scope="session")
def workers_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkersStudio]:
    """`app.py --workers 2`, started on first use and shared by the tests that need one running."""
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install .[ray]")
    started = WorkersStudio(tmp_path_factory.mktemp("workers-log"))
    yield started
    started.close()


@pytest.fixture(scope="session")
def app_url(studio: Studio) -> str:
    return studio.url


@pytest.fixture(scope="session")
def app_log(studio: Studio) -> Path:
    """The studio's console output."""
    return studio.log_path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium (no downloads, no GPU)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def sized(browser: Browser, app_url: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page on the shared studio at the viewport size `request.param` (width, height): parametrize
    it with `indirect=True`."""
    width, height = request.param
    with studio_page(browser, app_url, width=width, height=height) as pg:
        yield pg


@pytest.fixture(autouse=True)
def _torch_threads() -> Iterator[None]:
    """Each test starts with the process's own thread count: an in-process training run sets its own."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def photo_and_mask(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 96x80 noise picture and a mask over a box in it (white = regenerate)."""
    d = tmp_path_factory.mktemp("photo-and-mask")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((80, 96, 3)) * 255).astype(np.uint8)).save(d / "photo.png")
    mask = np.zeros((80, 96), np.uint8)
    mask[20:50, 30:70] = 255
    Image.fromarray(mask).save(d / "mask.png")
    return {"image": d / "photo.png", "mask": d / "mask.png"}
