"""Randomized low rank: RandomizedSVD (svd, and eigh of self-adjoint operators) and Nyström (PSD).

Against numpy.linalg.svd / eigh on matrices with decaying spectra, on every backend, matrix-free,
rectangular, complex and float32; the a-posteriori error estimate; refusals of bad settings and of
``which`` values a sketch cannot compute; ``jax.jit``/``jax.vmap``; no host synchronisation (torch).
"""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
from linops.algorithms.randomized import Nystrom, RandomizedSVD
from tests.helpers import BACKENDS, jarr, tdev, to_backend, to_numpy


def _decaying(m=120, n=80, rate=0.7, seed=0, complex_=False):
    """An (m, n) matrix with singular values rate**j, and its SVD."""
    rng = np.random.default_rng(seed)

    def orthonormal(rows, cols):
        G = rng.standard_normal((rows, cols)) + (1j * rng.standard_normal((rows, cols)) if complex_ else 0)
        return np.linalg.qr(G)[0]

    r = min(m, n)
    U, V = orthonormal(m, r), orthonormal(n, r)
    S = rate ** np.arange(r)
    return (U * S) @ V.conj().T, S


def _check_triplets(U, S, Vh, M, k, rtol):
    U, S, Vh = to_numpy(U), to_numpy(S), to_numpy(Vh)
    ref = np.linalg.svd(M, compute_uv=False)[:k]
    assert U.shape == (M.shape[0], k) and S.shape == (k,) and Vh.shape == (k, M.shape[1])
    np.testing.assert_allclose(S, ref, rtol=rtol)
    np.testing.assert_allclose(U.conj().T @ U, np.eye(k), atol=10 * rtol)
    np.testing.assert_allclose(M @ Vh.conj().T, U * S, atol=rtol * ref[0] * 10)  # A v = σ u


@pytest.mark.parametrize("shape", [(120, 80), (80, 120)], ids=["tall", "wide"])
def test_svd_against_numpy(backend, shape):
    M, _ = _decaying(*shape)
    U, S, Vh = lo.svd(lo.Dense(to_backend(M, backend)), k=6, alg=RandomizedSVD(key=0))
    _check_triplets(U, S, Vh, M, 6, 1e-8)


def test_svd_matrix_free_numpy():
    M, _ = _decaying()
    A = lo.LinearOperator(M.dtype, M.shape, matmat=lambda X: M @ X, rmatmat=lambda X: X @ M)
    U, S, Vh = lo.svd(A, k=5, alg=RandomizedSVD(key=1))
    _check_triplets(U, S, Vh, M, 5, 1e-8)


def test_svd_without_structure(backend):
    M, _ = _decaying()
    U, S, Vh = lo.svd(lo.Dense(to_backend(M, backend)).without_structure(), k=5, alg=RandomizedSVD(key=1))
    _check_triplets(U, S, Vh, M, 5, 1e-8)


def test_svd_complex():
    M, _ = _decaying(complex_=True)
    U, S, Vh = lo.svd(lo.Dense(M), k=5, alg=RandomizedSVD(key=2))
    _check_triplets(U, S, Vh, M, 5, 1e-8)


def test_svd_float32(backend):
    M, _ = _decaying()
    U, S, Vh = lo.svd(lo.Dense(to_backend(M, backend, "float32")), k=5, alg=RandomizedSVD(key=0))
    assert "float32" in str(S.dtype) and "float32" in str(U.dtype)
    _check_triplets(U, S, Vh, M, 5, 2e-4)


def test_power_iterations_help_on_a_slow_decay():
    M, S_true = _decaying(200, 150, rate=0.97)
    errors = []
    for power_iters in (0, 3):
        (_, S, _), stats = RandomizedSVD(k=10, oversample=5, power_iters=power_iters, key=0).svd(lo.Dense(M))
        errors.append(np.abs(S - S_true[:10]).max())
        assert stats.iterations == (2 * power_iters + 2) * 15 + 4
    assert errors[1] < errors[0] / 10


def test_error_estimate_tracks_the_true_error():
    M, S_true = _decaying(150, 100, rate=0.9)
    for k in (5, 20):
        (U, S, Vh), stats = RandomizedSVD(k=k, power_iters=1, key=0, error_probes=8).svd(lo.Dense(M))
        true = np.linalg.norm(M - (U * S) @ Vh) / S_true[0]
        assert np.linalg.norm(S_true[k:]) / S_true[0] <= true * (1 + 1e-6)  # no rank-k approximation beats it
        assert 0.4 < float(stats.error) / true < 2.5
    (_, _, _), stats = RandomizedSVD(k=5, error_probes=0).svd(lo.Dense(M))
    assert stats.error is None


def test_randomized_eigh_indefinite(backend):
    rng = np.random.default_rng(3)
    Q, _ = np.linalg.qr(rng.standard_normal((100, 100)))
    lam = 0.8 ** np.arange(100) * np.where(np.arange(100) % 3 == 1, -1.0, 1.0)
    M = (Q * lam) @ Q.T
    vals, vecs = lo.eigh(lo.Dense(to_backend(M, backend)), k=5, which="LM", alg=RandomizedSVD(key=0))
    vals, vecs = to_numpy(vals), to_numpy(vecs)
    ref = np.sort(lam[np.argsort(-np.abs(lam))[:5]])
    np.testing.assert_allclose(vals, ref, rtol=1e-8)
    np.testing.assert_allclose(M @ vecs, vecs * vals, atol=1e-5)  # vectors converge as the root of values


def test_randomized_eigh_psd_which_la():
    M, _ = _decaying(100, 100)
    P = M @ M.T
    vals, _ = lo.eigh(lo.PSD(lo.Dense(P)), k=4, alg=RandomizedSVD(key=0))  # eigh's default which="LA"
    np.testing.assert_allclose(vals, np.linalg.eigvalsh(P)[-4:], rtol=1e-8)


def test_nystrom_against_eigh(backend):
    M, _ = _decaying(100, 100, rate=0.6)
    P = M @ M.T
    A = lo.PSD(lo.Dense(to_backend(P, backend)))
    vals, vecs = lo.eigh(A, k=4, alg=Nystrom(key=0))
    vals, vecs = to_numpy(vals), to_numpy(vecs)
    np.testing.assert_allclose(vals, np.linalg.eigvalsh(P)[-4:], rtol=1e-4)  # no power iterations: λ₁₅/λ₁ ≈ 6e-7
    np.testing.assert_allclose(P @ vecs, vecs * vals, atol=1e-4)
    (_, _), stats = Nystrom(k=4, key=0).eig(lo.PSD(lo.Dense(P)))
    optimal = np.linalg.norm(np.linalg.eigvalsh(P)[:-4]) / np.linalg.eigvalsh(P)[-1]  # the best rank-4 error
    assert stats.iterations == 14 + 4 and 0.5 < float(stats.error) / optimal < 2


def test_nystrom_float32_and_complex():
    M, _ = _decaying(80, 80, rate=0.6, complex_=True)
    P = M @ M.conj().T
    vals, _ = lo.eigh(lo.PSD(lo.Dense(P)), k=3, alg=Nystrom(key=0))
    np.testing.assert_allclose(vals, np.linalg.eigvalsh(P)[-3:], rtol=1e-4)
    M, _ = _decaying(80, 80, rate=0.6)
    P = M @ M.T
    vals32, _ = lo.eigh(lo.PSD(lo.Dense(P.astype(np.float32))), k=3, alg=Nystrom(key=0))
    assert vals32.dtype == np.float32
    np.testing.assert_allclose(vals32, np.linalg.eigvalsh(P)[-3:], rtol=1e-3)


# --- refusals ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("cls", "setting"), [(RandomizedSVD, {"k": 0}), (RandomizedSVD, {"oversample": -1}),
                                              (RandomizedSVD, {"power_iters": -1}), (RandomizedSVD, {"k": 2.5}),
                                              (Nystrom, {"oversample": 1.5}), (Nystrom, {"error_probes": -1}),
                                              (RandomizedSVD, {"which": "SA"})])
def test_bad_settings_refused(cls, setting):
    name = next(iter(setting))
    with pytest.raises(ValueError, match=f"{cls.__name__}: {name}"):
        cls(**setting)


def test_wrong_which_refused():
    M, _ = _decaying(60, 40)
    with pytest.raises(ValueError, match="RandomizedSVD: which='SM'"):
        lo.svd(lo.Dense(M), k=3, which="SM", alg=RandomizedSVD())
    S = M[:40] + M[:40].T
    with pytest.raises(ValueError, match="which='LA' is the same only for a PSD"):
        lo.eigh(lo.Dense(S), k=3, alg=RandomizedSVD())
    with pytest.raises(ValueError, match="Nystrom: which='SA'"):
        lo.eigh(lo.PSD(lo.Dense(S @ S)), k=3, which="SA", alg=Nystrom())


def test_non_self_adjoint_and_non_psd_refused():
    M, _ = _decaying(40, 40)
    with pytest.raises(ValueError, match="self-adjoint operator only"):
        lo.eig(lo.Dense(M), k=3, alg=RandomizedSVD())
    with pytest.raises(ValueError, match="Nystrom approximates a positive-semidefinite"):
        lo.eigh(lo.Dense(M + M.T), k=3, alg=Nystrom())
    with pytest.raises(lo.NotPSDError, match="Nystrom"):
        lo.eigh(lo.PSD(lo.Dense(-np.eye(40))), k=3, alg=Nystrom())


# --- jax.jit, jax.vmap, torch ----------------------------------------------------------------------------

def test_jax_jit_svd_and_nystrom():
    jax = pytest.importorskip("jax")
    M, S_true = _decaying()
    P = M @ M.T

    @jax.jit
    def top(M, P, key):
        S = lo.svd(lo.Dense(M), k=5, alg=RandomizedSVD(key=key))[1]
        vals = lo.eigh(lo.PSD(lo.Dense(P)), k=3, alg=Nystrom(key=key))[0]
        return S, vals

    S, vals = top(jarr(M), jarr(P), jax.random.PRNGKey(0))
    np.testing.assert_allclose(np.asarray(S), S_true[:5], rtol=1e-8)
    np.testing.assert_allclose(np.asarray(vals), np.linalg.eigvalsh(P)[-3:], rtol=1e-3)


def test_jax_vmap_over_keys():
    jax = pytest.importorskip("jax")
    M, S_true = _decaying(rate=0.95)
    A = lo.Dense(jarr(M))
    keys = jax.random.split(jax.random.PRNGKey(0), 4)

    def top(key):
        (_, S, _), stats = RandomizedSVD(k=3, oversample=2, power_iters=0, key=key).svd(A)
        return S, stats.error

    S, errors = jax.vmap(top)(keys)
    assert S.shape == (4, 3) and errors.shape == (4,)
    for i, key in enumerate(keys):
        np.testing.assert_allclose(np.asarray(S[i]), np.asarray(top(key)[0]), rtol=1e-10)
    assert len({float(s) for s in S[:, 2]}) == 4  # the keys differ, and so do the sketches
    assert np.all(np.asarray(S) <= S_true[:3] * (1 + 1e-10))  # a sketch's singular values interlace the true ones
    assert np.all(np.asarray(errors) > 0.1)  # a crude sketch (oversample 2, no power iteration) says it is crude


def test_torch_no_host_sync(monkeypatch):
    torch = pytest.importorskip("torch")
    M, S_true = _decaying()
    A = lo.Dense(torch.as_tensor(M, device=tdev()))
    syncs = []
    for name in ("item", "__bool__", "__float__"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _n=name, _o=original: syncs.append(_n) or _o(self, *a))
    (_, S, _), _ = RandomizedSVD(k=5, key=0).svd(A)
    monkeypatch.undo()
    assert syncs == []
    np.testing.assert_allclose(to_numpy(S), S_true[:5], rtol=1e-8)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_svd_of_a_matrix_free_operator_by_autodiff_adjoint(backend_name):
    if backend_name == "numpy":
        pytest.skip("NumPy has no autodiff: a matrix-free NumPy operator needs rmatmat (tested above)")
    pytest.importorskip(backend_name)
    M, _ = _decaying()
    Mb = to_backend(M, backend_name)
    A = lo.LinearOperator(Mb.dtype, Mb.shape, matmat=lambda X: Mb @ X)
    U, S, Vh = lo.svd(A, k=4, alg=RandomizedSVD(key=0))
    _check_triplets(U, S, Vh, M, 4, 1e-8)
