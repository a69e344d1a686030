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
import functools
import math
import numbers

import numpy as np
import scipy.sparse.linalg

from linops import _pytree
from linops.backends import (
    backend_named,
    backend_of_dtype_or_device,
    backend_of_sparse,
    backend_of_type,
    foreign_array_as_numpy,
    is_array,
    is_canonical_dtype,
)
from linops.backends.base import array_self_adjoint_defect, human_bytes, reaches
from linops.dispatch import dispatch

_FLOAT_DTYPES = ("float32", "float64", "complex64", "complex128")  # the dtypes an operator may have
_NUMERIC_KINDS = "biufc"  # numpy dtype kinds an operand may have: bool, int, uint, float, complex
_PORTABLE_DEVICE = "_portable_device"  # the pickled form of ``_device`` (see LinearOperator.__getstate__)
_FIXED = frozenset()  # an operator that holds arrays (or was given its device) adopts nothing
_ADOPTS_DEVICE = frozenset({"device"})
_ADOPTS_ALL = frozenset({"device", "backend"})


def _numpy_backend():
    return backend_named("numpy")


def _framework_array_reached_by(fn):
    """The first torch or jax array the function ``fn`` closes over (or None): where a matrix-free
    operator built without a device computes (NumPy arrays are host constants, which say nothing)."""
    found = []

    def framework_array(value) -> bool:
        bk = backend_of_type(type(value)) if is_array(value) else None
        if bk is None or bk is _numpy_backend():
            return False
        found.append(value)
        return True

    reaches(fn, framework_array)
    return found[0] if found else None


def _is_dtype(arg) -> bool:
    """Whether an argument of ``A.to`` names a dtype (else it names a device)."""
    if isinstance(arg, str):
        return arg in _FLOAT_DTYPES
    return isinstance(arg, (np.dtype, type)) or type(arg).__name__ == "dtype"


def _moved_dtype(bk, current, dtype):
    """The dtype an array (or operator) of dtype ``current`` takes in ``A.to(dtype)``: ``dtype``'s
    precision, complex where ``current`` is; integer dtypes (indices) are kept."""
    if dtype is None or not bk.is_floating(current):
        return current
    if bk.is_complex(current) and not bk.is_complex(dtype):
        return bk.complex_of(dtype)
    return dtype


def _moved(op, bk, device, dtype):
    """``op.to(device, dtype)``: a copy whose arrays (and operators) are moved and converted."""
    new = copy.copy(op)
    for key, value in op.__dict__.items():
        if isinstance(value, LinearOperator):
            new.__dict__[key] = _moved(value, bk, device, dtype)
        elif isinstance(value, (list, tuple)) and any(isinstance(v, LinearOperator) or is_array(v) for v in value):
            new.__dict__[key] = type(value)(_moved_part(v, bk, device, dtype) for v in value)
        elif is_array(value) and not isinstance(value, np.generic):
            new.__dict__[key] = _moved_part(value, bk, device, dtype)
    new.dtype = _moved_dtype(bk, op.dtype, dtype)
    if device is not None:  # re-derived from the moved arrays; given to an operator that holds none
        new.__dict__.pop("_adopts", None)
        new.__dict__.pop("_adoptable_cache", None)
        new.__dict__.pop("_device", None)
        if next(_array_like_attributes(new), None) is None:
            new.__dict__["_device"] = device
    return new


def _moved_part(value, bk, device, dtype):
    if isinstance(value, LinearOperator):
        return _moved(value, bk, device, dtype)
    if is_array(value) and not isinstance(value, np.generic):
        return bk.move(value, device, _moved_dtype(bk, value.dtype, dtype) if dtype is not None else None)
    return value


def _shape_error(op, x, side: str) -> ValueError:
    m, n = op.shape
    valid = f"(n,) or (n, k) with n = {n}" if side == "right" else f"(m,) or (k, m) with m = {m}"
    where = "A @ x" if side == "right" else "x @ A"
    return ValueError(f"{where}: {op!r} has shape {op.shape}, x has shape {tuple(x.shape)}; "
                      f"valid x shapes are {valid}")


_CHECKED_FROM_BYTES = 2**28  # below 256 MiB a dense matrix is never worth asking the system about


def check_dense_fits(op) -> None:
    """Raise a MemoryError naming ``op``, its dense size and the free memory where ``op.to_dense()``
    would allocate more than the memory available on its device (an operator that already holds
    an m×n array, like ``Dense``, allocates nothing new and passes)."""
    m, n = op.shape
    need = float(m) * n * int(getattr(op.dtype, "itemsize", 8))
    if need < _CHECKED_FROM_BYTES or any(not isinstance(v, LinearOperator) and math.prod(v.shape) >= m * n
                                         for v in _array_like_attributes(op)):
        return
    free = op.bk.available_memory(op.device)
    if need > free:
        raise MemoryError(f"{op!r}.to_dense(): the dense {m}×{n} matrix needs {human_bytes(need)} but "
                          f"{human_bytes(free)} are free on {op.device}; apply it matrix-free (A @ X), form "
                          f"a block (A[i:j].to_dense()), or call lo functions, which keep the structure")


def _refusing_what_cannot_fit(to_dense):
    @functools.wraps(to_dense)
    def checked(self):
        check_dense_fits(self)
        return to_dense(self)

    return checked


class LinearOperator:
    """A linear map from n-vectors to m-vectors, given by how it multiplies blocks of vectors.

    Args:
        dtype: the element type: a numpy dtype, a torch dtype, ``jnp.float32``, ``float``, ...;
            float32, float64, complex64 or complex128 (integer types are promoted on use, as the
            framework promotes them; float16 and bfloat16 raise a TypeError).
        shape: ``(m, n)``.
        matmat: optional function ``X (n, k) -> A X (m, k)``, for matrix-free operators.
        rmatmat: optional function ``X (k, m) -> X A (k, n)``; derived by autodiff (JAX, torch)
            or from ``to_dense`` (NumPy) when omitted.
        backend: "numpy", "jax" or "torch"; inferred from the arrays the operator holds, else
            from the dtype's type (torch dtypes mean torch, ``jnp`` types mean jax).
        device: where results live; inferred from the held arrays when omitted. An operator that
            holds no array and is given no device (matrix-free, ``Identity``, ``ScalarMul``, ...)
            adopts the device of the operators and arrays it meets (and, when its dtype is a NumPy
            dtype and no backend is given, their backend too): ``K + s * lo.Identity(K.shape, K.dtype)``
            is on K's GPU and is a jax operator for a jax K.
        annotations: annotations (``lo.PSD``, ...) that hold for this operator.

    Operators pickle, cloudpickle and deepcopy on every backend (the backend travels by name, a
    jax device as its platform and id); a ``matmat`` that is a lambda needs cloudpickle.

    Example:
        >>> import numpy as np, linops as lo
        >>> A = lo.LinearOperator(np.float64, (2, 3), matmat=lambda X: X[:2] + X[1:])
        >>> A.to_dense().tolist()
        [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]
    """

    __array_ufunc__ = None  # numpy defers ``ndarray @ op`` to ``op.__rmatmul__``
    __array_priority__ = 1000
    _index_attributes: tuple[str, ...] = ()  # NumPy index arrays it may hold and still adopt a backend
    _accepts_low_precision = False  # float16 / bfloat16 for products only (Monarch, BTT)

    def __init__(self, dtype, shape, matmat=None, rmatmat=None, *, backend=None, device=None,
                 annotations=frozenset()):
        _pytree.ensure_registered()
        shape = tuple(shape)
        if len(shape) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 0 for s in shape):
            raise ValueError(f"{type(self).__name__}: shape must be a pair of non-negative ints, got {shape!r}")
        self.shape = (int(shape[0]), int(shape[1]))
        if backend is not None:
            self._backend = backend_named(backend) if isinstance(backend, str) else backend
        owner = getattr(matmat, "__self__", None)
        if device is None and backend is None and isinstance(owner, LinearOperator) and "backend" not in (
                adoptable := owner._adoptable()):
            # another operator's product (A._matmat) computes where A computes, on A's backend
            backend = self._backend = owner.bk
            device = None if "device" in adoptable else owner.device
        if device is None and matmat is not None and type(self) is LinearOperator:
            held = _framework_array_reached_by(matmat)  # a matrix-free product over a user's tensors
            if held is not None:
                backend = backend or backend_of_type(type(held))
                self._backend = backend_named(backend) if isinstance(backend, str) else backend
                device = self._backend.device(held)
        adopts = frozenset() if device is not None else _ADOPTS_DEVICE
        if device is not None:
            self._device = device
        elif backend is None and backend_of_dtype_or_device(dtype) is _numpy_backend():
            adopts = _ADOPTS_ALL  # a NumPy dtype says nothing of the framework (jax arrays have them)
        if adopts:
            self._adopts = adopts  # what it takes from partners, where it holds no array (_adoptable)
        self.dtype = self._canonical_dtype(dtype)
        if isinstance(device, str):  # "cuda:0" as the framework's device object
            self._device = self.bk.user_device(device)
        name = _dtype_name(self.dtype)
        if name not in _FLOAT_DTYPES and not name.startswith(("int", "uint")) and not (
                self._accepts_low_precision and name in ("float16", "bfloat16")):
            # float16 and bfloat16 would fail inside the frameworks' linear algebra (or lose all accuracy);
            # structured layers (Monarch, BTT) take them for their products, which the functions refuse
            raise TypeError(f"{type(self).__name__}: unsupported dtype {self.dtype}; valid dtypes are "
                            f"{', '.join(_FLOAT_DTYPES)} (integer types are promoted on use); convert the "
                            f"arrays first, e.g. x.astype(float32)")
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
        if "to_dense" in cls.__dict__:  # every to_dense refuses a matrix that cannot fit, the same way
            cls.to_dense = _refusing_what_cannot_fit(cls.__dict__["to_dense"])
        _pytree.register_if_jax_in_use(cls)

    # --- pickle, cloudpickle, deepcopy ----------------------------------------------------------------
    def __getstate__(self):
        """The attributes, with the device in a portable form (a jax device does not pickle; the
        backend pickles by name, so the copy is an operator of the same backend object)."""
        state = dict(self.__dict__)
        device = state.pop("_device", None)
        if device is None and next(_array_like_attributes(self), None) is not None:
            device = self.device
        if device is not None:
            state[_PORTABLE_DEVICE] = self.bk.portable_device(device)
        return state

    def __copy__(self):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __deepcopy__(self, memo):
        state = self.__getstate__()
        for value in state.values():  # arrays the framework cannot deep-copy itself (torch sparse CSR)
            for x in value if isinstance(value, (list, tuple)) else (value,):
                if is_array(x) and id(x) not in memo:
                    memo[id(x)] = backend_of_type(type(x)).deepcopy_array(x, memo)
        new = object.__new__(type(self))
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(state, memo))
        return new

    def __setstate__(self, state):
        state = dict(state)
        portable = state.pop(_PORTABLE_DEVICE, None)
        self.__dict__.update(state)
        if portable is not None:
            device = self.bk.device_from_portable(portable)
            if device is not None:
                self.__dict__["_device"] = device
                self._replace_arrays(device)

    def _replace_arrays(self, device) -> None:
        """Put the arrays this operator holds back on ``device`` after unpickling (a jax array
        comes back uncommitted, on the default device)."""
        bk = self.bk
        for key, value in self.__dict__.items():
            for_each = value if isinstance(value, (list, tuple)) else (value,)
            if not any(is_array(x) and not isinstance(x, np.generic) for x in for_each):
                continue
            moved = [bk.move(x, device) if is_array(x) and not isinstance(x, np.generic) and (
                bk.device(x) is None or not bk.same_device(bk.device(x), device)) else x for x in for_each]
            self.__dict__[key] = type(value)(moved) if isinstance(value, (list, tuple)) else moved[0]

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
    def xnp(self):
        """CoLA compatibility: CoLA's ``xnp`` namespace of array functions for this operator's
        framework (``xnp.array(x, dtype, device)``, ``xnp.randn``, ``xnp.vmap``, ``xnp.grad``, ...),
        so that CoLA code written against ``A.xnp`` runs unchanged (see ``linops.compat.cola``).
        New linops code uses the framework itself or ``A.bk``.

        Example:
            >>> import numpy as np, linops as lo
            >>> A = lo.Diagonal(np.array([1.0, 2.0]))
            >>> xnp = A.xnp
            >>> xnp.canonical(0, (2,), A.dtype, A.device).tolist()
            [1.0, 0.0]
        """
        return self.bk.xnp

    @property
    def device(self):
        """The device results live on (a torch device, a jax device or sharding, or "cpu" for numpy);
        the framework's default device for an operator that holds no array and was given none.

        Assigning it (CoLA's ``A.device = "cuda"``) moves the operator's arrays there in place, as
        ``A = A.to("cuda")`` does; operators built from ``A`` before keep their placement.

        Example:
            >>> import torch, linops as lo
            >>> A = lo.Diagonal(torch.ones(2))
            >>> A.device = "meta"
            >>> A.device, A.diag.device
            (device(type='meta'), device(type='meta'))
        """
        device = self.__dict__.get("_device")
        if device is None:
            if "device" in self._adoptable():
                return self.bk.default_device()  # not kept: it adopts its partners' device
            for value in _array_like_attributes(self):
                device = value.device if isinstance(value, LinearOperator) else self.bk.device(value)
                break
            else:
                return self.bk.default_device()  # not kept: it adopts its partners' device
            self.__dict__["_device"] = device
        return device

    @device.setter
    def device(self, device):
        # CoLA compatibility: ``A.device = d`` is ``A = A.to(d)`` done in place (the arrays move there;
        # operators built from A earlier keep their own). New code writes ``A = A.to(d)``.
        moved = self.to(device)
        self.__dict__.clear()
        self.__dict__.update(moved.__dict__)

    def to(self, *args, device=None, dtype=None) -> LinearOperator:
        """The operator with its arrays moved to ``device`` and/or converted to ``dtype``, as
        ``tensor.to``: ``A.to("cuda")``, ``A.to(torch.float32)``, ``A.to(device, dtype)``.

        Floating-point arrays take ``dtype``'s precision (complex ones stay complex); integer arrays
        (indices) keep theirs. Torch gradients flow through the copy; on JAX this is ``jax.device_put``
        of every array (a device or a ``Sharding``); NumPy operators live on the CPU. The function of
        a matrix-free operator is the user's: it is not changed, and must return results there.

        Example:
            >>> import numpy as np, linops as lo
            >>> A = lo.Diagonal(np.arange(1.0, 4.0)) + lo.Identity(3, np.float64)
            >>> B = A.to(np.float32)
            >>> B.dtype, (B @ np.ones(3, np.float32)).dtype
            (dtype('float32'), dtype('float32'))
        """
        for arg in args:
            if _is_dtype(arg):
                dtype = arg
            else:
                device = arg
        bk = self.bk
        if device is not None:
            device = bk.user_device(device)
        if dtype is not None:
            dtype = bk.canonical_dtype(dtype)
            name = _dtype_name(dtype)
            if name not in _FLOAT_DTYPES and not (self._accepts_low_precision and name in ("float16", "bfloat16")):
                raise TypeError(f"{self!r}.to: unsupported dtype {name}; valid dtypes are {', '.join(_FLOAT_DTYPES)}")
        return _moved(self, bk, device, dtype)

    # --- adopting partners' backend and device (operators that hold no array) -------------------
    def _adoptable(self) -> frozenset:
        """What this operator takes from the operators and arrays it meets: {"device"} where it
        holds no array and was built without a device, plus "backend" where its backend came only
        from a NumPy dtype; a composite of such operators takes what all its parts take."""
        known = self.__dict__.get("_adoptable_cache")
        if known is not None:
            return known
        adopts, holds = self.__dict__.get("_adopts", frozenset()), False
        index = type(self)._index_attributes
        for key, value in self.__dict__.items():
            for part in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(part, LinearOperator):
                    adopts = (part._adoptable() if not holds else adopts & part._adoptable())
                    holds = True
                elif is_array(part) and not isinstance(part, np.generic) and not key.startswith("_") \
                        and not (key in index and isinstance(part, np.ndarray)):
                    adopts, holds = frozenset(), True
                    break
            if holds and not adopts:
                break
        self.__dict__["_adoptable_cache"] = adopts  # operators never change (adopted copies drop it)
        return adopts

    def _adopted(self, bk, device) -> LinearOperator:
        """This operator as ``bk``'s on ``device`` where it adopts them (a copy), else itself."""
        adopts = self._adoptable()
        if not adopts:
            return self
        new_backend = "backend" in adopts and bk is not self.bk
        new_device = "device" in adopts and device is not None and not bk.same_device(device, self.device)
        if not (new_backend or new_device):
            return self
        new = copy.copy(self)
        new.__dict__.pop("_adopts", None)
        new.__dict__.pop("_adoptable_cache", None)
        index = type(self)._index_attributes
        for key, value in self.__dict__.items():
            if isinstance(value, LinearOperator):
                new.__dict__[key] = value._adopted(bk, device)
            elif isinstance(value, (list, tuple)) and any(isinstance(v, LinearOperator) for v in value):
                new.__dict__[key] = type(value)(v._adopted(bk, device) if isinstance(v, LinearOperator) else v
                                                for v in value)
            elif key in index and is_array(value):
                new.__dict__[key] = bk.asarray(value, device=device)
        if new_backend:
            new.__dict__["_backend"] = bk
            new.dtype = bk.canonical_dtype(_dtype_name(self.dtype))
        if device is not None and ("device" in adopts or isinstance(self.__dict__.get("_device"), str)):
            new.__dict__["_device"] = device
        return new

    def _placement(self) -> dict:
        """``backend=`` and ``device=`` for an array-free operator derived from this one (c·I from
        c·I, an inverse FFT): None where this one adopts them, so the result adopts them too."""
        adopts = self._adoptable()
        return {"backend": None if "backend" in adopts else self.bk,
                "device": None if "device" in adopts else self.device}

    def _meeting(self, x) -> LinearOperator:
        """This operator, adopting the backend and device of the array ``x`` where it adopts them."""
        if self.__dict__.get("_adoptable_cache", _ADOPTS_ALL) == _FIXED:
            return self  # holds arrays (the usual case: one dictionary lookup)
        bk = backend_of_type(type(x))
        return self if bk is None or not self._adoptable() else self._adopted(bk, bk.device(x))

    # --- the operator's action --------------------------------------------------------------------
    def _matmat(self, X):
        """``A @ X`` for X of shape (n, k) with the promoted dtype. Subclasses override this."""
        fn = self.__dict__.get("_matmat_fn")
        if fn is None:
            raise NotImplementedError(f"{type(self).__name__} defines no _matmat")
        return _checked_result(self, "matmat", fn(X), (self.shape[0], X.shape[1]))

    def _rmatmat(self, X):
        """``X @ A`` for X of shape (k, m). Defaults to an autodiff transposition of ``_matmat``."""
        fn = self.__dict__.get("_rmatmat_fn")
        if fn is not None:
            return _checked_result(self, "rmatmat", fn(X), (X.shape[0], self.shape[1]))
        return self.bk.transpose_matmat(self._matmat, X, self.shape[1])

    def _promote(self, x):
        if not is_array(x):  # an array of another array-API library, read as NumPy (see _check_operand)
            x = foreign_array_as_numpy(x)
        if self.bk.reads_numpy and isinstance(x, np.ndarray):  # a NumPy operand of a JAX operator
            x = self.bk.asarray(x)
        if x.dtype == self.dtype:
            return x
        dtype = self.bk.result_type(self.dtype, x.dtype)
        return self.bk.astype(x, dtype)

    def _check_operand(self, x, side: str):
        bk = backend_of_type(type(x))
        if bk is None and hasattr(x, "__array_namespace__") and hasattr(x, "__dlpack__"):
            if self.bk is not _numpy_backend():
                raise TypeError(f"{self!r} is a {self.backend} operator but x is a {type(x).__module__}."
                                f"{type(x).__qualname__} array, which linops reads as a NumPy array (via DLPack); "
                                f"give a {self.backend} array (e.g. {self.backend}'s from_dlpack(x))")
            bk = self.bk  # another array-API library's array: read as a NumPy array through DLPack
        if bk is None:
            if isinstance(x, numbers.Number):
                raise TypeError(f"cannot matmul {self!r} with the scalar {x!r}; use * to scale")
            raise TypeError(f"cannot matmul {self!r} with {type(x).__module__}.{type(x).__qualname__}; "
                            f"expected a {self.backend} array or a LinearOperator")
        if bk is not self.bk and not (self.bk.reads_numpy and bk is _numpy_backend()):
            raise TypeError(f"mixed backends: {self!r} is a {self.backend} operator but x is a "
                            f"{bk.name} array ({type(x).__qualname__}); convert one of them")
        if isinstance(x.dtype, np.dtype) and x.dtype.kind not in _NUMERIC_KINDS and x.dtype.name != "bfloat16":
            # strings, objects, dates (JAX's bfloat16 is an ml_dtypes kind "V")
            raise TypeError(f"{self!r}: the operand x has unsupported dtype {x.dtype}; valid dtypes are "
                            f"{', '.join(_FLOAT_DTYPES)} (integer and bool types are promoted); convert x "
                            f"first, e.g. x.astype(float64)")
        size = self.shape[1] if side == "right" else self.shape[0]
        if x.ndim not in (1, 2) or x.shape[-1 if side == "left" else 0] != size:
            raise _shape_error(self, x, side)

    def __matmul__(self, other):
        if _is_matrix(other):  # a sparse matrix or a SciPy LinearOperator: a lazy product
            other = dispatch.function("lazify")(other)
        if isinstance(other, LinearOperator):
            if self.shape[1] != other.shape[0]:
                raise ValueError(f"A @ B: {self!r} has shape {self.shape} and {other!r} has shape {other.shape}; "
                                 f"need {self.shape[1]} == {other.shape[0]}")
            A, B = meet("A @ B", (self, other))
            return dispatch.function("dot")(A, B)
        A = self._meeting(other)
        A._check_operand(other, "right")
        x = A._promote(other)
        if x.ndim == 1:
            return A._matmat(x[:, None])[:, 0]
        return A._matmat(x)

    def __rmatmul__(self, other):
        if _is_matrix(other):  # torch sparse or BCOO on the left (a SciPy sparse matrix multiplies itself)
            return dispatch.function("lazify")(other) @ self
        A = self._meeting(other)
        A._check_operand(other, "left")
        x = A._promote(other)
        if x.ndim == 1:
            return A._rmatmat(x[None, :])[0]
        return A._rmatmat(x)

    def to_dense(self):
        """The operator as a dense 2-D array of its backend (O(m n) memory). A matrix larger than the
        memory available on the device raises a MemoryError naming the size (every subclass's
        ``to_dense`` checks this first)."""
        check_dense_fits(self)
        structured = self.__dict__.get("_dense_from")
        if structured is not None:
            return structured.to_dense()
        m, n = self.shape
        if n <= m:
            return self._matmat(self.bk.eye(n, self.dtype, self.device))
        return self._rmatmat(self.bk.eye(m, self.dtype, self.device))

    # --- SciPy's LinearOperator protocol and NumPy's array protocol -------------------------------
    # scipy.sparse.linalg.aslinearoperator reads shape, dtype, matvec, rmatvec and rmatmat; scipy.sparse
    # reads ndim when it multiplies an operand it does not know.
    ndim = 2

    def matvec(self, x):
        """``A x`` for a vector ``x`` of shape ``(n,)`` or ``(n, 1)``, as SciPy's ``LinearOperator.matvec``.

        A NumPy ``x`` gives a NumPy result for an operator of any backend: a torch or jax operator
        computes on its own device, with one copy of ``x`` there and one of the result back (a
        synchronisation per call). An array of the operator's own backend gives one of that backend.

        Example:
            >>> import numpy as np, linops as lo
            >>> lo.Diagonal(np.array([1.0, 2.0])).matvec(np.ones(2)).tolist()
            [1.0, 2.0]
        """
        return _protocol_call(self, x, adjoint=False, block=False)

    def rmatvec(self, x):
        """``Aᴴ x`` (the conjugate transpose) for ``x`` of shape ``(m,)`` or ``(m, 1)``, as SciPy's
        ``LinearOperator.rmatvec``; arrays as in :meth:`matvec`.

        Example:
            >>> import numpy as np, linops as lo
            >>> lo.Dense(np.array([[1.0, 2.0], [0.0, 1.0]])).rmatvec(np.ones(2)).tolist()
            [1.0, 3.0]
        """
        return _protocol_call(self, x, adjoint=True, block=False)

    def matmat(self, X):
        """``A X`` for a block ``X`` of shape ``(n, k)``, as SciPy's ``LinearOperator.matmat``; arrays
        as in :meth:`matvec` (one copy each way for the whole block).

        Example:
            >>> import numpy as np, linops as lo
            >>> lo.Diagonal(np.array([1.0, 2.0])).matmat(np.ones((2, 1))).tolist()
            [[1.0], [2.0]]
        """
        return _protocol_call(self, X, adjoint=False, block=True)

    def rmatmat(self, X):
        """``Aᴴ X`` for a block ``X`` of shape ``(m, k)``, as SciPy's ``LinearOperator.rmatmat``; arrays
        as in :meth:`matvec`.

        Example:
            >>> import numpy as np, linops as lo
            >>> lo.Dense(np.array([[1.0, 2.0], [0.0, 1.0]])).rmatmat(np.eye(2)).tolist()
            [[1.0, 0.0], [2.0, 1.0]]
        """
        return _protocol_call(self, X, adjoint=True, block=True)

    def to_scipy(self) -> scipy.sparse.linalg.LinearOperator:
        """This operator as a matrix-free ``scipy.sparse.linalg.LinearOperator`` (NumPy dtype, NumPy
        arrays in and out, via :meth:`matvec`, :meth:`rmatvec`, :meth:`matmat`, :meth:`rmatmat`).

        ``scipy.sparse.linalg`` functions accept a NumPy or JAX operator directly (they call
        ``aslinearoperator``, which reads the protocol above); a torch operator's dtype is a torch
        dtype, which SciPy cannot read, so pass ``A.to_scipy()``. It also gives SciPy a block
        ``matmat`` (``aslinearoperator`` would loop ``matvec`` over columns), which block methods
        (``expm_multiply``, ``lobpcg``) use. A torch or jax operator copies every block to and from
        its device (a synchronisation per product).

        Example:
            >>> import numpy as np, scipy.sparse.linalg as spla, linops as lo
            >>> A = lo.Diagonal(np.array([2.0, 4.0])).to_scipy()
            >>> A.dtype, spla.cg(A, np.ones(2))[0].round(6).tolist()
            (dtype('float64'), [0.5, 0.25])
        """
        return scipy.sparse.linalg.LinearOperator(self.shape, matvec=self.matvec, rmatvec=self.rmatvec,
                                                  matmat=self.matmat, rmatmat=self.rmatmat,
                                                  dtype=np.dtype(_dtype_name(self.dtype)))

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(A)``: the dense matrix as a NumPy array on the host, for an operator of any
        backend (``to_dense()``, copied from a torch or jax device: a synchronisation; torch's autograd
        graph is left). O(m n) memory: a matrix that cannot fit raises a MemoryError naming its size.

        Example:
            >>> import numpy as np, linops as lo
            >>> np.asarray(lo.Diagonal(np.array([1.0, 2.0]))).tolist()
            [[1.0, 0.0], [0.0, 2.0]]
        """
        return np.array(self.bk.to_host(self.to_dense()), dtype=dtype, copy=copy)

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
        if isinstance(other, numbers.Number) and other == 0:  # 0 + A: Python's sum() over operators
            return self
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
        rows, squeeze_rows, rows_ok = _index(self, key[0], 0)
        cols, squeeze_cols, cols_ok = _index(self, key[1], 1)
        if rows is None and cols is None:
            return self
        out = dispatch.function("sliced")(self, rows, cols)
        if rows_ok is not None or cols_ok is not None:
            out = _OutOfRange(out, rows_ok, cols_ok)
        if not (squeeze_rows or squeeze_cols):
            return out
        dense = out.to_dense()
        if squeeze_rows and squeeze_cols:
            return dense[0, 0]
        return dense[0] if squeeze_rows else dense[:, 0]

    def flatten(self):
        """CoLA compatibility: ``(arrays, unflatten)``, the arrays the operator holds (depth first
        through the operators it holds) and a function that rebuilds it from arrays of the same
        shapes, e.g. to optimise the parameters of an operator with a framework's optimiser.
        Python scalars (a ``ScalarMul``'s constant) are part of the structure, not arrays.

        Example:
            >>> import numpy as np, linops as lo
            >>> A = lo.Kronecker(lo.Diagonal(np.array([1.0, 2.0])), lo.Dense(np.eye(2)))
            >>> arrays, unflatten = A.flatten()
            >>> [a.shape for a in arrays]
            [(2,), (2, 2)]
            >>> unflatten([2 * a for a in arrays]).to_dense()[2].tolist()
            [0.0, 0.0, 8.0, 0.0]
        """
        return _pytree.flatten_arrays(self)

    # --- annotations -------------------------------------------------------------------------------
    def isa(self, annotation) -> bool:
        """Whether the operator carries ``annotation`` (``lo.PSD``, ``lo.SelfAdjoint``, ``lo.Unitary``)."""
        return annotation in self.annotations

    def annotate(self, *annotations):
        """A shallow copy that also carries ``annotations``."""
        new = copy.copy(self)
        new.annotations = self.annotations.union(annotations)
        return new

    def _self_adjoint_defect(self):
        """``(max|A − Aᴴ|, max|A|)`` as 0-d arrays, computed from what the operator stores in
        O(stored entries), for ``lo.SelfAdjoint`` / ``lo.PSD`` to refuse an operator that is visibly
        not self-adjoint (see :func:`linops.annotations.check_self_adjoint`); None where that is
        unknown or not cheap (matrix-free and most structured operators: the annotation is then
        trusted). Structures whose parameters show it override this; a dense operator compares its
        array with its adjoint.

        Example:
            >>> import numpy as np, linops as lo
            >>> gap, scale = lo.Dense(np.array([[2.0, 1.0], [0.0, 2.0]]))._self_adjoint_defect()
            >>> float(gap), float(scale)
            (1.0, 2.0)
        """
        return array_self_adjoint_defect(self.bk, self.to_dense()) if self.is_dense else None

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


def meet(name: str, ops) -> tuple[LinearOperator, ...]:
    """The operators ``ops`` about to be combined, those that hold no array adopting the backend and
    device of the first that fixes them; a TypeError naming both backends where they mix, a
    ValueError naming both devices where parts sit on different devices."""
    adopts = [op._adoptable() for op in ops]
    if len(ops) > 1 and any(adopts):
        anchor = next((op for op, a in zip(ops, adopts, strict=True) if not a), None) or next(
            (op for op, a in zip(ops, adopts, strict=True) if "backend" not in a), None)
        if anchor is not None:
            bk, device = anchor.bk, anchor.device
            ops = tuple(op._adopted(bk, device) if a else op for op, a in zip(ops, adopts, strict=True))
    first = ops[0]
    bk, device = first.bk, first.device
    for op in ops[1:]:
        if op.bk is not bk:
            raise TypeError(f"{name}: mixed backends: {first!r} is {first.backend} but {op!r} is {op.backend}; "
                            f"build every part from arrays of one framework")
        other = op.device
        if other is not device and not bk.same_device(device, other):
            raise ValueError(f"{name}: mixed devices: {first!r} is on {first.device} but {op!r} is on "
                             f"{op.device}; move one with .to(device)")
    return tuple(ops)


def _add(A, B):
    """A + B for operators, through the ``add`` rules (dispatch on both types)."""
    if A.shape != B.shape:
        raise ValueError(f"A + B: shapes differ: {A!r} has shape {A.shape}, {B!r} has shape {B.shape}")
    return dispatch.function("add")(*meet("A + B", (A, B)))


def _checked_result(op, name: str, out, expected):
    """``out``, the result of a user-supplied ``matmat``/``rmatmat``, after a check of its shape (static,
    so it holds under ``jax.jit`` too): a ValueError naming the operator and both shapes."""
    got = tuple(getattr(out, "shape", ()))
    if got != expected:
        raise ValueError(f"{op!r}: the {name} function returned shape {got}, expected {expected} "
                         f"(the operator has shape {op.shape})")
    return out


def _index(op, key, axis):
    """``(index array or None, squeeze, in range)`` for one axis of ``op[rows, cols]``: an int, a
    slice (any step), a 1-D integer array (negative entries count from the end, repeats allowed)
    or a boolean mask of the axis' length. Indices out of range raise IndexError where their
    values are readable; for traced JAX indices (under ``jax.jit``) ``in range`` is the boolean
    array saying which are (those that are not read index 0), else None."""
    bk, n, device = op.bk, op.shape[axis], op.device
    what = ("row", "rows") if axis == 0 else ("column", "columns")
    if isinstance(key, bool):
        raise IndexError(f"{op!r}: a bool is not a {what[0]} index; use an int, a slice, an index array or a "
                         f"boolean mask of length {n}")
    if isinstance(key, numbers.Integral):
        if not -n <= key < n:
            raise IndexError(f"{op!r}: {what[0]} index {key} is out of bounds for {n} {what[1]} "
                             f"(valid: {-n} to {n - 1})")
        return bk.asarray([key % n], dtype=bk.xp.int64, device=device), True, None
    if isinstance(key, slice):
        if key == slice(None):
            return None, False, None
        return bk.asarray(list(range(*key.indices(n))), dtype=bk.xp.int64, device=device), False, None
    if not (isinstance(key, (list, tuple)) or is_array(key)):
        raise IndexError(f"{op!r}: unsupported {what[0]} index {key!r}: use an int, a slice, a 1-D integer array "
                         f"or a boolean mask")
    xp = bk.xp
    empty = isinstance(key, (list, tuple)) and not key  # [] has no dtype of its own
    index = bk.asarray(key, dtype=xp.int64 if empty else None, device=device)
    squeeze = index.ndim == 0
    if xp.isdtype(index.dtype, "bool") and index.ndim == 1:
        if index.shape[0] != n:
            raise IndexError(f"{op!r}: a boolean {what[0]} mask must have length {n}, got {index.shape[0]}")
        if bk.is_tracer(index):
            raise IndexError(f"{op!r}: a traced boolean mask has no static size (under jax.jit); "
                             f"pass integer {what[0]} indices")
        return xp.nonzero(index)[0], False, None
    if index.ndim > 1 or not xp.isdtype(index.dtype, "integral"):
        raise IndexError(f"{op!r}: {what[0]} index arrays must be 1-D integer arrays or boolean masks, got shape "
                         f"{tuple(index.shape)} {index.dtype}")
    index = xp.reshape(index, (-1,))
    if xp.iinfo(index.dtype).max < 2 * n:  # room for index + n
        index = bk.astype(index, xp.int64)
    in_range = (index >= -n) & (index < n)
    index = xp.where(index < 0, index + n, index)
    if bk.is_tracer(index):
        return xp.where(in_range, index, 0), squeeze, in_range
    if index.shape[0] and not bk.to_host_bool(xp.all(in_range)):
        raise IndexError(f"{op!r}: {what[0]} indices out of bounds for {n} {what[1]} (valid: {-n} to {n - 1})")
    return index, squeeze, None


class _OutOfRange(LinearOperator):
    """A block picked with traced indices, NaN in the rows and columns that indices out of range
    picked (the answer of a failed check under ``jax.jit``): products behave as with that dense
    matrix, so ``A @ x`` is NaN in those rows and everywhere once such a column is used."""

    def __init__(self, A, rows_ok, cols_ok):
        self.A, self.rows_ok, self.cols_ok = A, rows_ok, cols_ok
        super().__init__(A.dtype, A.shape, backend=A.bk, device=A.device)

    def _nan_rows(self, Y, ok):
        return Y if ok is None else self.bk.xp.where(ok[:, None], Y, float("nan"))

    def _nan_unless_all(self, Y, ok):
        return Y if ok is None else self.bk.xp.where(self.bk.xp.all(ok), Y, float("nan"))

    def _matmat(self, X):
        return self._nan_rows(self._nan_unless_all(self.A._matmat(X), self.cols_ok), self.rows_ok)

    def _rmatmat(self, X):
        return self._nan_rows(self._nan_unless_all(self.A._rmatmat(X), self.rows_ok).mT, self.cols_ok).mT

    def to_dense(self):
        return self._nan_rows(self._nan_rows(self.A.to_dense(), self.rows_ok).mT, self.cols_ok).mT


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


def _protocol_call(op, x, adjoint: bool, block: bool):
    """``op @ x`` (``op.H @ x`` with ``adjoint``) for SciPy's protocol methods: a NumPy ``x`` for an
    operator of another backend is copied to its device once and the result back to the host."""
    name = ("rmatmat" if adjoint else "matmat") if block else ("rmatvec" if adjoint else "matvec")
    size = op.shape[0] if adjoint else op.shape[1]
    shape = tuple(getattr(x, "shape", ()))
    valid = shape[:1] == (size,) and (len(shape) == 2 if block else shape[1:] in ((), (1,)))
    if not valid:
        expected = f"({size}, k)" if block else f"({size},) or ({size}, 1)"
        raise ValueError(f"{op!r}.{name}: x has shape {shape}, expected {expected}")
    bk = op.bk
    host = isinstance(x, np.ndarray) and bk is not _numpy_backend()
    X = bk.asarray(x, device=op.device) if host else x
    if adjoint:  # Aᴴ X = conj(conj(X)ᵀ A)ᵀ: one product from the left
        conj = bk.xp.conj if bk.is_complex(op.dtype) or bk.is_complex(X.dtype) else (lambda Z: Z)
        Y = conj(conj(X).mT @ op).mT if X.ndim == 2 else conj(conj(X) @ op)
    else:
        Y = op @ X
    return bk.to_host(Y) if host else Y


def _is_matrix(x) -> bool:
    """Whether ``x`` is a matrix that ``lazify`` makes an operator of and is no dense array: a sparse
    matrix (SciPy, torch, JAX) or a SciPy ``LinearOperator``."""
    return backend_of_sparse(x) is not None or isinstance(x, scipy.sparse.linalg.LinearOperator)


def _as_operator(other, op, symbol):
    if isinstance(other, LinearOperator):
        return other
    if (is_array(other) and getattr(other, "ndim", 0) == 2) or _is_matrix(other):
        return dispatch.function("lazify")(other)
    raise TypeError(f"{op!r} {symbol} {type(other).__name__}: expected a LinearOperator or a 2-D array; "
                    f"to add a multiple of the identity write A + c * lo.I_like(A)")


def _as_scalar(c, op, symbol):
    if isinstance(c, numbers.Number) or (is_array(c) and getattr(c, "ndim", None) == 0):
        return c
    raise TypeError(f"{op!r} {symbol} {type(c).__name__}: expected a scalar (a number or a 0-d array); "
                    f"use @ for matrix products")


_pytree.register_root(LinearOperator)
