"""The interface every backend implements: what the array-API namespace does not cover.

Array creation, elementwise maths and reductions come from ``backend.xp``, an array-API
namespace from ``array-api-compat``; the methods here add dense factorizations, indexed updates
and the few questions (is this a tracer? which device?) that differ between frameworks.
"""

from __future__ import annotations

import functools
import os


def host_available_memory() -> int:
    """Available host memory in bytes (MemAvailable on Linux; physical pages elsewhere)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


class Backend:
    """One array framework. Subclasses fill in the framework-specific methods.

    Example:
        >>> import numpy as np
        >>> from linops.backends import backend_of
        >>> bk = backend_of(np.eye(2))
        >>> bk.xp.sum(bk.eye(2, np.float64, None))
        np.float64(2.0)
    """

    name: str = ""

    @property
    def xp(self):
        """The array-API namespace of this framework."""
        raise NotImplementedError

    # --- types, dtypes and devices -----------------------------------------------------------
    def is_array_type(self, cls: type) -> bool:
        raise NotImplementedError

    def is_tracer(self, x) -> bool:
        """Whether ``x`` is abstract (a JAX tracer): its values cannot be read on the host."""
        return False

    def canonical_dtype(self, dtype):
        """The framework's dtype object for ``dtype`` (a type, a string or a dtype)."""
        raise NotImplementedError

    def result_type(self, *dtypes):
        return self.xp.result_type(*dtypes)

    def is_complex(self, dtype) -> bool:
        return self.xp.isdtype(dtype, "complex floating")

    def is_floating(self, dtype) -> bool:
        return self.xp.isdtype(dtype, ("real floating", "complex floating"))

    def real_dtype(self, dtype):
        """float32 for complex64, float64 for complex128, the dtype itself otherwise."""
        return self.xp.real(self.xp.zeros((), dtype=dtype)).dtype

    def device(self, x):
        raise NotImplementedError

    def default_device(self):
        raise NotImplementedError

    # --- creation and conversion ---------------------------------------------------------------
    def asarray(self, x, dtype=None, device=None):
        return self.xp.asarray(x, dtype=dtype, device=device)

    def zeros(self, shape, dtype, device):
        return self.xp.zeros(shape, dtype=dtype, device=device)

    def ones(self, shape, dtype, device):
        return self.xp.ones(shape, dtype=dtype, device=device)

    def eye(self, n, dtype, device):
        return self.xp.eye(n, dtype=dtype, device=device)

    def arange(self, n, device):
        return self.xp.arange(n, device=device)

    def astype(self, x, dtype):
        return x if x.dtype == dtype else self.xp.astype(x, dtype)

    def to_host_bool(self, x) -> bool:
        """Read a 0-d boolean array on the host (one synchronisation; never inside loops)."""
        return bool(x)

    # --- indexing --------------------------------------------------------------------------------
    def take_rows(self, x, index):
        """``x[index]`` along axis 0 for an integer index array."""
        return x[index]

    def set_rows(self, x, index, values):
        """A copy of ``x`` with rows ``index`` set to ``values`` (functional on every backend)."""
        raise NotImplementedError

    def write_row(self, x, i, value):
        """``x`` with row ``i`` set to ``value``, for loop state that nothing else holds: in place
        where the framework allows it (NumPy; torch without autograd), functional under JAX."""
        return self.set_rows(x, i, value)

    # --- dense linear algebra ----------------------------------------------------------------------
    def cholesky(self, M):
        """``(L, failed)``: the lower Cholesky factor and a 0-d boolean array, true where M is not PD."""
        raise NotImplementedError

    def solve_triangular(self, T, B, lower: bool, unit_diagonal: bool = False):
        raise NotImplementedError

    def lu(self, M):
        """``(perm, L, U)`` with ``M[perm] = L @ U`` (L unit lower triangular)."""
        raise NotImplementedError

    def solve(self, M, B):
        """``(X, failed)``: the solution of M X = B and a 0-d boolean array, true when M is singular."""
        raise NotImplementedError

    def solve_toeplitz(self, c, r, B):
        """The solution X of T X = B for the Toeplitz T with first column c and first row r by the
        framework's own Toeplitz solver (NumPy: ``scipy.linalg.solve_toeplitz``), or None where it
        has none (the caller then runs its own Levinson recursion). It trusts that T is positive
        definite: a breakdown of the recursion shows as non-finite entries of X (or as the
        framework's own error), which the caller must check."""
        return None

    def eigh(self, M):
        return self.xp.linalg.eigh(M)

    def eig(self, M):
        raise NotImplementedError

    def svd(self, M):
        return self.xp.linalg.svd(M, full_matrices=False)

    def slogdet(self, M):
        return self.xp.linalg.slogdet(M)

    def pinv(self, M):
        return self.xp.linalg.pinv(M)

    def expm(self, M):
        raise NotImplementedError

    def transpose_matmat(self, matmat, X, n: int):
        """``X @ A`` for the operator ``A`` known only by ``matmat`` (A has n columns)."""
        raise NotImplementedError

    def fft(self, x, axis=0, norm="backward"):
        return self.xp.fft.fft(x, axis=axis, norm=norm)

    def ifft(self, x, axis=0, norm="backward"):
        return self.xp.fft.ifft(x, axis=axis, norm=norm)

    def argsmallest(self, x, k: int):
        """The indices of the ``k`` smallest entries of the real 1-D array ``x``, ascending by value
        (a partial selection where the framework has one)."""
        return self.xp.argsort(x, stable=True)[:k]

    # --- loops, randomness and memory (for the iterative algorithms) ------------------------------
    def while_loop(self, cond, body, state, check_every: int = 1):
        """Run ``state = body(state)`` while ``cond(state)`` holds (a 0-d boolean array).

        ``body`` must leave a finished state unchanged (the iterative kernels mask their updates),
        so that backends may test ``cond`` only every ``check_every`` steps: torch does, to keep
        device synchronisations out of the loop; JAX runs ``lax.while_loop`` on the device.
        """
        while bool(cond(state)):
            state = body(state)
        return state

    def fori_loop(self, n: int, body, state):
        """``state = body(i, state)`` for ``i`` in ``range(n)`` (``lax.fori_loop`` under JAX)."""
        for i in range(n):
            state = body(i, state)
        return state

    def column_dots(self, X, Y):
        """Re(Σᵢ conj(X[i, j]) Y[i, j]) for each column j (or the scalar for 1-D X, Y)."""
        xp = self.xp
        return xp.real(xp.sum((xp.conj(X) if self.is_complex(X.dtype) else X) * Y, axis=0))

    def column_norms(self, X):
        """The 2-norm of each column of X (of X itself for 1-D X)."""
        return self.xp.sqrt(self.column_dots(X, X))

    def random_normal(self, key, shape, dtype, device):
        """Standard normal samples; ``key`` is an int seed (or a JAX PRNG key for JAX)."""
        raise NotImplementedError

    def random_rademacher(self, key, shape, dtype, device):
        """±1 with equal probability (complex dtypes: real ±1)."""
        signs = self.random_normal(key, shape, self.real_dtype(dtype), device) >= 0
        return self.astype(self.xp.where(signs, 1.0, -1.0), dtype)

    def available_memory(self, device) -> int:
        """Bytes that a new array on ``device`` can use now (host memory for CPU devices)."""
        return host_available_memory()

    def scaled_normals(self, source, shapes, scales, dtype, device):
        """Independent arrays ``scale · N(0, 1)`` of the ``shapes``, all drawn from ``source``: a
        NumPy Generator or seed (fresh entropy when None), a JAX PRNG key or seed (key 0 when
        None) or a torch Generator or seed (torch's global generator when None)."""
        raise NotImplementedError

    # --- sequential kernels: a loop over rows, compiled where the framework compiles -------------
    def run_compiled(self, kernel, *arrays, **static):
        """``kernel(self, *arrays, **static)``; JAX compiles it once per kernel, static values and
        shapes with ``jax.jit`` (the static values must be hashable)."""
        return kernel(self, *arrays, **static)

    def scan(self, step, carry, xs, reverse: bool = False):
        """``(carry, ys)`` of ``carry, y = step(carry, x)`` over the rows of the arrays in the tuple
        ``xs`` (in reverse order with ``reverse``), the tuples ``y`` stacked row by row into ``ys``:
        ``jax.lax.scan`` on JAX, a Python loop over the rows elsewhere (each step vectorised)."""
        length = xs[0].shape[0]
        outs = [None] * length
        for i in (range(length - 1, -1, -1) if reverse else range(length)):
            carry, outs[i] = step(carry, tuple(x[i] for x in xs))
        if not length or not outs[0]:
            return carry, ()
        return carry, tuple(self.xp.stack([o[j] for o in outs]) for j in range(len(outs[0])))

    def map_row_blocks(self, fn, x, block: int):
        """``fn`` on the consecutive blocks of ``block`` rows of ``x`` (the last one may be short),
        the results concatenated along axis 0. JAX pads x with copies of its first row to whole
        blocks and runs one ``jax.lax.map`` (one traced block, ``jit``-able)."""
        return self.xp.concat([fn(x[s:s + block]) for s in range(0, x.shape[0], block)])

    def sum_row_blocks(self, fn, x, w, block: int):
        """``Σ fn(x[s:s + block], w[s:s + block])`` over the consecutive row blocks of ``x`` and
        ``w`` (same number of rows). JAX pads x with copies of its first row and w with zero rows
        to whole blocks, so fn must be linear in its second argument, and runs one ``jax.lax.scan``."""
        out = None
        for s in range(0, x.shape[0], block):
            term = fn(x[s:s + block], w[s:s + block])
            out = term if out is None else out + term
        return out

    # --- automatic differentiation ------------------------------------------------------------------
    autodiff: bool = False
    """Whether the framework differentiates and vectorises functions (``jvp``, ``vjp``, ``vmap``)."""

    def eval_shape(self, f, *args):
        """An object with the ``shape`` and ``dtype`` of ``f(*args)``, without computing it where the
        framework can (JAX traces abstractly; torch runs f without recording gradients)."""
        raise NotImplementedError(f"the {self.name} backend has no automatic differentiation")

    def jvp(self, f, x, v):
        """The forward-mode product ``J_f(x) v`` (the tangent output of ``f`` at ``x``)."""
        raise NotImplementedError(f"the {self.name} backend has no automatic differentiation")

    def vjp(self, f, x):
        """The reverse-mode pullback of ``f`` at ``x``: the function ``u ↦ uᵀ J_f(x)``."""
        raise NotImplementedError(f"the {self.name} backend has no automatic differentiation")

    def grad(self, f):
        """The gradient function of the scalar-valued ``f``."""
        raise NotImplementedError(f"the {self.name} backend has no automatic differentiation")

    def vmap(self, fn, in_axes=0, out_axes=0):
        """``fn`` vectorised over the axis ``in_axes`` of its arguments (results stacked along
        ``out_axes``): one batched call, no Python loop."""
        raise NotImplementedError(f"the {self.name} backend has no vmap")

    def register_pytree(self, cls, flatten, unflatten) -> None:
        """Make the instances of ``cls`` pytree nodes of the framework (``flatten(op) -> (leaves,
        aux)``, ``unflatten(aux, leaves) -> op``); nothing to do for frameworks without pytrees."""

    # --- structured matrices: the framework's solvers and formats --------------------------------
    @functools.cached_property
    def banded(self):
        """The banded solvers (:class:`linops.backends.banded.BandedSolver`): LAPACK where the
        framework reaches it, a vectorised row loop elsewhere."""
        from linops.backends.banded import BandedSolver

        return BandedSolver(self)

    @property
    def sparse(self):
        """The framework's sparse matrices and their direct solvers
        (:class:`linops.backends.sparse.SparseFormat`)."""
        raise NotImplementedError(f"the {self.name} backend has no sparse format")

    def __repr__(self) -> str:
        return f"<linops backend {self.name!r}>"

    # --- randomized low-rank methods ------------------------------------------------------------------
    def qr(self, M):
        """``(Q, R)``: the thin QR factorization of the (m, k) matrix M (Q has orthonormal columns)."""
        Q, R = self.xp.linalg.qr(M)
        return Q, R
