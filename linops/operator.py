"""The ``LinearOperator`` base class: shape, dtype, device, backend, lazy arithmetic, pytree.

A subclass says how it multiplies a block of vectors, ``_matmat(X)`` for ``X`` of shape
``(n, k)``, and, when it can do better than the generic transposition, ``_rmatmat(X)`` for
``X @ A`` with ``X`` of shape ``(k, m)``. Everything else (``A @ x`` for vectors and blocks on
either side, ``A + B``, ``c * A``, ``A.T``, ``A.H``, slicing, ``to_dense``) comes from here.

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.LinearOperator(np.float64, (3, 3), matmat=lambda X: 2 * X)
    >>> (A @ np.ones(3)).tolist()
    [2.0, 2.0, 2.0]
    >>> (3 * A + lo.I_like(A)).to_dense()[0].tolist()
    [7.0, 0.0, 0.0]
"""

from __future__ import annotations

import copy
import numbers

import numpy as np

from linops import _pytree
from linops.backends import backend_of_dtype_or_device, backend_of_type, is_array, is_canonical_dtype
from linops.dispatch import dispatch


def _shape_error(op, x, side: str) -> ValueError:
    m, n = op.shape
    valid = f"(n,) or (n, k) with n = {n}" if side == "right" else f"(m,) or (k, m) with m = {m}"
    where = "A @ x" if side == "right" else "x @ A"
    return ValueError(f"{where}: {op!r} has shape {op.shape}, x has shape {tuple(x.shape)}; "
                      f"valid x shapes are {valid}")


class LinearOperator:
    """A linear map from n-vectors to m-vectors, given by how it multiplies blocks of vectors.

    Args:
        dtype: the element type: a numpy dtype, a torch dtype, ``jnp.float32``, ``float``, ...
        shape: ``(m, n)``.
        matmat: optional function ``X (n, k) -> A X (m, k)``, for matrix-free operators.
        rmatmat: optional function ``X (k, m) -> X A (k, n)``; derived by autodiff (JAX, torch)
            or from ``to_dense`` (NumPy) when omitted.
        backend: "numpy", "jax" or "torch"; inferred from the arrays the operator holds, else
            from the dtype's type (torch dtypes mean torch, ``jnp`` types mean jax).
        device: where results live; inferred from the held arrays when omitted.
        annotations: annotations (``lo.PSD``, ...) that hold for this operator.

    Example:
        >>> import numpy as np, linops as lo
        >>> A = lo.LinearOperator(np.float64, (2, 3), matmat=lambda X: X[:2] + X[1:])
        >>> A.to_dense().tolist()
        [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]
    """

    __array_ufunc__ = None  # numpy defers ``ndarray @ op`` to ``op.__rmatmul__``
    __array_priority__ = 1000

    def __init__(self, dtype, shape, matmat=None, rmatmat=None, *, backend=None, device=None,
                 annotations=frozenset()):
        shape = tuple(shape)
        if len(shape) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 0 for s in shape):
            raise ValueError(f"{type(self).__name__}: shape must be a pair of non-negative ints, got {shape!r}")
        self.shape = (int(shape[0]), int(shape[1]))
        if backend is not None:
            from linops.backends import backend_named

            self._backend = backend_named(backend) if isinstance(backend, str) else backend
        if device is not None:
            self._device = device
        self.dtype = self._canonical_dtype(dtype)
        if not self.bk.xp.isdtype(self.dtype, "numeric"):
            raise TypeError(f"{type(self).__name__}: unsupported dtype {self.dtype}; valid dtypes are float32, "
                            f"float64, complex64, complex128 (integer types are promoted on use)")
        self.annotations = frozenset(annotations)
        if matmat is not None:
            self._matmat_fn = matmat
        if rmatmat is not None:
            self._rmatmat_fn = rmatmat

    def _canonical_dtype(self, dtype):
        if is_canonical_dtype(dtype):
            return dtype
        if "_backend" not in self.__dict__ and next(_array_like_attributes(self), None) is None:
            # matrix-free: the dtype's type picks the backend (jnp.float32 means jax)
            self._backend = backend_of_dtype_or_device(dtype, self.__dict__.get("_device"))
        return self.bk.canonical_dtype(dtype)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _pytree.register_if_jax_in_use(cls)

    # --- backend and device --------------------------------------------------------------------
    @property
    def bk(self):
        """The :class:`linops.backends.Backend` object of this operator."""
        bk = self.__dict__.get("_backend")
        if bk is None:
            bk = self._infer_backend()
            self.__dict__["_backend"] = bk
        return bk

    def _infer_backend(self):
        for value in _array_like_attributes(self):
            return value.bk if isinstance(value, LinearOperator) else backend_of_type(type(value))
        return backend_of_dtype_or_device(self.__dict__.get("dtype"), self.__dict__.get("_device"))

    @property
    def backend(self) -> str:
        """"numpy", "jax" or "torch"."""
        return self.bk.name

    @property
    def device(self):
        """The device results live on (a torch device, a jax device, or "cpu" for numpy)."""
        device = self.__dict__.get("_device")
        if device is None:
            device = self.bk.default_device()
            for value in _array_like_attributes(self):
                device = value.device if isinstance(value, LinearOperator) else self.bk.device(value)
                break
            self.__dict__["_device"] = device
        return device

    # --- the operator's action --------------------------------------------------------------------
    def _matmat(self, X):
        """``A @ X`` for X of shape (n, k) with the promoted dtype. Subclasses override this."""
        fn = self.__dict__.get("_matmat_fn")
        if fn is None:
            raise NotImplementedError(f"{type(self).__name__} defines no _matmat")
        return fn(X)

    def _rmatmat(self, X):
        """``X @ A`` for X of shape (k, m). Defaults to an autodiff transposition of ``_matmat``."""
        fn = self.__dict__.get("_rmatmat_fn")
        if fn is not None:
            return fn(X)
        return self.bk.transpose_matmat(self._matmat, X, self.shape[1])

    def _promote(self, x):
        if x.dtype == self.dtype:
            return x
        dtype = self.bk.result_type(self.dtype, x.dtype)
        return self.bk.astype(x, dtype)

    def _check_operand(self, x, side: str):
        bk = backend_of_type(type(x))
        if bk is None:
            if isinstance(x, numbers.Number):
                raise TypeError(f"cannot matmul {self!r} with the scalar {x!r}; use * to scale")
            raise TypeError(f"cannot matmul {self!r} with {type(x).__module__}.{type(x).__qualname__}; "
                            f"expected a {self.backend} array or a LinearOperator")
        if bk is not self.bk:
            raise TypeError(f"mixed backends: {self!r} is a {self.backend} operator but x is a "
                            f"{bk.name} array ({type(x).__qualname__}); convert one of them")
        size = self.shape[1] if side == "right" else self.shape[0]
        if x.ndim not in (1, 2) or x.shape[-1 if side == "left" else 0] != size:
            raise _shape_error(self, x, side)

    def __matmul__(self, other):
        if isinstance(other, LinearOperator):
            if self.shape[1] != other.shape[0]:
                raise ValueError(f"A @ B: {self!r} has shape {self.shape} and {other!r} has shape {other.shape}; "
                                 f"need {self.shape[1]} == {other.shape[0]}")
            same_backend("A @ B", (self, other))
            return dispatch.function("dot")(self, other)
        self._check_operand(other, "right")
        x = self._promote(other)
        if x.ndim == 1:
            return self._matmat(x[:, None])[:, 0]
        return self._matmat(x)

    def __rmatmul__(self, other):
        self._check_operand(other, "left")
        x = self._promote(other)
        if x.ndim == 1:
            return self._rmatmat(x[None, :])[0]
        return self._rmatmat(x)

    def to_dense(self):
        """The operator as a dense 2-D array of its backend (O(m n) memory)."""
        structured = self.__dict__.get("_dense_from")
        if structured is not None:
            return structured.to_dense()
        m, n = self.shape
        if n <= m:
            return self._matmat(self.bk.eye(n, self.dtype, self.device))
        return self._rmatmat(self.bk.eye(m, self.dtype, self.device))

    # --- lazy algebra: the constructors' rules, by name (linops.operators registers them) ----------
    @property
    def T(self):
        """The transpose, lazily (structured operators transpose structurally)."""
        return dispatch.function("transpose")(self)

    @property
    def H(self):
        """The conjugate transpose, lazily."""
        return dispatch.function("adjoint")(self)

    def __add__(self, other):
        return _add(self, _as_operator(other, self, "+"))

    def __radd__(self, other):
        return _add(_as_operator(other, self, "+"), self)

    def __sub__(self, other):
        return self + (-_as_operator(other, self, "-"))

    def __rsub__(self, other):
        return _as_operator(other, self, "-") + (-self)

    def __neg__(self):
        return self * -1

    def __mul__(self, c):
        return dispatch.function("scale")(self, _as_scalar(c, self, "*"))

    __rmul__ = __mul__

    def __truediv__(self, c):
        return dispatch.function("scale")(self, 1 / _as_scalar(c, self, "/"))

    def __getitem__(self, key):
        """``A[rows, cols]``: an operator for slices and index arrays (the ``sliced`` rules), an
        array where an int is given."""
        if not isinstance(key, tuple) or len(key) != 2:
            raise IndexError(f"index {self!r} with two indices, A[rows, cols]; got {key!r}")
        rows, squeeze_rows = _index(self.bk, key[0], self.shape[0], self.device, 0)
        cols, squeeze_cols = _index(self.bk, key[1], self.shape[1], self.device, 1)
        if rows is None and cols is None:
            return self
        out = dispatch.function("sliced")(self, rows, cols)
        if not (squeeze_rows or squeeze_cols):
            return out
        dense = out.to_dense()
        if squeeze_rows and squeeze_cols:
            return dense[0, 0]
        return dense[0] if squeeze_rows else dense[:, 0]

    # --- annotations -------------------------------------------------------------------------------
    def isa(self, annotation) -> bool:
        """Whether the operator carries ``annotation`` (``lo.PSD``, ``lo.SelfAdjoint``, ``lo.Unitary``)."""
        return annotation in self.annotations

    def annotate(self, *annotations):
        """A shallow copy that also carries ``annotations``."""
        new = copy.copy(self)
        new.annotations = self.annotations.union(annotations)
        return new

    # --- cost, for Auto ------------------------------------------------------------------------------
    is_dense = False  # whether to_dense() is free (the operator holds its dense array)

    def matvec_cost(self) -> float:
        """The flops of one ``A @ x``, from the structure: here the arrays and operators the
        operator holds (a matrix-free operator with no arrays counts as dense, 2 m n, since its
        cost is unknown). Structures whose product costs otherwise override this.
        """
        m, n = self.shape
        known = self.__dict__.get("_matvec_cost")
        if known is not None:
            return known
        held = list(_array_like_attributes(self))
        if not held:
            return 2.0 * m * n if "_matmat_fn" in self.__dict__ else float(m + n)
        return float(sum(v.matvec_cost() if isinstance(v, LinearOperator) else 2.0 * _size(v) for v in held))

    def densify_cost(self) -> float:
        """The flops of ``to_dense()``: free for a dense operator, else one product per column
        (structures that form their matrix directly, like ``Kernel``, override this)."""
        structured = self.__dict__.get("_dense_from")
        if structured is not None:
            return structured.densify_cost()
        return 0.0 if self.is_dense else min(self.shape) * self.matvec_cost()

    def without_structure(self) -> LinearOperator:
        """The same action and annotations with the structure hidden, so that only the generic
        rules (and ``Auto``) apply: where a structural rule's precondition fails."""
        return without_structure(self)

    def __repr__(self) -> str:
        m, n = self.shape
        tags = "".join(f", {a}" for a in sorted(self.annotations, key=repr) if a.name != "SelfAdjoint"
                       or not any(b.name == "PSD" for b in self.annotations))
        return f"{type(self).__name__}({m}×{n}, {_dtype_name(self.dtype)}{tags})"


def without_structure(A: LinearOperator) -> LinearOperator:
    """A with its structure hidden (same action and annotations), so that only the generic
    rules apply to it: the fallback of a structural rule whose preconditions fail."""
    hidden = LinearOperator(A.dtype, A.shape, matmat=A._matmat, rmatmat=A._rmatmat, backend=A.bk,
                            device=A.device, annotations=A.annotations)
    # hiding the structure from the rules changes neither the product's cost nor how the matrix is formed
    hidden._matvec_cost = A.matvec_cost()
    hidden._dense_from = A
    return hidden


def structured(A: LinearOperator) -> LinearOperator:
    """The structured operator behind ``A`` where ``A`` is its ``without_structure()`` view (for
    choices that read structure without dispatching on it, e.g. a preconditioner), else ``A``."""
    return getattr(A, "_dense_from", None) or A


def same_backend(name: str, ops) -> None:
    """A TypeError naming both backends when the operators ``ops`` mix them."""
    first = ops[0]
    for op in ops[1:]:
        if op.bk is not first.bk:
            raise TypeError(f"{name}: mixed backends: {first!r} is {first.backend} but {op!r} is {op.backend}; "
                            f"build every part from arrays of one framework")


def _add(A, B):
    """A + B for operators, through the ``add`` rules (dispatch on both types)."""
    if A.shape != B.shape:
        raise ValueError(f"A + B: shapes differ: {A!r} has shape {A.shape}, {B!r} has shape {B.shape}")
    same_backend("A + B", (A, B))
    return dispatch.function("add")(A, B)


def _index(bk, key, n, device, axis):
    """``(index array or None, squeeze)`` for one axis of ``A[rows, cols]``."""
    if isinstance(key, numbers.Integral):
        if not -n <= key < n:
            raise IndexError(f"index {key} is out of bounds for axis {axis} of size {n}")
        return bk.asarray([key % n], dtype=bk.xp.int64, device=device), True
    if isinstance(key, slice):
        if key == slice(None):
            return None, False
        return bk.asarray(list(range(*key.indices(n))), dtype=bk.xp.int64, device=device), False
    if isinstance(key, (list, tuple)) or is_array(key):
        index = bk.asarray(key, device=device)
        if index.ndim != 1 or bk.is_floating(index.dtype):
            raise IndexError(f"axis {axis}: index arrays must be 1-D integer arrays, got {tuple(index.shape)} "
                             f"{index.dtype}")
        return index, False
    raise IndexError(f"unsupported index {key!r} for axis {axis}: use an int, a slice or a 1-D integer array")


def _size(x) -> int:
    size = 1
    for d in x.shape:
        size *= int(d)
    return size


def _dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _array_like_attributes(op):
    for key, value in op.__dict__.items():
        if key.startswith("_"):
            continue
        if isinstance(value, LinearOperator) or (is_array(value) and not isinstance(value, np.generic)):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from (v for v in value if isinstance(v, LinearOperator) or is_array(v))


def _as_operator(other, op, symbol):
    if isinstance(other, LinearOperator):
        return other
    if is_array(other) and getattr(other, "ndim", 0) == 2:
        return dispatch.function("lazify")(other)
    raise TypeError(f"{op!r} {symbol} {type(other).__name__}: expected a LinearOperator or a 2-D array; "
                    f"to add a multiple of the identity write A + c * lo.I_like(A)")


def _as_scalar(c, op, symbol):
    if isinstance(c, numbers.Number) or (is_array(c) and getattr(c, "ndim", None) == 0):
        return c
    raise TypeError(f"{op!r} {symbol} {type(c).__name__}: expected a scalar (a number or a 0-d array); "
                    f"use @ for matrix products")


_pytree.register_root(LinearOperator)
