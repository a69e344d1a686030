"""Trace and diagonal estimators: Hutch, HutchPP (Hutch++ / Diag++), XTrace (XTrace / XDiag), XNysTrace.

Against exact traces and diagonals on every backend, the reported error bars over fixed seeds, the
variance reduction at an equal matvec budget, exactness on low-rank matrices, refusals, float32,
complex, ``jax.jit``/``jax.vmap`` and no host synchronisation under torch.
"""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
from linops.algorithms.xtrace import XNysTrace
from tests.helpers import BACKENDS, device_for, jarr, tdev, to_backend, to_numpy

ESTIMATORS = [lo.Hutch, lo.HutchPP, lo.XTrace, XNysTrace]
DEFLATING = [lo.HutchPP, lo.XTrace, XNysTrace]


def _decaying_psd(n=100, power=2.0, seed=0):
    """A PSD matrix with eigenvalues j^-power (polynomial decay)."""
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return (Q * np.arange(1.0, n + 1) ** -power) @ Q.T


def _decaying_general(n=80, seed=1, complex_=False):
    """A non-symmetric (optionally complex) matrix whose singular values decay."""
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n, n)) + (1j * rng.standard_normal((n, n)) if complex_ else 0)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.arange(1.0, n + 1) ** -2.0) @ G @ Q.T / np.sqrt(n)


def _trace(M, alg, backend="numpy", psd=True, dtype=None):
    A = lo.Dense(to_backend(M, backend, dtype))
    est, info = lo.trace(lo.PSD(A) if psd else A, alg=alg, info=True)
    return complex(to_numpy(est)), info


# --- against the exact trace and diagonal -----------------------------------------------------------

@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_trace_against_exact(cls, backend):
    M = _decaying_psd()
    est, info = _trace(M, cls(num_probes=40, key=3), backend)
    exact = np.trace(M)
    assert info.algorithm == cls.__name__ and info.iterations == 40
    assert float(info.error) > 0
    assert abs(est - exact) <= 4 * float(info.error) + 1e-12
    assert abs(est - exact) / exact < (0.6 if cls is lo.Hutch else 0.02)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_diag_against_exact(cls, backend):
    M = _decaying_psd()
    A = lo.PSD(lo.Dense(to_backend(M, backend))).without_structure()  # a Dense would read its diagonal
    est = to_numpy(lo.diag(A, alg=cls(num_probes=40, key=1)))
    (_, stats) = cls(num_probes=40, key=1).diag(A, 0)
    err = np.abs(est - np.diag(M))
    assert est.shape == (100,) and stats.iterations == 40
    assert err.max() <= 5 * float(stats.error)
    assert np.sqrt(np.mean(err**2)) < (0.03 if cls is lo.Hutch else 5e-3)


@pytest.mark.parametrize("cls", [lo.Hutch, lo.HutchPP, lo.XTrace], ids=lambda c: c.__name__)
def test_non_symmetric_and_complex(cls):
    for complex_ in (False, True):
        M = _decaying_general(complex_=complex_)
        est, info = _trace(M, cls(num_probes=60, key=2), psd=False)
        assert abs(est - np.trace(M)) <= 4 * float(info.error)
        assert cls is lo.Hutch or abs(est - np.trace(M)) < 0.01 * np.abs(M).sum() / 80
        d, stats = cls(num_probes=60, key=2).diag(lo.Dense(M), 0)
        assert np.abs(d - np.diag(M)).max() <= 5 * float(stats.error)


def test_complex_hermitian_xnystrace():
    rng = np.random.default_rng(4)
    G = rng.standard_normal((60, 60)) + 1j * rng.standard_normal((60, 60))
    Q, _ = np.linalg.qr(G)
    M = (Q * 0.7 ** np.arange(60)) @ Q.conj().T
    est, info = _trace(M, XNysTrace(num_probes=30, key=0))
    assert abs(est - np.trace(M).real) < 1e-3 and abs(est - np.trace(M).real) <= 4 * float(info.error)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("cls", DEFLATING, ids=lambda c: c.__name__)
def test_exact_on_low_rank(cls, backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(5)
    L = rng.standard_normal((90, 5))
    M = L @ L.T
    alg = cls(num_probes=30, key=0)  # rank 5 < 30 // 3
    est, info = _trace(M, alg, backend)
    assert abs(est - np.trace(M)) < 1e-9 * np.trace(M) and float(info.error) < 1e-9 * np.trace(M)
    A = lo.PSD(lo.Dense(to_backend(M, backend))).without_structure()
    np.testing.assert_allclose(to_numpy(lo.diag(A, alg=alg)), np.diag(M), atol=1e-9 * np.abs(M).max())


# --- statistics over fixed seeds (deterministic, so they cannot flake) -----------------------------

def _errors(cls, M, num_probes, seeds=50):
    exact = np.trace(M)
    runs = [_trace(M, cls(num_probes=num_probes, key=seed)) for seed in range(seeds)]
    return np.array([est.real - exact for est, _ in runs]), np.array([float(info.error) for _, info in runs])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_error_bars_cover_the_trace(cls):
    errors, reported = _errors(cls, _decaying_psd(), 30)
    assert np.mean(np.abs(errors) <= 3 * reported) >= 0.9
    assert abs(errors.mean()) < 3 * errors.std() / np.sqrt(len(errors))  # unbiased
    assert 0.3 < np.sqrt(np.mean(reported**2)) / np.sqrt(np.mean(errors**2)) < 3  # the error bar is honest


def test_deflation_beats_hutchinson_at_equal_matvecs():
    M = _decaying_psd()
    mse = {cls.__name__: np.mean(_errors(cls, M, 30)[0] ** 2) for cls in ESTIMATORS}
    assert mse["Hutch"] >= 3 * mse["HutchPP"]
    assert mse["HutchPP"] > mse["XTrace"]
    assert mse["HutchPP"] > mse["XNysTrace"]


def test_more_probes_less_error():
    M = _decaying_psd()
    for cls in DEFLATING:
        assert np.mean(_errors(cls, M, 60, 20)[0] ** 2) < np.mean(_errors(cls, M, 15, 20)[0] ** 2) / 4


# --- settings, refusals, dtypes ------------------------------------------------------------------------

@pytest.mark.parametrize(("cls", "bad"), [(lo.Hutch, 0), (lo.HutchPP, 2), (lo.XTrace, 3), (XNysTrace, 1),
                                          (lo.HutchPP, 10.0)])
def test_bad_num_probes_refused(cls, bad):
    with pytest.raises(ValueError, match=f"{cls.__name__}: num_probes"):
        cls(num_probes=bad)


def test_xnystrace_needs_psd():
    M = _decaying_general()
    with pytest.raises(ValueError, match=r"XNysTrace .* not annotated lo.PSD"):
        lo.trace(lo.Dense(M), alg=XNysTrace(num_probes=10, key=0))
    with pytest.raises(lo.NotPSDError, match="XNysTrace"):
        lo.trace(lo.PSD(lo.Dense(-np.eye(20))), alg=XNysTrace(num_probes=10, key=0))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_off_diagonal_refused(cls):
    A = lo.PSD(lo.Dense(_decaying_psd(20))).without_structure()
    with pytest.raises(ValueError, match="main diagonal only"):
        lo.diag(A, k=1, alg=cls(num_probes=8, key=0))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_float32(cls, backend):
    if backend == "jax" and cls is not lo.HutchPP:
        pytest.skip("one float32 case under JAX: eager JAX compiles every new shape and dtype")
    M = _decaying_psd()
    est, info = _trace(M, cls(num_probes=40, key=3), backend, dtype="float32")
    assert "float32" in str(lo.trace(lo.PSD(lo.Dense(to_backend(M, backend, "float32"))),
                                     alg=cls(num_probes=40, key=3)).dtype)
    assert abs(est - np.trace(M)) <= 4 * float(info.error) + 1e-4 * np.trace(M)


def test_key_reproducible_and_matters():
    M = _decaying_psd()
    assert _trace(M, lo.XTrace(num_probes=20, key=7))[0] == _trace(M, lo.XTrace(num_probes=20, key=7))[0]
    assert _trace(M, lo.XTrace(num_probes=20, key=7))[0] != _trace(M, lo.XTrace(num_probes=20, key=8))[0]


# --- jax.jit, jax.vmap, torch without host synchronisation ---------------------------------------------

@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_jax_jit(cls):
    jax = pytest.importorskip("jax")
    M = jarr(_decaying_psd())
    key = jax.random.PRNGKey(0)

    @jax.jit
    def estimate(M, key):
        return lo.trace(lo.PSD(lo.Dense(M)), alg=cls(num_probes=40, key=key))

    eager = lo.trace(lo.PSD(lo.Dense(M)), alg=cls(num_probes=40, key=key))
    np.testing.assert_allclose(float(estimate(M, key)), float(eager), rtol=1e-10)
    exact = np.trace(_decaying_psd())
    assert abs(float(eager) - exact) < (0.5 if cls is lo.Hutch else 0.05) * exact


def test_jax_vmap_over_keys():
    jax = pytest.importorskip("jax")
    A = lo.PSD(lo.Dense(jarr(_decaying_psd())))
    keys = jax.random.split(jax.random.PRNGKey(1), 4)
    batched = jax.vmap(lambda key: lo.trace(A, alg=lo.HutchPP(num_probes=40, key=key)))(keys)
    one_by_one = [float(lo.trace(A, alg=lo.HutchPP(num_probes=40, key=key))) for key in keys]
    np.testing.assert_allclose(np.asarray(batched), one_by_one, rtol=1e-10)
    assert len(set(one_by_one)) == 4


@pytest.mark.parametrize("cls", [lo.Hutch, lo.HutchPP, lo.XTrace], ids=lambda c: c.__name__)
def test_torch_no_host_sync(cls, monkeypatch):
    torch = pytest.importorskip("torch")
    A = lo.PSD(lo.Dense(torch.as_tensor(_decaying_psd(), device=tdev())))
    syncs = []

    def forbid(name):
        original = getattr(torch.Tensor, name)

        def counted(self, *args):
            syncs.append(name)
            return original(self, *args)
        monkeypatch.setattr(torch.Tensor, name, counted)

    for name in ("item", "__bool__", "__float__"):
        forbid(name)
    est = lo.trace(A, alg=cls(num_probes=30, key=0))
    d = lo.diag(A.without_structure(), alg=cls(num_probes=30, key=0))
    monkeypatch.undo()
    assert syncs == []
    assert abs(float(est) - np.trace(_decaying_psd())) < 0.5 * np.trace(_decaying_psd()) and d.shape == (100,)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_matrix_free_operator(backend_name):
    pytest.importorskip(backend_name)
    M = to_backend(_decaying_psd(), backend_name)
    A = lo.PSD(lo.LinearOperator(M.dtype, M.shape, matmat=lambda X: M @ X, device=device_for(backend_name)))
    est, info = lo.trace(A, alg=lo.XTrace(num_probes=40, key=0), info=True)
    assert abs(float(est) - np.trace(_decaying_psd())) <= 4 * float(info.error)


def test_jax_jit_diag_and_not_psd_is_nan():
    jax = pytest.importorskip("jax")
    M = jarr(_decaying_psd())
    diag = jax.jit(lambda M, key: lo.diag(lo.PSD(lo.Dense(M)).without_structure(),
                                          alg=lo.XTrace(num_probes=40, key=key)))
    assert np.abs(np.asarray(diag(M, jax.random.PRNGKey(0))) - np.diag(_decaying_psd())).max() < 0.02
    trace = jax.jit(lambda M: lo.trace(lo.PSD(lo.Dense(M)), alg=XNysTrace(num_probes=10, key=0)))
    assert np.isnan(float(trace(-jarr(np.eye(20)))))  # under jit nothing can raise: NaN, as documented
