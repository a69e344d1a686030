"""CoLA's ``xnp`` namespace for NumPy: ``A.xnp`` of a NumPy operator (CoLA compatibility).

CoLA code writes array code once for every framework through ``xnp = A.xnp``; this module has
CoLA's function names and signatures (``xnp.array(x, dtype, device)``, ``xnp.randn(*shape, dtype,
device, key)``, ``xnp.canonical(loc, shape, dtype, device)``, ...) over NumPy and SciPy. NumPy has no
automatic differentiation: ``grad``, ``vmap``, ``jvp`` and ``vjp`` raise
:class:`NumpyNotImplementedError`, as in CoLA. Devices are linops' ("cpu"). Random draws with a
``key`` come from a generator of their own (``np.random.RandomState(key)``: CoLA's numbers, without
touching NumPy's global state).

Example:
    >>> import numpy as np, linops as lo
    >>> xnp = lo.Diagonal(np.ones(3)).xnp
    >>> xnp.canonical(1, (3,), xnp.float64, None).tolist()
    [0.0, 1.0, 0.0]
    >>> xnp.randn(2, dtype=xnp.float32, device=None, key=xnp.PRNGKey(0)).dtype
    dtype('float32')
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import scipy.linalg
import scipy.sparse

from linops._pytree import flatten_arrays


class NumpyNotImplementedError(NotImplementedError):
    """What NumPy's ``xnp`` raises for an autodiff or tracing function (``grad``, ``vmap``, ...).

    Example:
        >>> try:
        ...     grad(np.sum)
        ... except NumpyNotImplementedError as err:
        ...     print(err)
        grad is not implemented for the numpy backend.
    """

    def __init__(self):
        super().__init__(f"{sys._getframe(1).f_code.co_name} is not implemented for the numpy backend.")


float32, float64, complex64, complex128 = np.float32, np.float64, np.complex64, np.complex128
int32, int64, long = np.int32, np.int64, np.int64
ndarray = np.ndarray

abs, all, any, allclose, argmax, argsort = np.abs, np.all, np.any, np.allclose, np.argmax, np.argsort  # noqa: A001 - CoLA's names
arange, ones_like, zeros_like, copy, conj = np.arange, np.ones_like, np.zeros_like, np.copy, np.conj
cos, sin, exp, log, sqrt, sign = np.cos, np.sin, np.exp, np.log, np.sqrt, np.sign
maximum, mean, prod, roll, where, moveaxis = np.maximum, np.mean, np.prod, np.roll, np.where, np.moveaxis
isreal, iscomplexobj, nan_to_num, reshape, kron = np.isreal, np.iscomplexobj, np.nan_to_num, np.reshape, np.kron
promote_types, finfo, tensordot = np.promote_types, np.finfo, np.tensordot
norm, inv, pinv, eigh, solve, cholesky, slogdet = (np.linalg.norm, np.linalg.inv, np.linalg.pinv, np.linalg.eigh,
                                                    np.linalg.solve, np.linalg.cholesky, np.linalg.slogdet)
block_diag = scipy.linalg.block_diag


def sum(array, axis=None, keepdims=False):  # noqa: A001 - CoLA's name
    """The sum of the entries along ``axis`` (all when None)."""
    return np.sum(array, axis=axis, keepdims=keepdims)


def max(array, axis=None, keepdims=False):  # noqa: A001 - CoLA's name
    """The largest entry along ``axis`` (all when None)."""
    return np.max(array, axis=axis, keepdims=keepdims)


def min(array, axis=None, keepdims=False):  # noqa: A001 - CoLA's name
    """The smallest entry along ``axis`` (all when None)."""
    return np.min(array, axis=axis, keepdims=keepdims)


def sort(array):
    """The entries sorted ascending along the last axis."""
    return np.sort(array)


def stack(arrays, axis=0):
    """The arrays stacked along a new ``axis``."""
    return np.stack(arrays, axis=axis)


def concat(arrays, axis=0):
    """The arrays joined along ``axis``."""
    return np.concatenate(arrays, axis=axis)


def permute(array, axes):
    """The array with its axes permuted."""
    return np.transpose(array, axes=axes)


def expand(array, axis):
    """The array with a new axis of length 1 at ``axis``."""
    return np.expand_dims(array, (axis,))


def clip(array, a_min=None, a_max=None):
    """The entries clipped to [a_min, a_max]."""
    return np.clip(array, a_min, a_max)


def diag(v, diagonal=0):
    """The diagonal matrix of the vector ``v``, or the diagonal of the matrix ``v``."""
    return np.diag(v, k=diagonal)


def fft(x, n=None, axis=-1, norm=None):
    """The discrete Fourier transform along ``axis``."""
    return np.fft.fft(x, n=n, axis=axis, norm=norm)


def ifft(x, n=None, axis=-1, norm=None):
    """The inverse discrete Fourier transform along ``axis``."""
    return np.fft.ifft(x, n=n, axis=axis, norm=norm)


def softmax(x, axis=-1):
    """exp(x) normalised to sum 1 along ``axis``."""
    z = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return z / np.sum(z, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    """log(softmax(x)) along ``axis``, computed stably."""
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


# --- dense linear algebra with CoLA's conventions ----------------------------------------------------
def svd(A, full_matrices=False):
    """``(U, S, V)`` with ``A = U diag(S) Vᴴ`` (CoLA returns V, not Vᴴ)."""
    U, S, Vh = np.linalg.svd(A, full_matrices=full_matrices)
    return U, S, np.conj(np.swapaxes(Vh, -1, -2))


def eig(array):
    """``(w, V)``: eigenvalues and eigenvectors, always complex (as CoLA returns them)."""
    w, V = np.linalg.eig(array)
    return w.astype(np.result_type(w.dtype, np.complex64)), V.astype(np.result_type(V.dtype, np.complex64))


def lu(a):
    """``(p, L, U)`` with ``a[p] = L @ U``, ``p`` an index array."""
    p, L, U = scipy.linalg.lu(a, p_indices=True)
    return p, L, U


def lu_solve(a, b):
    """The solution of a x = b."""
    return np.linalg.solve(a, b)


def qr(a, full_matrices=False):
    """``(Q, R)``: the reduced QR factorization (complete with ``full_matrices``)."""
    return np.linalg.qr(a, mode="complete" if full_matrices else "reduced")


def solvetri(matrix, rhs, lower=True):
    """The solution of a triangular system."""
    return scipy.linalg.solve_triangular(matrix, rhs, lower=lower)


def lstsq(A, b):
    """The least-squares solution of A x ≈ b."""
    return np.linalg.lstsq(A, b, rcond=None)[0]


def logdet(A):
    """log det A (complex where det A < 0)."""
    sign_, value = np.linalg.slogdet(A)
    return value + np.log(sign_) if np.iscomplexobj(A) else np.where(sign_ < 0, np.nan, value)


def convolve(in1, in2, mode="same"):
    """The 2-D convolution of ``in1`` with ``in2``, ``in1`` padded symmetrically (CoLA's)."""
    import scipy.signal  # seconds to import: only where a convolution is asked for

    padded = np.pad(in1, ((in2.shape[0] // 2, (in2.shape[0] + 1) // 2 - 1),
                          (in2.shape[1] // 2, (in2.shape[1] + 1) // 2 - 1)), "symmetric")
    return scipy.signal.convolve2d(padded, in2, mode="valid")


def sparse_csr(row_pointers, col_indices, data, shape):
    """The SciPy CSR matrix of these arrays."""
    return scipy.sparse.csr_array((data, col_indices, row_pointers), shape=shape)


# --- creation, conversion and devices ---------------------------------------------------------------
def array(arr, dtype=None, device=None):
    """A new array of ``arr``'s values (NumPy arrays live on the CPU)."""
    del device
    return np.array(arr, dtype=dtype)


def zeros(shape, dtype=None, device=None):
    """An array of zeros."""
    del device
    return np.zeros(shape, dtype=dtype)


def ones(shape, dtype=None, device=None):
    """An array of ones."""
    del device
    return np.ones(shape, dtype=dtype)


def eye(n, m=None, dtype=None, device=None):
    """The n×m identity matrix."""
    del device
    return np.eye(n, m, dtype=dtype)


def canonical(loc, shape, dtype, device=None):
    """The array of ``shape`` that is 1 at ``loc`` and 0 elsewhere."""
    vec = zeros(shape, dtype, device)
    vec[loc] = 1
    return vec


def cast(array, dtype):
    """The array converted to ``dtype``."""
    return array.astype(dtype)


def move_to(arr, device, dtype):
    """The array converted to ``dtype`` (None keeps it); NumPy arrays stay on the CPU."""
    if device not in (None, "cpu"):
        raise RuntimeError(f"NumPy arrays live on the CPU, not on {device!r}")
    return arr if dtype is None else arr.astype(dtype)


def update_array(array, update, *slices):
    """``array`` with ``array[slices] = update`` (in place, as NumPy does)."""
    array[slices] = update
    return array


def to_np(array):
    """The array as a NumPy array."""
    return np.asarray(array)


def is_array(array):
    """Whether ``array`` is a NumPy array."""
    return isinstance(array, np.ndarray)


def Parameter(array):
    """The array itself (NumPy has no trainable parameters)."""
    return array


def device(device_name):
    """The device called ``device_name``: NumPy arrays live on "cpu"."""
    if device_name not in (None, "cpu"):
        raise ValueError(f"NumPy arrays live on the CPU, not on {device_name!r}")
    return "cpu"


def get_device(array):
    """The device of ``array``: "cpu"."""
    return "cpu"


get_array_device = get_device


def get_default_device():
    """Where new arrays go: "cpu"."""
    return "cpu"


def is_cuda_available():
    """Whether NumPy computes on a GPU: never."""
    return False


# --- randomness -------------------------------------------------------------------------------------
def sha_hash(n):
    """A 32-bit seed derived from the integer ``n`` by SHA-256 (CoLA's key derivation)."""
    digest = hashlib.sha256(n.to_bytes((n.bit_length() + 7) // 8, "big")).digest()
    return int(int.from_bytes(digest, "big") % (2**32 - 1))


def PRNGKey(x):
    """The random key for the seed ``x`` (an int, as CoLA's NumPy and torch keys)."""
    return sha_hash(x)


def next_key(key):
    """A new key derived from ``key``."""
    return sha_hash(key)


def randn(*shape, dtype=None, device=None, key=None):
    """Standard normal samples of ``shape`` drawn from ``key`` (``PRNGKey(0)`` when None)."""
    del device
    rng = np.random.RandomState(PRNGKey(0) if key is None else key)
    return rng.randn(*shape).astype(dtype)


# --- control flow and transformations ---------------------------------------------------------------
def for_loop(lower, upper, body_fun, init_val):
    """``state = body_fun(i, state)`` for i in range(lower, upper)."""
    state = init_val
    for i in range(lower, upper):
        state = body_fun(i, state)
    return state


def while_loop(cond_fun, body_fun, init_val):
    """``state = body_fun(state)`` while ``cond_fun(state)``."""
    state = init_val
    while cond_fun(state):
        state = body_fun(state)
    return state


while_loop_no_jit = while_loop


def jit(fn, static_argnums=None):
    """``fn`` itself (NumPy compiles nothing)."""
    return fn


def stop_gradients(x):
    """``x`` itself (NumPy records no gradients)."""
    return x


def grad(fun):
    """Not available: NumPy has no automatic differentiation."""
    raise NumpyNotImplementedError()


def vmap(fun, in_axes=0, out_axes=0):
    """Not available: NumPy has no vectorising map."""
    raise NumpyNotImplementedError()


def jvp(fun, primals, tangents, has_aux=False):
    """Not available: NumPy has no automatic differentiation."""
    raise NumpyNotImplementedError()


def vjp(fun, *primals, has_aux=False):
    """Not available: NumPy has no automatic differentiation."""
    raise NumpyNotImplementedError()


def jvp_derivs(fun, primals, tangents, create_graph=True):
    """Not available: NumPy has no automatic differentiation."""
    raise NumpyNotImplementedError()


def vjp_derivs(fun, primals, duals, create_graph=True):
    """Not available: NumPy has no automatic differentiation."""
    raise NumpyNotImplementedError()


def linear_transpose(fun, primals, duals):
    """Not available: NumPy has no automatic differentiation."""
    raise NumpyNotImplementedError()


def dynamic_slice(operand, start_indices, slice_sizes):
    """Not available: a JAX-only operation."""
    raise NumpyNotImplementedError()


# --- pytrees ------------------------------------------------------------------------------------------
def _is_leaf_array(x) -> bool:
    return isinstance(x, np.ndarray)


def tree_flatten(value):
    """``(leaves, treedef)``: the NumPy arrays in ``value`` (operators, lists, tuples, dicts), depth
    first, and the function that rebuilds ``value`` from new leaves (:func:`tree_unflatten`)."""
    return flatten_arrays(value, _is_leaf_array)


def tree_unflatten(treedef, value):
    """The value of structure ``treedef`` holding the arrays ``value``."""
    return treedef(value)


def is_leaf(value):
    """Whether ``value`` is a leaf of a pytree (an array, or a value that holds no array)."""
    if isinstance(value, (list, tuple, dict)):
        return False
    arrays, _ = flatten_arrays(value, _is_leaf_array)
    return not arrays or arrays[0] is value
