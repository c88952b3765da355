"""The suite runs on two pytest-xdist workers (pyproject: `-n 2 --dist loadgroup`); a group's tests run on one
worker, one after another. conftest.py gives each module a group of its own, so a module's fixtures (a studio,
a trained model) are made once; the tests below share one instead."""

from __future__ import annotations

import pytest

# Tests that start a local Ray: they find Ray's workers by process title to kill one, and each Ray instance takes
# most of the machine, so no two run at once.
RAY = pytest.mark.xdist_group("ray")
