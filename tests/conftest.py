"""Fixtures shared by the test modules: the tiny published-format files and a stand-in hub serving them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hub_standin import StandInHub, published_files


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
