"""How the suite shares out its tests between pytest-xdist workers (tests/groups.py): by module, the Ray modules
together, through xdist's private `LoadScopeScheduling._split_scope`, named here."""

from __future__ import annotations

import inspect
from pathlib import Path

from groups import RAY, ModuleScheduling, scope
from xdist.scheduler import LoadScopeScheduling

HERE = Path(__file__).resolve().parent


def test_a_module_is_a_scope_and_the_ray_modules_are_one():
    assert scope("tests/test_app.py::test_x[1280x720]") == scope("tests/test_app.py::test_y") == "tests/test_app.py"
    assert {scope(f"tests/{name}::test_x") for name in RAY} == {"ray"}
    assert all((HERE / name).is_file() for name in RAY), "a module in groups.RAY was renamed"


def test_xdist_still_asks_the_scheduler_for_a_nodes_scope():
    assert list(inspect.signature(LoadScopeScheduling._split_scope).parameters) == ["self", "nodeid"]
    assert ModuleScheduling._split_scope is not LoadScopeScheduling._split_scope
