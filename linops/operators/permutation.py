"""``Permutation``: (P x)[i] = x[perm[i]], with its exact sign (parity) and simplifications."""

from __future__ import annotations

import collections
import math

from linops.algorithms import Algorithm
from linops.annotations import Unitary
from linops.backends import backend_named, backend_of_dtype_or_device, backend_of_type
from linops.dispatch import dispatch
from linops.operator import LinearOperator


class Permutation(LinearOperator):
    """The permutation matrix P with ``(P @ x)[i] = x[perm[i]]``.

    ``perm`` must hold every index 0, …, n − 1 exactly once: a concrete ``perm`` is checked at
    construction (one sort, O(n log n), and one host read), and a duplicated, missing or
    out-of-range index is a ValueError. A traced ``perm`` (under ``jax.jit``) cannot be read: the
    same sort runs on the device (no host read) and, where it fails, every result is NaN (products,
    ``to_dense``, ``solve``, ``slogdet``, ``trace``, the singular values; a float result even for an
    integer ``dtype``), never the framework's clamped out-of-range indexing.

    Example:
        >>> import numpy as np, linops as lo
        >>> P = lo.Permutation(np.array([1, 0, 2]), np.float64)
        >>> (P @ np.array([10.0, 20.0, 30.0])).tolist(), float(lo.slogdet(P)[0])
        ([20.0, 10.0, 30.0], -1.0)
    """

    _index_attributes = ("perm",)  # a NumPy perm is host data: the operator adopts partners' backend

    def __init__(self, perm, dtype=None, device=None, *, _valid=False):
        """``_valid`` (private): True where ``perm`` is known to be a permutation (built by a rule or a
        factorization: no check), or a traced 0-d boolean, whether the permutation it was derived
        from is valid (carried through the rules, so that Pᵀ of an invalid traced P is NaN too)."""
        bk = backend_of_type(type(perm))
        if bk is None or getattr(perm, "ndim", None) != 1:
            got = getattr(perm, "shape", type(perm).__name__)
            raise TypeError(f"Permutation expects a 1-D integer array, got {got}")
        if bk.is_floating(perm.dtype) or bk.xp.isdtype(perm.dtype, "bool"):
            raise TypeError(f"Permutation expects integer indices, got dtype {perm.dtype}")
        if _valid is False and bk.is_tracer(perm):
            _valid = _is_permutation(bk, perm)
        elif _valid is False:
            check_permutation(bk, perm)
            _valid = True
        backend = bk
        if bk is backend_named("numpy"):  # the dtype or device says which framework, else partners do
            target = backend_of_dtype_or_device(dtype, device)
            backend = None if target is bk else target
            if backend is not None:
                perm = backend.asarray(perm, device=backend.user_device(device) if device is not None else None)
        elif device is not None:
            perm = bk.move(perm, bk.user_device(device))
        self.perm = perm
        self._valid = None if _valid is True else _valid  # None: known valid; else a traced 0-d bool
        n = perm.shape[0]
        super().__init__(dtype if dtype is not None else (backend or bk).xp.float64, (n, n), backend=backend,
                         device=device, annotations=Unitary.closure)

    def _matmat(self, X):
        return self.nan_unless_valid(self.bk.take_rows(X, self.perm))

    def _rmatmat(self, X):
        return self.nan_unless_valid(self.bk.xp.take(X, self.inverse_perm(), axis=1))

    def inverse_perm(self):
        return self.bk.xp.argsort(self.perm)

    def to_dense(self):
        identity = self.bk.eye(self.shape[0], self.dtype, self.device)
        return self.nan_unless_valid(self.bk.take_rows(identity, self.perm))

    def nan_unless_valid(self, Y):
        """``Y``, or all NaN where ``perm`` is traced and is no permutation (the jit rule: a failed
        check gives NaN); O(size of Y), no host read."""
        return Y if self._valid is None else self.bk.xp.where(self._valid, Y, float("nan"))

    def _derived_validity(self, *others: Permutation):
        """The ``_valid`` of a permutation built from this one (and ``others``) by a rule."""
        valid = True
        for P in (self, *others):
            if P._valid is not None:
                valid = P._valid if valid is True else valid & P._valid
        return valid


def _is_permutation(bk, perm):
    """A 0-d boolean array: whether ``perm`` holds each of 0, …, n − 1 once (one sort, on the device)."""
    return bk.xp.all(bk.xp.sort(perm) == bk.arange(perm.shape[0], bk.device(perm)))


def check_permutation(bk, perm) -> None:
    """A ValueError naming n and the duplicated, missing and out-of-range entries unless the concrete
    1-D integer array ``perm`` holds each of 0, …, n − 1 once (one sort on device, one host read;
    the entries are read only to write the message)."""
    n = perm.shape[0]
    if n == 0 or bk.to_host_bool(_is_permutation(bk, perm)):
        return
    values = [int(p) for p in perm.tolist()]
    counts = collections.Counter(values)
    duplicated = sorted(p for p, count in counts.items() if count > 1 and 0 <= p < n)
    missing = [p for p in range(n) if p not in counts]
    outside = sorted(p for p in counts if not 0 <= p < n)
    problems = [f"{what} {_few(entries)}" for what, entries in
                (("duplicated", duplicated), ("missing", missing), ("out of range", outside)) if entries]
    raise ValueError(f"Permutation: perm (n = {n}) must hold each of 0, …, {n - 1} exactly once; "
                     f"{'; '.join(problems)}")


def _few(entries, shown: int = 8) -> str:
    text = ", ".join(str(p) for p in entries[:shown])
    return f"[{text}{', …' if len(entries) > shown else ''}] ({len(entries)} in all)"


def parity(bk, perm):
    """+1 or −1 as a 0-d array: (−1)^(n − number of cycles), found by pointer doubling
    (each index learns the smallest index on its cycle in ⌈log₂ n⌉ vectorised steps)."""
    xp = bk.xp
    n = perm.shape[0]
    label = bk.arange(n, bk.device(perm))
    step = perm
    for _ in range(max(1, math.ceil(math.log2(max(n, 1)))) + 1):
        label = xp.minimum(label, bk.take_rows(label, step))
        step = bk.take_rows(step, step)
    cycles = xp.sum(xp.astype(label == bk.arange(n, bk.device(perm)), xp.int64))
    return 1 - 2 * ((n - cycles) % 2)


@dispatch(name="dot")
def dot_permutations(A: Permutation, B: Permutation):
    """P_a P_b is the permutation b[a]."""
    return Permutation(A.bk.take_rows(B.perm, A.perm), A.dtype, _valid=A._derived_validity(B))


@dispatch(name="transpose")
def transpose_permutation(A: Permutation):
    """Pᵀ = P⁻¹."""
    return Permutation(A.inverse_perm(), A.dtype, _valid=A._derived_validity())


@dispatch(name="inv")
def inv_permutation(A: Permutation, alg: Algorithm):
    """P⁻¹ is the inverse permutation."""
    return Permutation(A.inverse_perm(), A.dtype, _valid=A._derived_validity())


@dispatch(name="pinv")
def pinv_permutation(A: Permutation, alg: Algorithm):
    """P⁺ = P⁻¹."""
    return Permutation(A.inverse_perm(), A.dtype, _valid=A._derived_validity())


@dispatch(name="slogdet")
def slogdet_permutation(A: Permutation, alg: Algorithm):
    """(parity, 0): the sign CoLA gets wrong."""
    xp = A.bk.xp
    sign = xp.astype(parity(A.bk, A.perm), A.dtype)
    return A.nan_unless_valid(sign), A.nan_unless_valid(xp.zeros_like(xp.real(sign)))


@dispatch(name="trace")
def trace_permutation(A: Permutation, alg: Algorithm):
    """The number of fixed points."""
    xp = A.bk.xp
    return A.nan_unless_valid(xp.sum(xp.astype(A.perm == A.bk.arange(A.shape[0], A.device), A.dtype)))


@dispatch(name="svd")
def svd_permutation(A: Permutation, alg: Algorithm):
    """U = P, S = 1, V = I."""
    from linops.operators.scalar import I_like

    return A, A.nan_unless_valid(A.bk.ones((A.shape[0],), A.bk.real_dtype(A.dtype), A.device)), I_like(A)
