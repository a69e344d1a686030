"""The JAX backend: arrays keep their device; operators are pytrees (registered on import)."""

from __future__ import annotations

import contextlib
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from linops.backends import spectral_jax
from linops.backends.base import ABSENT, Backend, compute_plainly, inside_implicit, reaches, without_nesting
from linops.report import Info, Leaf, apart, report, values_of, with_values


class JaxBackend(Backend):
    """jax.Array (and tracers, inside jit/vmap/grad) on any device."""

    name = "jax"
    keeps_columns_major = True  # XLA fuses the transposes; sharded columns stay sharded
    reads_numpy = True  # jnp functions take NumPy arrays, and so do JAX operators

    @property
    def xp(self):
        return jnp

    def is_array_type(self, cls):
        return issubclass(cls, jax.Array) or issubclass(cls, jax.core.Tracer)

    def is_tracer(self, x):
        return isinstance(x, jax.core.Tracer)

    def canonical_dtype(self, dtype):
        return jnp.dtype(dtype)

    def result_type(self, *dtypes):
        return jnp.result_type(*dtypes)

    def device(self, x):
        # None where jax decides: a tracer, or an uncommitted array (built without a device), which
        # jax moves next to the committed arrays it meets; naming its device in an allocation would
        # commit the new array there (to the default device) and clash with them
        if isinstance(x, jax.core.Tracer) or not getattr(x, "committed", True):
            return None
        devices = x.devices()
        return next(iter(devices)) if len(devices) == 1 else x.sharding

    def default_device(self):
        return None

    def user_device(self, device):
        if not isinstance(device, str):
            return device  # a jax.Device or a Sharding
        platform, _, index = device.partition(":")
        platform = {"cuda": "gpu"}.get(platform, platform)
        try:
            return jax.devices(platform)[int(index or 0)]
        except (RuntimeError, IndexError, ValueError):
            valid = ", ".join(f"'{d.platform}:{d.id}'" for d in jax.devices())
            raise ValueError(f"no jax device {device!r}; valid: {valid}, or a jax.Device or Sharding") from None

    def same_device(self, a, b) -> bool:
        if not (isinstance(a, jax.Device) and isinstance(b, jax.Device)):
            return True  # a sharding or the default placement: jax itself checks where arrays meet
        return a == b

    def move(self, x, device=None, dtype=None):
        if device is not None:
            x = jax.device_put(x, device)
        return x if dtype is None else self.astype(x, dtype)

    def portable_device(self, device):
        if isinstance(device, jax.Device):
            return device.platform, device.id
        return None  # a sharding, or no placement: re-derived from the arrays on load

    def device_from_portable(self, portable):
        if portable is None:
            return None
        platform, index = portable
        try:
            devices = jax.devices(platform)
        except RuntimeError:  # pickled where that platform exists, loaded where it does not
            return None
        return next((d for d in devices if d.id == index), None)

    def asarray(self, x, dtype=None, device=None):
        if isinstance(x, jax.core.Tracer):  # a traced value is where the trace puts it (vmap refuses a device)
            device = None
        elif isinstance(device, jax.sharding.Sharding):  # fitted to the array's shape
            out = jnp.asarray(x, dtype=dtype)
            return jax.device_put(out, _placement(device, out.shape))
        return jnp.asarray(x, dtype=dtype, device=device)

    def zeros(self, shape, dtype, device):
        return jnp.zeros(shape, dtype=dtype, device=_placement(device, shape))

    def ones(self, shape, dtype, device):
        return jnp.ones(shape, dtype=dtype, device=_placement(device, shape))

    def eye(self, n, dtype, device):
        return jnp.eye(n, dtype=dtype, device=_placement(device, (n, n)))

    def arange(self, n, device):
        return jnp.arange(n, device=_placement(device, (n,)))

    def astype(self, x, dtype):
        return x if x.dtype == dtype else x.astype(dtype)

    def array_version(self, x):
        return None if isinstance(x, jax.core.Tracer) else 0  # jax arrays never change

    def set_rows(self, x, index, values):
        return x.at[index].set(values)

    def add_rows(self, x, index, values):
        return x.at[index].add(values)

    def write_row(self, x, i, value):
        return x.at[i].set(value)

    def cholesky(self, M):
        L = jnp.linalg.cholesky(M)
        return L, jnp.any(jnp.isnan(L))

    def solve_triangular(self, T, B, lower, unit_diagonal=False):
        return jsl.solve_triangular(T, B, lower=lower, unit_diagonal=unit_diagonal)

    def lu(self, M):
        P, L, U = jsl.lu(M)
        return jnp.argmax(jnp.abs(P), axis=0), L, U

    def solve(self, M, B):
        X = jnp.linalg.solve(M, B)
        return X, ~jnp.all(jnp.isfinite(X)) & jnp.all(jnp.isfinite(M)) & jnp.all(jnp.isfinite(B))

    def eigh(self, M):
        return spectral_jax.eigh(M)

    def eigvalsh(self, M):
        return spectral_jax.eigvalsh(M)

    def eigh_function(self, M, f):
        return spectral_jax.eigh_function(M, f)

    def kronecker_function(self, Ms, f, add=False):
        return spectral_jax.kronecker_function(Ms, f, add)

    def kronecker_function_matmat(self, Ms, ws, Vs, fv, fp, B, add=False):
        return spectral_jax.kronecker_function_matmat(Ms, ws, Vs, fv, fp, B, add)

    def eig(self, M):
        return spectral_jax.eig(M)

    def svd(self, M):
        return jnp.linalg.svd(M, full_matrices=False)

    def slogdet(self, M):
        return jnp.linalg.slogdet(M)

    def pinv(self, M):
        return jnp.linalg.pinv(M)

    def expm(self, M):
        return jsl.expm(M)

    def transpose_matmat(self, matmat, X, n):
        transposed = jax.linear_transpose(matmat, jax.ShapeDtypeStruct((n, X.shape[0]), X.dtype))
        return transposed(X.mT)[0].mT

    def fft(self, x, axis=0, norm="backward"):
        return jnp.fft.fft(x, axis=axis, norm=norm)

    def ifft(self, x, axis=0, norm="backward"):
        return jnp.fft.ifft(x, axis=axis, norm=norm)

    def argsmallest(self, x, k):
        if k >= x.shape[0]:
            return jnp.argsort(x, stable=True)[:k]
        return jax.lax.top_k(-x, k)[1]


    def while_loop(self, cond, body, state, check_every=1):
        return jax.lax.while_loop(cond, body, state)

    def fori_loop(self, n, body, state):
        return jax.lax.fori_loop(0, n, body, state)

    def random_normal(self, key, shape, dtype, device):
        if key is None or isinstance(key, int):
            key = jax.random.key(0 if key is None else key)
        out = jax.random.normal(key, shape, dtype=dtype)
        if device is None or isinstance(out, jax.core.Tracer):
            return out
        return jax.device_put(out, _placement(device, shape))

    def available_memory(self, device):
        if device is None:  # uncommitted arrays live on the default device
            device = jax.config.jax_default_device or jax.devices()[0]
        stats = device.memory_stats() if hasattr(device, "memory_stats") else None
        if stats and "bytes_limit" in stats:
            return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
        return super().available_memory(device)

    def scaled_normals(self, source, shapes, scales, dtype, device):
        if source is None or isinstance(source, int):
            source = jax.random.key(0 if source is None else source)
        sizes = [math.prod(shape) for shape in shapes]  # one draw (one compiled kernel), then split
        flat = jax.random.normal(source, (sum(sizes),), dtype)
        ends = itertools.accumulate(sizes)
        return [flat[end - size:end].reshape(shape) * scale
                for shape, size, end, scale in zip(shapes, sizes, ends, scales, strict=True)]

    # --- sequential kernels: jax.jit and jax.lax ----------------------------------------------------------
    def run_compiled(self, kernel, *arrays, **static):
        return _jitted(kernel, tuple(sorted(static.items())))(*arrays)

    def scan(self, step, carry, xs, reverse=False):
        return jax.lax.scan(step, carry, xs, reverse=reverse)

    def map_row_blocks(self, fn, x, block):
        m = x.shape[0]
        count, x = _whole_blocks(x, block)
        if count == 1:
            return fn(x)
        out = jax.lax.map(fn, x.reshape(count, block, *x.shape[1:]))
        return out.reshape(count * block, *out.shape[2:])[:m]

    def sum_row_blocks(self, fn, x, w, block):
        m = x.shape[0]
        count, x = _whole_blocks(x, block)
        if count == 1:
            return fn(x, w)
        w = jnp.pad(w, ((0, count * block - m), *((0, 0),) * (w.ndim - 1)))  # padded rows of x meet zero weights
        out = jax.eval_shape(fn, x[:block], w[:block])

        def step(total, pair):
            return total + fn(*pair), None

        total, _ = jax.lax.scan(step, jnp.zeros(out.shape, out.dtype),
                                (x.reshape(count, block, *x.shape[1:]), w.reshape(count, block, *w.shape[1:])))
        return total

    # --- automatic differentiation and pytrees ------------------------------------------------------------
    autodiff = True

    def eval_shape(self, f, *args):
        return jax.eval_shape(f, *args)

    def jvp(self, f, x, v):
        return jax.jvp(f, (x,), (v,))[1]

    def vjp(self, f, x):
        _, pullback = jax.vjp(f, x)
        return lambda u: pullback(u)[0]

    def grad(self, f):
        return jax.grad(f)

    def vmap(self, fn, in_axes=0, out_axes=0):
        return jax.vmap(fn, in_axes=in_axes, out_axes=out_axes)

    def may_differentiate(self, A):
        return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(A))

    def implicit(self, compute, pullback, A, *arrays, z_in_pullback=False, fixed=ABSENT, plain=None):
        # jax's cotangents are transposes (conjugates of the adjoint convention of ``pullback``).
        # The operator travels as its pytree leaves (taken before compute runs: it may cache
        # attributes on the operator), so the pullback sees primal arrays; so do ``fixed`` (with zero
        # cotangents). Values that A's functions close over (a matrix-free product's parameters)
        # travel as closure-converted constants. The leaves compute reports for ``info`` hold values
        # of the custom_vjp's own trace: their arrays leave it as outputs, reported outside (_reported).
        if inside_implicit():  # a computation nested in another's custom gradient: no rule of its own
            return compute_plainly(compute, plain, A, arrays, fixed)
        given = fixed is not ABSENT
        if not any(map(_is_tracer, arrays)) and not reaches((A, fixed if given else None), _is_tracer):
            return compute_plainly(compute, plain, A, arrays, fixed)  # concrete arrays: nothing to differentiate
        leaves, treedef = jax.tree_util.tree_flatten(A)
        fixed, arrays = (fixed if given else None), tuple(arrays)
        compute, pullback = without_nesting(compute), without_nesting(pullback)

        def at(ls):
            return jax.tree_util.tree_unflatten(treedef, ls)

        reported = []  # the leaves compute reports: traced inside the call, their arrays leave it as outputs

        def run(ls, arrs, fx):
            with apart() as info:
                value, Z, saved = compute(at(ls), *arrs, **({"fixed": fx} if given else {}))
            reported[:] = info.leaves
            return (value, values_of(info.leaves, _is_array)), Z, saved

        def pull(ls, saved, cts, fx):
            with apart():  # the adjoint computation belongs to no call's info
                return pullback(at(ls), saved, cts, **({"fixed": fx} if given else {}))

        hidden = _closes_over_tracers(A) and jax.closure_convert(lambda ls, X: at(ls) @ X, leaves,
                                                                 jnp.zeros((A.shape[1], 1), A.dtype))[1]
        if not hidden:
            return _reported(reported, _implicit_call(run, pull, lambda ls, Z: at(ls) @ Z, leaves, arrays, fixed,
                                                      z_in_pullback))
        run_c, run_consts = jax.closure_convert(run, leaves, arrays, fixed)
        (value, _), Z, saved = jax.eval_shape(run_c, leaves, arrays, fixed, *run_consts)
        examples = (jax.tree_util.tree_map(_zeros_of, saved), jax.tree_util.tree_map(_zeros_of, value))
        pull_c, pull_consts = jax.closure_convert(pull, leaves, *examples, fixed)
        if z_in_pullback:
            Z = jax.eval_shape(pull_c, leaves, *examples, fixed, *pull_consts)[2]
        matmat, mm_consts = jax.closure_convert(lambda ls, X: at(ls) @ X, leaves, _zeros_of(Z))
        consts = ((tuple(run_consts), tuple(pull_consts)), tuple(mm_consts))
        return _reported(reported, _implicit_call(lambda ls, arrs, fx, cs: run_c(ls, arrs, fx, *cs[0][0]),
                                                  lambda ls, saved, cts, fx, cs: pull_c(ls, saved, cts, fx, *cs[0][1]),
                                                  lambda ls, Z, cs: matmat(ls, Z, *cs[1]),
                                                  leaves, arrays, fixed, z_in_pullback, consts))

    def register_pytree(self, cls, flatten, unflatten):
        with contextlib.suppress(ValueError):  # already registered
            jax.tree_util.register_pytree_node(cls, flatten, unflatten)

    @functools.cached_property
    def banded(self):
        from linops.backends.banded_jax import JaxBandedSolver

        return JaxBandedSolver(self)

    @functools.cached_property
    def sparse(self):
        from linops.backends.sparse_jax import JaxSparse

        return JaxSparse(self)


def _placement(device, shape):
    """Where a new array of ``shape`` goes for an operator on ``device``: a device (or None) as it is;
    a sharding fitted to the shape, so that an operator sharded over a mesh allocates its vectors,
    identities and scalars over that mesh, sharded alike where that divides evenly.

    A ``NamedSharding``'s spec is cut or padded (with None) to the array's rank, and a dimension that
    its mesh axes do not divide evenly is replicated instead; another sharding is kept where it fits
    the shape, else the array is replicated over its devices.

    Example:
        >>> mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("d",))
        >>> stack = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("d", None, None))
        >>> _placement(stack, (6,)).spec == jax.sharding.PartitionSpec("d")
        True
    """
    if not isinstance(device, jax.sharding.Sharding):
        return device
    if isinstance(device, jax.sharding.NamedSharding):
        spec = (*tuple(device.spec)[:len(shape)], *(None,) * (len(shape) - len(device.spec)))
        fitted = [axes if size % _ways(device.mesh, axes) == 0 else None
                  for size, axes in zip(shape, spec, strict=True)]
        return jax.sharding.NamedSharding(device.mesh, jax.sharding.PartitionSpec(*fitted),
                                          memory_kind=device.memory_kind)
    try:
        device.shard_shape(tuple(shape))
    except ValueError:
        devices = sorted(device.device_set, key=lambda d: d.id)
        return jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(devices), ("devices",)),
                                          jax.sharding.PartitionSpec())
    return device


def _ways(mesh, axes) -> int:
    """Into how many parts the mesh axes ``axes`` (a name, a tuple of names, or None) split a dimension."""
    names = () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)
    return math.prod(mesh.shape[name] for name in names)


def _whole_blocks(x, block: int):
    """The number of blocks of ``block`` rows, and x padded with copies of its first row to that many
    whole blocks (x itself when it forms one block)."""
    m = x.shape[0]
    count = -(-m // block)
    pad = count * block - m
    if count == 1 or pad == 0:
        return count, x
    return count, jnp.concat([x, jnp.broadcast_to(x[:1], (pad, *x.shape[1:]))])


def _implicit_call(compute, pullback, matmat, leaves, arrays, fixed, z_in_pullback, consts=None):
    """The custom_vjp of ``Backend.implicit`` over the operator's leaves, the arrays, ``fixed`` (zero
    cotangents) and, when A's functions close over traced values, their closure-converted constants
    ``((of compute, of pullback), of the product)``: only the product's constants get cotangents.
    ``compute``'s value is ``(value, values)``: the second part, the arrays of the leaves reported
    inside (see :func:`_reported`), gets no cotangent."""
    extra = () if consts is None else (consts,)

    @jax.custom_vjp
    def call(leaves, arrays, fixed, *extra):
        return compute(leaves, arrays, fixed, *extra)[0]

    def forward(leaves, arrays, fixed, *extra):
        value, Z, saved = compute(leaves, arrays, fixed, *extra)
        return value, (leaves, arrays, fixed, extra, Z, saved)

    def backward(residuals, cts):
        leaves, arrays, fixed, extra, Z, saved = residuals
        out = pullback(leaves, saved, jax.tree_util.tree_map(jnp.conj, cts[0]), fixed, *extra)
        Y, array_cts, Z = out if z_in_pullback else (*out, Z)
        if Z is None:
            leaf_cts = [_zero_cotangent(leaf) for leaf in leaves]
            extra_cts = jax.tree_util.tree_map(_zero_cotangent, extra)
        else:
            leaf_cts, extra_cts = jax.vjp(lambda ls, ex: matmat(ls, Z, *ex), leaves, extra)[1](jnp.conj(Y))
        if extra:  # compute's and pullback's constants get zeros; the product's their cotangents
            extra_cts = ((jax.tree_util.tree_map(_zero_cotangent, extra[0][0]), extra_cts[0][1]),)
        array_cts = tuple(jnp.zeros_like(x) if ct is None else jnp.conj(ct).astype(x.dtype)
                          for x, ct in zip(arrays, array_cts, strict=True))
        return (leaf_cts, array_cts, jax.tree_util.tree_map(_zero_cotangent, fixed), *extra_cts)

    call.defvjp(forward, backward)
    return call(leaves, arrays, fixed, *extra)


def _reported(leaves, out):
    """The value of an implicit call, after reporting the ``leaves`` its compute reported, with
    their arrays (traced inside the custom_vjp, so unusable outside it: an UnexpectedTracerError
    under jit) replaced by the call's outputs ``out = (value, values)``."""
    value, values = out
    for leaf in with_values(leaves, values):
        report(leaf)
    return value


def _is_array(x) -> bool:
    return isinstance(x, (jax.Array, jax.core.Tracer))


def _is_tracer(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _closes_over_tracers(A) -> bool:
    """Whether a function A holds (a matrix-free product, a kernel) closes over a traced value."""
    return reaches(A, lambda v: callable(v) and not hasattr(v, "bk") and not isinstance(v, type)
                   and reaches(v, _is_tracer))


def _zeros_of(x):
    return None if x is None else jnp.zeros(x.shape, x.dtype)


def _zero_cotangent(leaf):
    """A zero cotangent for ``leaf`` (float0 for an integer leaf, as JAX expects)."""
    leaf = jnp.asarray(leaf)
    if jnp.issubdtype(leaf.dtype, jnp.inexact):
        return jnp.zeros_like(leaf)
    return np.zeros(leaf.shape, jax.dtypes.float0)


@functools.cache
def _jitted(kernel, static):
    """``kernel(BACKEND, *arrays, **static)`` compiled once per kernel and static values."""
    return jax.jit(functools.partial(kernel, BACKEND, **dict(static)))


BACKEND = JaxBackend()

# Importing this module is the moment JAX first meets linops: make every operator class a pytree.
from linops._pytree import register_all_with_jax  # noqa: E402

register_all_with_jax()
for _report_class in (Leaf, Info):  # a call's info passes out of jax.jit and jax.vmap
    BACKEND.register_pytree(_report_class, _report_class.tree_flatten, _report_class.tree_unflatten)
