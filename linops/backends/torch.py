"""The PyTorch backend: tensors keep their device and dtype, and autograd flows through."""

from __future__ import annotations

import functools

import array_api_compat.torch as xp_torch
import torch

from linops.backends import spectral_torch
from linops.backends.base import (
    ABSENT,
    Backend,
    compute_plainly,
    inside_implicit,
    nan_if_not_finite,
    reaches,
    without_nesting,
)

_DTYPE_NAMES = {"float32": torch.float32, "float64": torch.float64, "complex64": torch.complex64,
                "complex128": torch.complex128, "float16": torch.float16, "bfloat16": torch.bfloat16}


# torch.linalg.LinAlgError ("failed to converge") and eig's "input tensor should not contain infs or NaNs"
_DECOMPOSITION_FAILURE = RuntimeError


def _batched_by_vmap(x) -> bool:
    """Whether ``x`` is, at some level of torch.func's wrappers (vmap inside grad, ...), a tensor
    batched by ``torch.func.vmap``."""
    functorch = torch._C._functorch
    while functorch.is_functorch_wrapped_tensor(x):
        if functorch.is_batchedtensor(x):
            return True
        x = functorch.get_unwrapped(x)
    return False


class TorchBackend(Backend):
    """torch.Tensor on any device."""

    name = "torch"

    @property
    def xp(self):
        return xp_torch

    def is_array_type(self, cls):
        return issubclass(cls, torch.Tensor)

    def is_tracer(self, x):
        # a meta tensor has a shape and no values to read; a tensor batched by torch.func.vmap has
        # one value per batch entry, which no host check can read (a JAX tracer, for torch)
        return getattr(x, "is_meta", False) is True or (isinstance(x, torch.Tensor) and _batched_by_vmap(x))

    def canonical_dtype(self, dtype):
        if isinstance(dtype, torch.dtype):
            return dtype
        name = getattr(dtype, "__name__", None) or str(dtype)
        if name in _DTYPE_NAMES:
            return _DTYPE_NAMES[name]
        if dtype is float:
            return torch.get_default_dtype()
        raise TypeError(f"cannot use dtype {dtype!r} with the torch backend; valid: {sorted(_DTYPE_NAMES)}")

    def result_type(self, *dtypes):
        out = dtypes[0]
        for d in dtypes[1:]:
            out = torch.promote_types(out, d)
        return out

    def is_complex(self, dtype):
        return dtype.is_complex

    def is_floating(self, dtype):
        return dtype.is_floating_point or dtype.is_complex

    def real_dtype(self, dtype):
        return dtype.to_real() if dtype.is_complex else dtype

    def device(self, x):
        return x.device

    def default_device(self):
        return torch.get_default_device()

    def user_device(self, device):
        try:
            return torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"not a torch device: {device!r} ({err}); valid: 'cpu', 'cuda', 'cuda:1', "
                             f"'mps', or a torch.device") from None

    def same_device(self, a, b) -> bool:
        if a is None or b is None:
            return True
        a, b = torch.device(a), torch.device(b)  # "cuda" is the current CUDA device, "cuda:0" one of them
        return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)

    def move(self, x, device=None, dtype=None):
        return x.to(device=device, dtype=dtype)

    def to_host(self, x):
        # a view with the conjugate or negative bit set has no NumPy counterpart: resolve it first
        return x.detach().cpu().resolve_conj().resolve_neg().numpy()

    def asarray(self, x, dtype=None, device=None):
        if device is None and isinstance(x, torch.Tensor):
            device = x.device  # a tensor stays where it is (torch.set_default_device would move it)
        return torch.as_tensor(x, dtype=dtype, device=device)

    def zeros(self, shape, dtype, device):
        return torch.zeros(shape, dtype=dtype, device=device)

    def ones(self, shape, dtype, device):
        return torch.ones(shape, dtype=dtype, device=device)

    def eye(self, n, dtype, device):
        return torch.eye(n, dtype=dtype, device=device)

    def arange(self, n, device):
        return torch.arange(n, device=device)

    def astype(self, x, dtype):
        return x if x.dtype == dtype else x.to(dtype)

    def array_version(self, x):
        return None if x.is_inference() else x._version  # in-place updates bump it; inference tensors have none

    def deepcopy_array(self, x, memo):
        if x.layout == torch.strided:
            return super().deepcopy_array(x, memo)
        return x.clone()  # torch has no deepcopy for sparse CSR tensors

    def set_rows(self, x, index, values):
        return x.index_put((index,), values)

    def add_rows(self, x, index, values):
        return x.index_add(0, index, values)

    def write_row(self, x, i, value):
        if torch.is_grad_enabled() and (x.requires_grad or value.requires_grad):
            return x.index_put((torch.as_tensor(i, device=x.device).reshape(1),), value.unsqueeze(0))
        x[i] = value
        return x

    def cholesky(self, M):
        L, info = torch.linalg.cholesky_ex(_floating(M))
        return L, info != 0

    def solve_triangular(self, T, B, lower, unit_diagonal=False):
        T, B = _promoted(T, B)
        return torch.linalg.solve_triangular(T, B, upper=not lower, unitriangular=unit_diagonal)

    def lu(self, M):
        P, L, U = torch.linalg.lu(_floating(M))
        # M = P L U, so M[perm] = L U with perm[i] the row of P's column i that holds the one.
        return torch.argmax(P.abs(), dim=0), L, U

    def solve(self, M, B):
        X, info = torch.linalg.solve_ex(*_promoted(M, B))
        return X, info != 0

    @nan_if_not_finite(_DECOMPOSITION_FAILURE)
    def eigh(self, M):
        return spectral_torch.eigh(_floating(M))

    @nan_if_not_finite(_DECOMPOSITION_FAILURE)
    def eigvalsh(self, M):
        return spectral_torch.eigvalsh(_floating(M))

    @nan_if_not_finite(_DECOMPOSITION_FAILURE)
    def eigh_function(self, M, f):
        return spectral_torch.eigh_function(_floating(M), f)

    def kronecker_function(self, Ms, f, add=False):
        return spectral_torch.kronecker_function(Ms, f, add)

    def kronecker_function_matmat(self, Ms, ws, Vs, fv, fp, B, add=False):
        return spectral_torch.kronecker_function_matmat(Ms, ws, Vs, fv, fp, B, add)

    @nan_if_not_finite(_DECOMPOSITION_FAILURE)
    def eig(self, M):
        return torch.linalg.eig(_floating(M))

    @nan_if_not_finite(_DECOMPOSITION_FAILURE)
    def svd(self, M):
        return torch.linalg.svd(_floating(M), full_matrices=False)

    def slogdet(self, M):
        return torch.linalg.slogdet(_floating(M))

    def pinv(self, M):
        return torch.linalg.pinv(_floating(M))

    def expm(self, M):
        return torch.linalg.matrix_exp(_floating(M))

    def transpose_matmat(self, matmat, X, n):
        zeros = torch.zeros(n, X.shape[0], dtype=X.dtype, device=X.device)
        _, vjp = torch.func.vjp(matmat, zeros)  # vjp(V) = Aᴴ V
        return vjp(X.mT.conj())[0].conj().mT.resolve_conj()

    def fft(self, x, axis=0, norm="backward"):
        return torch.fft.fft(x, dim=axis, norm=norm)

    def ifft(self, x, axis=0, norm="backward"):
        return torch.fft.ifft(x, dim=axis, norm=norm)

    def argsmallest(self, x, k):
        # a stable sort: torch.topk breaks ties arbitrarily
        return torch.argsort(x, stable=True)[:k]


    def while_loop(self, cond, body, state, check_every=1):
        # cond is read on the host once per ``check_every`` steps: one device sync per block
        while bool(cond(state)):
            for _ in range(check_every):
                state = body(state)
        return state

    def random_normal(self, key, shape, dtype, device):
        device = _drawing_device(device)
        generator = key if isinstance(key, torch.Generator) else _seeded(0 if key is None else int(key), device)
        return torch.randn(shape, dtype=dtype, device=device, generator=generator)

    def available_memory(self, device):
        device = torch.device(device) if device is not None else torch.get_default_device()
        if device.type == "cuda":
            return torch.cuda.mem_get_info(device)[0]
        return super().available_memory(device)

    def scaled_normals(self, source, shapes, scales, dtype, device):
        device, generator = _drawing_device(device), source
        if source is not None and not isinstance(source, torch.Generator):
            generator = _seeded(int(source), device)
        return [torch.randn(shape, generator=generator, dtype=dtype, device=device) * scale
                for shape, scale in zip(shapes, scales, strict=True)]

    # --- automatic differentiation: torch.func ----------------------------------------------------------
    autodiff = True

    def eval_shape(self, f, *args):
        with torch.no_grad():
            return f(*args)

    def jvp(self, f, x, v):
        return torch.func.jvp(f, (x,), (v,))[1]

    def vjp(self, f, x):
        _, pullback = torch.func.vjp(f, x)
        return lambda u: pullback(u)[0]

    def grad(self, f):
        return torch.func.grad(f)

    def may_differentiate(self, A):
        return torch.is_grad_enabled() and _may_need_grad(A)

    def implicit(self, compute, pullback, A, *arrays, z_in_pullback=False, fixed=ABSENT, plain=None):
        # The value is computed without recording; the graph is one product u = A @ Z (to every
        # tensor A's products touch, closures included) and the arrays, joined by _Implicit.
        if inside_implicit() or not torch.is_grad_enabled():
            return compute_plainly(compute, plain, A, arrays, fixed)
        if fixed is not ABSENT:
            compute, pullback = functools.partial(compute, fixed=fixed), functools.partial(pullback, fixed=fixed)
        if z_in_pullback:
            return compute(A, *arrays)[0]
        operator_grad = _may_need_grad(A)
        if not operator_grad and not any(x.requires_grad for x in arrays):
            return compute_plainly(compute, plain, A, arrays, ABSENT)
        compute, pullback = without_nesting(compute), without_nesting(pullback)
        with torch.no_grad():
            value, Z, saved = compute(A, *arrays)
        u = A @ Z if Z is not None and operator_grad else None
        if not (any(x.requires_grad for x in arrays) or (u is not None and u.requires_grad)):
            return value
        single = not isinstance(value, tuple)
        out = _Implicit.apply(pullback, A, saved, single, value, u, *arrays)
        return out[0] if single else out

    def vmap(self, fn, in_axes=0, out_axes=0):
        return torch.func.vmap(fn, in_dims=in_axes, out_dims=out_axes)

    @functools.cached_property
    def banded(self):
        from linops.backends.banded_torch import TorchBandedSolver

        return TorchBandedSolver(self)

    @functools.cached_property
    def sparse(self):
        from linops.backends.sparse_torch import TorchSparse

        return TorchSparse(self)

    def column_dots(self, X, Y):
        if X.shape == Y.shape == (X.shape[0], 1) and X.dtype == Y.dtype:  # one column: a 1-D dot, twice as fast
            return torch.vdot(X[:, 0], Y[:, 0]).real.reshape(1)
        return super().column_dots(X, Y)

    def column_norms(self, X):
        return torch.linalg.vector_norm(X, dim=0)


BACKEND = TorchBackend()


def _drawing_device(device) -> torch.device:
    """The device random draws go to: ``device``, or torch's default device where None (where
    ``torch.randn`` puts them, so the generator must live there too)."""
    return torch.get_default_device() if device is None else torch.device(device)


def _seeded(seed: int, device: torch.device):
    """A generator on ``device`` seeded with ``seed``; None on the meta device, which has none (its
    tensors hold no values)."""
    return None if device.type == "meta" else torch.Generator(device=device).manual_seed(seed)


def _floating(M):
    """M with an integer (or boolean) dtype as the default float, as NumPy's and JAX's linear
    algebra promote it; torch's refuses it."""
    if M.dtype.is_floating_point or M.dtype.is_complex:
        return M
    return M.to(torch.get_default_dtype())


def _promoted(M, B):
    """M and B as floats of their common dtype: torch's solvers do not promote (NumPy's and JAX's do)."""
    M, B = _floating(M), _floating(B)
    if M.dtype == B.dtype:
        return M, B
    dtype = torch.promote_types(M.dtype, B.dtype)
    return M.to(dtype), B.to(dtype)


def _may_need_grad(A) -> bool:
    """Whether A's products may record a gradient: a tensor it holds or its functions close over
    requires one."""
    return reaches(A, lambda v: isinstance(v, torch.Tensor) and v.requires_grad)


class _Implicit(torch.autograd.Function):
    """The value of ``Backend.implicit``; its backward is the pullback (``None`` where no gradient)."""

    @staticmethod
    def forward(pullback, A, saved, single, value, u, *arrays):
        return tuple(v.clone() for v in ((value,) if single else value))

    @staticmethod
    def setup_context(ctx, inputs, output):  # separate from forward, as torch.func.grad requires
        pullback, A, saved, _, _, u, *_ = inputs
        ctx.pullback, ctx.A, ctx.saved, ctx.has_u = pullback, A, saved, u is not None
        ctx.mark_non_differentiable(*[v for v in output if not (v.is_floating_point() or v.is_complex())])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *cts):
        cts = cts[0] if len(cts) == 1 else cts
        Y, array_cts = ctx.pullback(ctx.A, ctx.saved, cts)
        return (None, None, None, None, None, Y if ctx.has_u else None, *array_cts)
