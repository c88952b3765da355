"""Shared pytest setup."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers used to select test groups."""
    config.addinivalue_line("markers", "browser: drives app.py in a real Chromium (slow; run with -m browser)")
