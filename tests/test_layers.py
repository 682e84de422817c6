"""Packaging and layering: one import name, and the math layer stays free of RL stacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "gymnasium", "stable_baselines3", "pettingzoo", "supersuit")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_mechanism_layer_imports_no_rl_stack():
    loaded = _modules_after("import crowdauction.mechanisms")
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_the_top_level_package_is_cheap():
    loaded = _modules_after("import crowdauction")
    assert not [m for m in loaded if m.split(".")[0] in HEAVY + ("scipy",)]


@pytest.mark.parametrize("generic", ["envs", "agents", "training", "evaluation", "mechanisms"])
def test_no_generic_top_level_module_is_installed(generic, tmp_path):
    # Run from an empty folder so the checkout itself is not on the path.
    code = (
        f"import importlib.util, sys; sys.exit(importlib.util.find_spec({generic!r}) is not None)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=tmp_path).returncode == 0
