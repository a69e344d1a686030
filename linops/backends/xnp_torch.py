"""CoLA's ``xnp`` namespace for PyTorch: ``A.xnp`` of a torch operator (CoLA compatibility).

CoLA's function names and signatures (``xnp.array(x, dtype, device)``, ``xnp.randn(*shape, dtype,
device, key)``, ``xnp.vmap``, ``xnp.grad``, ...) over torch. ``grad`` and ``vmap`` are
``torch.func``'s, taking and returning linops operators as well as tensors (an operator travels as
its tensors, as in ``A.flatten()``). ``jit`` returns the function itself, as in CoLA.
Keyed random draws use a ``torch.Generator`` of their own (CoLA's numbers on the CPU, without
touching torch's global random state).

Example:
    >>> import torch, linops as lo
    >>> xnp = lo.Diagonal(torch.ones(3)).xnp
    >>> g = xnp.grad(lambda D: D.to_dense()[1, 1])(lo.Diagonal(torch.arange(3.0)))
    >>> g.diag.tolist()
    [0.0, 1.0, 0.0]
"""

from __future__ import annotations

import torch

from linops._pytree import flatten_arrays

# for_loop, while_loop, while_loop_no_jit: CoLA's eager loops, the same on torch as on NumPy
from linops.backends.xnp_numpy import for_loop as for_loop
from linops.backends.xnp_numpy import sha_hash
from linops.backends.xnp_numpy import while_loop as while_loop
from linops.backends.xnp_numpy import while_loop_no_jit as while_loop_no_jit

float32, float64, complex64, complex128 = torch.float32, torch.float64, torch.complex64, torch.complex128
int32, int64, long = torch.int32, torch.int64, torch.int64
ndarray = torch.Tensor
Parameter = torch.nn.Parameter

abs, all, any, allclose, argmax = torch.abs, torch.all, torch.any, torch.allclose, torch.argmax  # noqa: A001 - CoLA's names
arange, ones_like, zeros_like, copy, conj = torch.arange, torch.ones_like, torch.zeros_like, torch.clone, torch.conj
cos, sin, exp, log, sqrt, sign = torch.cos, torch.sin, torch.exp, torch.log, torch.sqrt, torch.sign
maximum, mean, prod, roll = torch.maximum, torch.mean, torch.prod, torch.roll
moveaxis, kron = torch.moveaxis, torch.kron
isreal, iscomplexobj, nan_to_num, reshape = torch.isreal, torch.is_complex, torch.nan_to_num, torch.reshape
promote_types, finfo, block_diag, logdet = torch.promote_types, torch.finfo, torch.block_diag, torch.logdet
inv, pinv, eigh, eig, solve, cholesky, slogdet = (torch.linalg.inv, torch.linalg.pinv, torch.linalg.eigh,
                                                  torch.linalg.eig, torch.linalg.solve, torch.linalg.cholesky,
                                                  torch.linalg.slogdet)
jacrev, is_array = torch.func.jacrev, torch.is_tensor


def where(condition, x, y):
    """``x`` where ``condition`` holds, else ``y``."""
    return torch.where(condition, x, y)


def argsort(array, axis=-1):
    """The indices that sort ``array`` ascending along ``axis``."""
    return torch.argsort(array, dim=axis)


def norm(array, axis=None, keepdims=False, ord=None):  # noqa: A002 - CoLA's signature
    """The vector or matrix norm along ``axis`` (all entries when None)."""
    return torch.linalg.norm(array, ord=ord, dim=axis, keepdim=keepdims)


def sum(array, axis=None, keepdims=False):  # noqa: A001 - CoLA's name
    """The sum of the entries along ``axis`` (all when None, as NumPy and JAX)."""
    return torch.sum(array) if axis is None else torch.sum(array, dim=axis, keepdim=keepdims)


def max(array, axis=None, keepdims=False):  # noqa: A001 - CoLA's name
    """The largest entry along ``axis`` (all when None)."""
    return torch.amax(array, dim=() if axis is None else axis, keepdim=keepdims)


def min(array, axis=None, keepdims=False):  # noqa: A001 - CoLA's name
    """The smallest entry along ``axis`` (all when None)."""
    return torch.amin(array, dim=() if axis is None else axis, keepdim=keepdims)


def sort(array):
    """The entries sorted ascending along the last axis."""
    return torch.sort(array).values


def stack(tensors, axis=0):
    """The tensors stacked along a new ``axis``."""
    return torch.stack(tuple(tensors), dim=axis)


def concat(arrays, axis=0):
    """The tensors joined along ``axis``."""
    return torch.cat(tuple(arrays), dim=axis)


def permute(array, axes):
    """The tensor with its axes permuted."""
    return torch.permute(array, dims=axes)


def expand(array, axis):
    """The tensor with a new axis of length 1 at ``axis``."""
    return array.unsqueeze(axis)


def clip(array, a_min=None, a_max=None):
    """The entries clipped to [a_min, a_max]."""
    return torch.clip(array, min=a_min, max=a_max)


def diag(v, diagonal=0):
    """The diagonal matrix of the vector ``v``, or the diagonal of the matrix ``v``."""
    return torch.diag(v, diagonal=diagonal)


def tensordot(a, b, axes=2):
    """The tensor contraction of ``a`` and ``b`` over ``axes``."""
    return torch.tensordot(a, b, dims=axes)


def fft(x, n=None, axis=-1, norm=None):
    """The discrete Fourier transform along ``axis``."""
    return torch.fft.fft(x, n=n, dim=axis, norm=norm)


def ifft(x, n=None, axis=-1, norm=None):
    """The inverse discrete Fourier transform along ``axis``."""
    return torch.fft.ifft(x, n=n, dim=axis, norm=norm)


def softmax(x, axis=-1):
    """exp(x) normalised to sum 1 along ``axis``."""
    return torch.softmax(x, dim=axis)


def log_softmax(x, axis=-1):
    """log(softmax(x)) along ``axis``, computed stably."""
    return torch.log_softmax(x, dim=axis)


# --- dense linear algebra with CoLA's conventions ----------------------------------------------------
def svd(A, full_matrices=False):
    """``(U, S, V)`` with ``A = U diag(S) Vᴴ`` (CoLA returns V, not Vᴴ)."""
    U, S, Vh = torch.linalg.svd(A, full_matrices=full_matrices)
    return U, S, Vh.mH


def lu(a):
    """``(p, L, U)`` with ``a[p] = L @ U``, ``p`` an index tensor."""
    packed, pivots = torch.linalg.lu_factor(a)
    P, L, U = torch.lu_unpack(packed, pivots)
    return torch.argmax(P.mT.abs(), dim=-1), L, U


def lu_solve(a, b):
    """The solution of a x = b."""
    return torch.linalg.solve(a, b)


def qr(matrix, full_matrices=False):
    """``(Q, R)``: the reduced QR factorization (complete with ``full_matrices``)."""
    return torch.linalg.qr(matrix, mode="complete" if full_matrices else "reduced")


def solvetri(matrix, rhs, lower=True):
    """The solution of a triangular system."""
    if rhs.ndim == 1:
        return torch.linalg.solve_triangular(matrix, rhs[:, None], upper=not lower)[:, 0]
    return torch.linalg.solve_triangular(matrix, rhs, upper=not lower)


def lstsq(A, b):
    """The least-squares solution of A x ≈ b."""
    return torch.linalg.lstsq(A, b).solution


def sparse_csr(row_pointers, col_indices, data, shape):
    """The torch sparse CSR tensor of these arrays."""
    return torch.sparse_csr_tensor(row_pointers, col_indices, data, size=shape)


# --- creation, conversion and devices ---------------------------------------------------------------
def array(arr, dtype=None, device=None):
    """A new tensor of ``arr``'s values on ``device``; tensors, and lists of them, keep their autograd
    history (``xnp.array([x[0] ** 2, x[1]], dtype)`` inside a differentiated function)."""
    if isinstance(arr, torch.Tensor):
        return arr.to(device=device, dtype=dtype, copy=True)
    if isinstance(arr, (list, tuple)) and [a for a in arr if isinstance(a, torch.Tensor)]:
        return torch.stack([array(a, dtype, device) for a in arr])
    return torch.tensor(arr, dtype=dtype, device=device)


def zeros(shape, dtype=None, device=None):
    """A tensor of zeros."""
    return torch.zeros(shape, dtype=dtype, device=device)


def ones(shape, dtype=None, device=None):
    """A tensor of ones."""
    return torch.ones(shape, dtype=dtype, device=device)


def eye(n, m=None, dtype=None, device=None):
    """The n×m identity matrix."""
    return torch.eye(n, n if m is None else m, dtype=dtype, device=device)


def canonical(loc, shape, dtype, device=None):
    """The tensor of ``shape`` that is 1 at ``loc`` and 0 elsewhere."""
    vec = torch.zeros(shape, dtype=dtype, device=device)
    vec[loc] = 1
    return vec


def cast(array, dtype):
    """The tensor converted to ``dtype``."""
    return array.to(dtype)


def move_to(arr, device, dtype):
    """The tensor on ``device`` with ``dtype`` (None keeps either)."""
    return arr.to(device=device, dtype=dtype)


def update_array(array, update, *slices):
    """``array`` with ``array[slices] = update`` (in place, as torch does)."""
    array[slices] = update
    return array


def to_np(array):
    """The tensor as a NumPy array on the host (detached)."""
    return array.detach().cpu().numpy()


def stop_gradients(x):
    """``x`` detached from autograd."""
    return x.detach()


def device(device_name):
    """The torch device called ``device_name`` ("cpu", "cuda", "cuda:1"; "gpu" means "cuda")."""
    return torch.device("cuda" + str(device_name)[3:] if str(device_name).startswith("gpu") else device_name)


def get_array_device(array):
    """The device ``array`` lives on."""
    return array.device


get_device = get_array_device


def get_default_device():
    """The device torch puts new tensors on."""
    return torch.get_default_device()


def is_cuda_available():
    """Whether torch sees a CUDA device."""
    return torch.cuda.is_available()


# --- randomness -------------------------------------------------------------------------------------
def PRNGKey(x):
    """The random key for the seed ``x`` (an int, as in CoLA)."""
    return sha_hash(x)


def next_key(key):
    """A new key derived from ``key``."""
    return sha_hash(key)


def randn(*shape, dtype=None, device=None, key=None):
    """Standard normal samples of ``shape`` drawn from ``key`` (``PRNGKey(0)`` when None)."""
    device = torch.get_default_device() if device is None else torch.device(device)
    generator = torch.Generator(device).manual_seed(PRNGKey(0) if key is None else key)
    return torch.randn(*shape, dtype=dtype, device=device, generator=generator)


# --- control flow and transformations ---------------------------------------------------------------
def jit(fn, static_argnums=None):
    """``fn`` itself (as CoLA's torch ``jit``)."""
    return fn


def _is_tensor(x) -> bool:
    return isinstance(x, torch.Tensor)


def _differentiable(x) -> bool:
    return x.is_floating_point() or x.is_complex()


def grad(fun):
    """The gradient of the scalar ``fun`` with respect to its first argument: a tensor, or an operator
    (the gradient is the operator of the same structure holding the gradients of its tensors;
    integer tensors such as indices are kept as they are).

    Example:
        >>> grad(lambda x: (x ** 2).sum())(torch.ones(2)).tolist()
        [2.0, 2.0]
    """
    def gradient(x, *args, **kwargs):
        leaves, rebuild = flatten_arrays(x, _is_tensor)
        wrt = [i for i, leaf in enumerate(leaves) if _differentiable(leaf)]

        def of_leaves(*chosen):
            full = list(leaves)
            for i, leaf in zip(wrt, chosen, strict=True):
                full[i] = leaf
            return fun(rebuild(full), *args, **kwargs)

        grads = torch.func.grad(of_leaves, argnums=tuple(range(len(wrt))))(*(leaves[i] for i in wrt))
        full = list(leaves)
        for i, g in zip(wrt, grads, strict=True):
            full[i] = g
        return rebuild(full)

    return gradient


def vmap(fun, in_axes=0, out_axes=0):
    """``fun`` mapped over axis ``in_axes`` of its arguments (``torch.func.vmap``); arguments and
    results may be operators, whose tensors are mapped.

    Example:
        >>> import linops as lo
        >>> ops = vmap(lo.Diagonal)(torch.ones(4, 3))
        >>> vmap(lambda D, x: D @ x)(ops, torch.ones(4, 3)).shape
        torch.Size([4, 3])
    """
    def mapped(*args):
        axes = tuple(in_axes) if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        flat, rebuilds, dims = [], [], []
        for arg, axis in zip(args, axes, strict=True):
            leaves, rebuild = flatten_arrays(arg, _is_tensor)
            flat += leaves
            rebuilds.append((rebuild, len(leaves)))
            dims += [axis] * len(leaves)
        out_rebuild = []

        def of_leaves(*leaves):
            rebuilt, start = [], 0
            for rebuild, count in rebuilds:
                rebuilt.append(rebuild(leaves[start:start + count]))
                start += count
            out_leaves, rebuild = flatten_arrays(fun(*rebuilt), _is_tensor)
            out_rebuild.append(rebuild)
            return tuple(out_leaves)

        out = torch.func.vmap(of_leaves, in_dims=tuple(dims), out_dims=out_axes)(*flat)
        return out_rebuild[-1](out)

    return mapped


def jvp(fun, primals, tangents, has_aux=False):
    """``(fun(primals), J tangents)`` (``torch.func.jvp``)."""
    return torch.func.jvp(fun, primals, tangents, has_aux=has_aux)


def vjp(fun, *primals, has_aux=False):
    """``(fun(*primals), pullback)`` (``torch.func.vjp``)."""
    return torch.func.vjp(fun, *primals, has_aux=has_aux)


def _conj_all(values):
    return type(values)(torch.conj(v) for v in values) if isinstance(values, (list, tuple)) else torch.conj(values)


def jvp_derivs(fun, primals, tangents, create_graph=True):
    """The tangent output of ``fun`` at ``primals`` along ``tangents`` (CoLA's conjugation convention)."""
    return _conj_all(torch.func.jvp(fun, _conj_all(primals), _conj_all(tangents))[1])


def vjp_derivs(fun, primals, duals, create_graph=True):
    """The cotangents of ``primals`` for the output cotangent ``duals`` (CoLA's conjugation convention)."""
    _, pullback = torch.func.vjp(fun, *_conj_all(primals))
    return _conj_all(pullback(_conj_all(duals)))


def linear_transpose(fun, primals, duals):
    """The transpose of the linear ``fun`` applied to ``duals``."""
    return vjp_derivs(fun, (primals,), duals)[0]


# --- pytrees ------------------------------------------------------------------------------------------
def tree_flatten(value):
    """``(leaves, treedef)``: the tensors in ``value`` (operators, lists, tuples, dicts), depth first,
    and the function that rebuilds ``value`` from new leaves (:func:`tree_unflatten`)."""
    return flatten_arrays(value, _is_tensor)


def tree_unflatten(treedef, value):
    """The value of structure ``treedef`` holding the tensors ``value``."""
    return treedef(value)


def is_leaf(value):
    """Whether ``value`` is a leaf of a pytree (a tensor, or a value that holds no tensor)."""
    if isinstance(value, (list, tuple, dict)):
        return False
    arrays, _ = flatten_arrays(value, _is_tensor)
    return not arrays or arrays[0] is value
