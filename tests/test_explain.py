"""lo.explain: the plan names every rule, marks declined pair rules, and runs no dense kernel."""

from __future__ import annotations

import numpy as np

import linops as lo


def test_declined_pair_rule_is_marked_and_fallback_is_shown():
    A = lo.Dense(np.random.default_rng(0).standard_normal((4, 4)))  # not self-adjoint: no eig shortcut
    plan = lo.explain(lo.logdet, lo.Kronecker(A, A) + 0.5 * lo.Identity((16, 16), np.float64))
    declined = [node.rule for node in plan.walk() if node.declined]
    assert declined and set(declined) == {"slogdet_kronecker_plus_scalar"}
    assert "declined (preconditions not met)" in str(plan)
    assert any(s.startswith("LU slogdet") for s in plan.algorithms)


def test_plan_records_kernels_without_running_them():
    calls = []

    def matmat(X):
        calls.append(X.shape)
        return 2 * X

    A = lo.PSD(lo.LinearOperator(np.float64, (300, 300), matmat=matmat))
    plan = lo.explain(lo.logdet, A)
    assert len(plan.algorithms) == 1 and plan.algorithms[0].startswith("Cholesky slogdet on LinearOperator(300×300")
    assert calls == []  # densifying was recorded, not run
    assert plan.flops > 0
