"""Which tests share a pytest-xdist worker. The suite runs on two (pyproject: `-n 2 --dist loadscope`) and a
scope's tests run on one worker, one after another: each module is a scope, so its fixtures (a studio, a trained
model) are made once, and the modules in RAY are one scope together."""

from __future__ import annotations

from pathlib import Path

from xdist.scheduler import LoadScopeScheduling

# The modules that start a local Ray: their tests find Ray's workers by process title to kill one, the studio with
# workers is one for all of them, and each Ray instance takes most of the machine, so no two run at once.
RAY = ("test_app_workers.py", "test_finetune.py", "test_infinity_front_doors.py", "test_ray.py",
       "test_workers_cleanup.py")  # fmt: skip


def scope(nodeid: str) -> str:
    """The scope of the test `nodeid` (tests/test_x.py::test_y[...]): "ray" for the modules in RAY, else its module."""
    module = nodeid.split("::", 1)[0]
    return "ray" if Path(module).name in RAY else module


class ModuleScheduling(LoadScopeScheduling):
    """xdist's scheduling by module (--dist loadscope), with the Ray modules as one scope."""

    def _split_scope(self, nodeid: str) -> str:  # xdist's private hook, named in test_groups.py
        return scope(nodeid)
