"""CoLA's ``xnp`` namespace for JAX: ``A.xnp`` of a JAX operator (CoLA compatibility).

CoLA's function names and signatures (``xnp.array(x, dtype, device)``, ``xnp.randn(*shape, dtype,
device, key)``, ``xnp.vmap``, ``xnp.grad``, ``xnp.jit``, ...) over ``jax.numpy``. Every linops
operator is a JAX pytree, so ``grad``, ``vmap``, ``jit`` and ``tree_flatten`` take operators as
arguments and results, as in CoLA. Arrays made with ``device=None`` are left where JAX puts them.

Example:
    >>> import jax.numpy as jnp, linops as lo
    >>> xnp = lo.Diagonal(jnp.ones(3)).xnp
    >>> g = xnp.grad(lambda D: D.to_dense()[1, 1])(lo.Diagonal(jnp.arange(3.0)))
    >>> g.diag.tolist()
    [0.0, 1.0, 0.0]
"""

from __future__ import annotations

import builtins

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import jax.scipy.signal
from jax.experimental import sparse as jsparse

float32, float64, complex64, complex128 = jnp.float32, jnp.float64, jnp.complex64, jnp.complex128
int32, int64, long = jnp.int32, jnp.int64, jnp.int64
ndarray = jax.Array

abs, all, any, allclose, argmax, argsort = jnp.abs, jnp.all, jnp.any, jnp.allclose, jnp.argmax, jnp.argsort  # noqa: A001 - CoLA's names
arange, ones_like, zeros_like, copy = jnp.arange, jnp.ones_like, jnp.zeros_like, jnp.copy
cos, sin, exp, log, sqrt, sign = jnp.cos, jnp.sin, jnp.exp, jnp.log, jnp.sqrt, jnp.sign
maximum, mean, prod, roll, where, moveaxis = jnp.maximum, jnp.mean, jnp.prod, jnp.roll, jnp.where, jnp.moveaxis
isreal, nan_to_num, reshape, kron = jnp.isreal, jnp.nan_to_num, jnp.reshape, jnp.kron
promote_types, finfo, tensordot = jnp.promote_types, jnp.finfo, jnp.tensordot
norm, inv, pinv, eigh, solve, slogdet = (jnp.linalg.norm, jnp.linalg.inv, jnp.linalg.pinv, jnp.linalg.eigh,
                                         jnp.linalg.solve, jnp.linalg.slogdet)
cholesky, block_diag = jnp.linalg.cholesky, jax.scipy.linalg.block_diag
softmax, log_softmax = jax.nn.softmax, jax.nn.log_softmax
jit, vmap, grad, vjp, jvp, jacrev = jax.jit, jax.vmap, jax.grad, jax.vjp, jax.jvp, jax.jacrev
stop_gradients, dynamic_slice = jax.lax.stop_gradient, jax.lax.dynamic_slice
PRNGKey = jax.random.PRNGKey


def iscomplexobj(x):
    """Whether ``x`` has a complex dtype."""
    return jnp.iscomplexobj(x)


def conj(array):
    """The complex conjugate (the array itself when real)."""
    return jnp.conj(array) if jnp.iscomplexobj(array) else array


def sum(array, axis=None, keepdims=False):  # noqa: A001 - CoLA's name
    """The sum of the entries along ``axis`` (all when None)."""
    return jnp.sum(array, axis=axis, keepdims=keepdims)


def max(array, axis=None, keepdims=False):  # noqa: A001 - CoLA's name
    """The largest entry along ``axis`` (all when None)."""
    return jnp.max(array, axis=axis, keepdims=keepdims)


def min(array, axis=None, keepdims=False):  # noqa: A001 - CoLA's name
    """The smallest entry along ``axis`` (all when None)."""
    return jnp.min(array, axis=axis, keepdims=keepdims)


def sort(array):
    """The entries sorted ascending along the last axis."""
    return jnp.sort(array)


def stack(arrays, axis=0):
    """The arrays stacked along a new ``axis``."""
    return jnp.stack(arrays, axis=axis)


def concat(arrays, axis=0):
    """The arrays joined along ``axis``."""
    return jnp.concatenate(arrays, axis=axis)


def permute(array, axes):
    """The array with its axes permuted."""
    return jnp.transpose(array, axes=axes)


def expand(array, axis):
    """The array with a new axis of length 1 at ``axis``."""
    return jnp.expand_dims(array, axis)


def clip(array, a_min=None, a_max=None):
    """The entries clipped to [a_min, a_max]."""
    return jnp.clip(array, a_min, a_max)


def diag(v, diagonal=0):
    """The diagonal matrix of the vector ``v``, or the diagonal of the matrix ``v``."""
    return jnp.diag(v, k=diagonal)


def fft(x, n=None, axis=-1, norm=None):
    """The discrete Fourier transform along ``axis``."""
    return jnp.fft.fft(x, n=n, axis=axis, norm=norm)


def ifft(x, n=None, axis=-1, norm=None):
    """The inverse discrete Fourier transform along ``axis``."""
    return jnp.fft.ifft(x, n=n, axis=axis, norm=norm)


# --- dense linear algebra with CoLA's conventions ----------------------------------------------------
def svd(A, full_matrices=False):
    """``(U, S, V)`` with ``A = U diag(S) Vᴴ`` (CoLA returns V, not Vᴴ)."""
    U, S, Vh = jnp.linalg.svd(A, full_matrices=full_matrices)
    return U, S, jnp.conj(jnp.swapaxes(Vh, -1, -2))


def eig(A):
    """``(w, V)``: eigenvalues and eigenvectors (complex; computed on the CPU, as JAX does)."""
    return jnp.linalg.eig(A)


def lu(a):
    """``(p, L, U)`` with ``a[p] = L @ U``, ``p`` an index array."""
    packed, _, p = jax.lax.linalg.lu(a)
    n = builtins.min(a.shape[-2:])
    L = jnp.tril(packed[..., :, :n], -1) + jnp.eye(a.shape[-2], n, dtype=a.dtype)
    return p, L, jnp.triu(packed[..., :n, :])


def lu_solve(a, b):
    """The solution of a x = b."""
    return jnp.linalg.solve(a, b)


def qr(a, full_matrices=False):
    """``(Q, R)``: the reduced QR factorization (complete with ``full_matrices``)."""
    return jnp.linalg.qr(a, mode="complete" if full_matrices else "reduced")


def solvetri(matrix, rhs, lower=True):
    """The solution of a triangular system."""
    return jax.scipy.linalg.solve_triangular(matrix, rhs, lower=lower)


def lstsq(A, b):
    """The least-squares solution of A x ≈ b."""
    return jnp.linalg.lstsq(A, b)[0]


def logdet(A):
    """log det A (complex where det A < 0)."""
    sign_, value = jnp.linalg.slogdet(A)
    return value + jnp.log(sign_) if jnp.iscomplexobj(A) else jnp.where(sign_ < 0, jnp.nan, value)


def convolve(in1, in2, mode="same"):
    """The 2-D convolution of ``in1`` with ``in2``, ``in1`` padded symmetrically (CoLA's)."""
    padded = jnp.pad(in1, ((in2.shape[0] // 2, (in2.shape[0] + 1) // 2 - 1),
                           (in2.shape[1] // 2, (in2.shape[1] + 1) // 2 - 1)), "symmetric")
    return jax.scipy.signal.convolve2d(padded, in2, mode="valid")


def sparse_csr(row_pointers, col_indices, data, shape):
    """The ``jax.experimental.sparse.BCSR`` matrix of these arrays."""
    return jsparse.BCSR((data, col_indices, row_pointers), shape=shape)


# --- creation, conversion and devices ---------------------------------------------------------------
def _put(x, device):
    return x if device is None else jax.device_put(x, device)


def array(arr, dtype=None, device=None):
    """A new array of ``arr``'s values, on ``device`` when given."""
    return _put(jnp.array(arr, dtype=dtype), device)


def zeros(shape, dtype=None, device=None):
    """An array of zeros."""
    return _put(jnp.zeros(shape, dtype=dtype), device)


def ones(shape, dtype=None, device=None):
    """An array of ones."""
    return _put(jnp.ones(shape, dtype=dtype), device)


def eye(n, m=None, dtype=None, device=None):
    """The n×m identity matrix."""
    return _put(jnp.eye(n, m, dtype=dtype), device)


def canonical(loc, shape, dtype, device=None):
    """The array of ``shape`` that is 1 at ``loc`` and 0 elsewhere."""
    return zeros(shape, dtype, device).at[loc].set(1)


def cast(array, dtype):
    """The array converted to ``dtype``."""
    return array.astype(dtype)


def move_to(arr, device, dtype):
    """The array on ``device`` with ``dtype`` (None keeps either)."""
    if dtype is not None:
        arr = arr.astype(dtype)
    return _put(arr, device)


def update_array(array, update, *slices):
    """A copy of ``array`` with ``[slices]`` set to ``update`` (JAX arrays are immutable)."""
    return array.at[slices].set(update)


def to_np(array):
    """The array as a NumPy array on the host."""
    return jax.device_get(array)


def is_array(array):
    """Whether ``array`` is a JAX array (or a tracer)."""
    return isinstance(array, jax.Array)


def Parameter(array):
    """The array itself (JAX's parameters are plain arrays)."""
    return array


def device(device_name):
    """The JAX device called ``device_name`` ("cpu", "gpu", "cuda:1", ...)."""
    platform, _, index = str(device_name).partition(":")
    return jax.devices({"cuda": "gpu"}.get(platform, platform))[int(index or 0)]


def get_array_device(array):
    """The device ``array`` lives on."""
    devices = array.devices()
    if len(devices) != 1:
        raise ValueError(f"the array is sharded over {len(devices)} devices")
    return next(iter(devices))


def get_default_device():
    """The device JAX puts new arrays on."""
    return jax.config.jax_default_device or jax.devices()[0]


def get_device(array):
    """The device of ``array`` (the default device for a tracer)."""
    return get_default_device() if isinstance(array, jax.core.Tracer) else get_array_device(array)


def is_cuda_available():
    """Whether JAX sees a GPU."""
    return [d for d in jax.devices() if d.platform == "gpu"] != []


# --- randomness -------------------------------------------------------------------------------------
def next_key(key):
    """A new key derived from ``key``."""
    return jax.random.split(key)[0]


def randn(*shape, dtype=None, device=None, key=None):
    """Standard normal samples of ``shape`` drawn from ``key`` (``PRNGKey(0)`` when None)."""
    return _put(jax.random.normal(PRNGKey(0) if key is None else key, shape,
                                  dtype=float if dtype is None else dtype), device)


# --- control flow and transformations ---------------------------------------------------------------
def for_loop(lower, upper, body_fun, init_val):
    """``state = body_fun(i, state)`` for i in range(lower, upper) (``jax.lax.fori_loop``)."""
    return jax.lax.fori_loop(lower, upper, body_fun, init_val)


def while_loop(cond_fun, body_fun, init_val):
    """``state = body_fun(state)`` while ``cond_fun(state)`` (``jax.lax.while_loop``)."""
    return jax.lax.while_loop(cond_fun, body_fun, init_val)


def while_loop_no_jit(cond_fun, body_fun, init_val):
    """``state = body_fun(state)`` while ``cond_fun(state)``, as a Python loop."""
    state = init_val
    while cond_fun(state):
        state = body_fun(state)
    return state


def jvp_derivs(fun, primals, tangents, create_graph=True):
    """The tangent output of ``fun`` at ``primals`` along ``tangents``."""
    return jax.jvp(fun, primals, tangents)[1]


def vjp_derivs(fun, primals, duals, create_graph=True):
    """The cotangents of ``primals`` for the output cotangent ``duals``."""
    return jax.vjp(fun, *primals)[1](duals)


def linear_transpose(fun, primals, duals):
    """The transpose of the linear ``fun`` applied to ``duals``."""
    return jax.linear_transpose(fun, primals)(duals)[0]


# --- pytrees ------------------------------------------------------------------------------------------
def tree_flatten(value):
    """``(leaves, treedef)`` of a pytree (operators are pytree nodes)."""
    return jax.tree_util.tree_flatten(value)


def tree_unflatten(treedef, value):
    """The pytree of structure ``treedef`` holding the leaves ``value``."""
    return jax.tree_util.tree_unflatten(treedef, value)


def is_leaf(value):
    """Whether ``value`` is a leaf of a pytree."""
    return jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(value))

