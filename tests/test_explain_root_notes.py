"""lo.explain prints remarks and kernels recorded outside any rule as plain lines (issue 11, H6)."""

from __future__ import annotations

import numpy as np

import linops as lo
from linops.explain import Plan
from linops.plan import heavy, record


def test_root_note_prints_its_text():
    text = str(lo.explain(lo.solve, lo.Diagonal(np.arange(1.0, 4.0)), np.ones(3), alg=lo.CG()))
    assert "note: CG was not needed: the structure rules answered lo.solve in closed form" in text
    assert "note()" not in text and not text.rstrip().endswith(":")


def test_root_kernel_prints_one_run_line():
    plan = Plan("call")
    with record(plan):
        assert heavy("LU of 3×3", 18.0, lambda: 1, lambda: 0) == 0
    assert str(plan).splitlines()[1:] == ["run LU of 3×3  (~18 flops)"]
    assert plan.algorithms == ["LU of 3×3"] and plan.flops == 18.0
