"""Structured linear layers for JAX as pure functions: ``init`` makes a parameter pytree, ``apply`` runs it.

The JAX counterparts of ``linops.nn.MonarchLinear``, ``BTTLinear`` and ``DenseLinear`` (public as
``linops.nn.jax``), with the same shapes, initialisation and μP rules. A layer is a dict of arrays and
nothing else, so ``jax.jit``, ``jax.grad``, ``jax.vmap`` and any optimiser that maps over pytrees take it
as it is:

* Monarch: ``{"L": (nblocks, out/nblocks, b_mid), "R": (nblocks, b_mid, in/nblocks), "bias": (out,)}``,
  the blocks of :class:`linops.Monarch`;
* BTT: ``{"cores": (C1, …, Cc), "bias": (out,)}``, core k of shape ``(nblocks_k, n_k, r_k, m_k, r_{k−1})``
  (r_0 = r_c = 1): the blocks of :class:`linops.BTT`'s core k, ``(nblocks_k, n_k·r_k, m_k·r_{k−1})``, with the
  bond ranks as their own axes, so that the shapes alone determine the layer (``torch_core.reshape(...)``
  converts a ``BTTLinear`` core);
* dense: ``{"weight": (out, in), "bias": (out,)}``.

``bias`` is absent for a layer made with ``bias=False``. :func:`apply` maps inputs of shape
``(..., in)`` to ``(..., out)`` as ``x Wᵀ + b``; for Monarch and BTT it computes ``x Wᵀ`` with the layer's
linops operator (:func:`operator`; one batched matmul per factor, which XLA compiles with the reshapes
around them), so ``lo.logdet``, ``lo.solve`` or ``lo.explain`` apply to ``operator(params)``.

μP (Qiu et al. 2024, "Compute Better Spent", §3; Adam). Every factor k (a stack of blocks, or a core) has
per-block fan-in d_in,k and fan-out d_out,k; c is the number of factors (dense 1, Monarch 2, BTT its
cores):

* ``init="mup"`` (the default): the entries of factor k are N(0, σ_k²) with
  σ_k = d_in,k^-½ · min(1, √(d_out,k/d_in,k)) (:func:`linops.operators.monarch.mup_std`), which gives each
  factor spectral norm ≈ √(d_out,k/d_in,k); ``init="standard"``: σ_k = d_in,k^-½ (the per-block fan-in rule,
  the baseline without μP). Biases start at zero.
* learning rates (:func:`mup_lr_multipliers`): with ``lr`` the Adam rate tuned for a dense layer of input
  width ``base_width`` (default: this layer's input width d), factor k trains with
  lr·base_width/(c·d_in,k) (:func:`linops.operators.monarch.mup_lr`) and the bias with ``lr``. For a d×d
  Monarch with b blocks that is b/2 times the dense rate for both factors; for a two-core BTT with √d
  factors and rank r, √d/2 and √d/(2r).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from linops.operators.btt import BTT, balanced_factors, btt_core_shapes
from linops.operators.dense import Dense
from linops.operators.monarch import Monarch, mup_lr, mup_std

__all__ = ["apply", "btt_init", "dense_init", "macs", "monarch_init", "mup_lr_multipliers", "operator"]

INITS = ("mup", "standard")


def _dtype(dtype):
    """``dtype`` as a JAX dtype; None is JAX's default floating dtype (float32, or float64 under
    ``jax_enable_x64``)."""
    return jax.dtypes.canonicalize_dtype(jnp.float64 if dtype is None else dtype)


def _check(name: str, in_features: int, out_features: int, init: str):
    if init not in INITS:
        raise ValueError(f"{name}: init must be one of {INITS}, got {init!r}")
    if in_features < 1 or out_features < 1:
        raise ValueError(f"{name}: in_features and out_features must be ≥ 1, got {in_features} and {out_features}")


def _factors(key, shapes, fans, init: str, dtype) -> list:
    """One normal array per factor shape, scaled by ``init``'s rule for its per-block ``(d_in, d_out)``."""
    keys = jax.random.split(key, len(shapes))
    return [(mup_std(d_in, d_out) if init == "mup" else d_in**-0.5) * jax.random.normal(k, shape, dtype)
            for k, shape, (d_in, d_out) in zip(keys, shapes, fans, strict=True)]


def _with_bias(params: dict, out_features: int, bias: bool, dtype) -> dict:
    if bias:
        params["bias"] = jnp.zeros((out_features,), dtype)
    return params


def monarch_init(key, in_features: int, out_features: int, nblocks: int = 4, *, bias: bool = True,
                 b_mid: int | None = None, init: str = "mup", dtype=None) -> dict:
    """The parameters of a Monarch layer ``in_features → out_features`` (``linops.nn.MonarchLinear``).

    ``R`` has shape ``(nblocks, b_mid, in/nblocks)`` and ``L`` ``(nblocks, out/nblocks, b_mid)``, with
    ``b_mid = min(in, out)/nblocks`` by default: (in + out)·b_mid weights and as many multiply-adds per input
    row, 2d²/nblocks for d×d (√d blocks give the fewest, 2d^1.5).

    Args:
        key: a ``jax.random`` key.
        nblocks: blocks per factor; must divide both widths.
        bias: whether the layer adds a bias (initialised to zero).
        b_mid: the middle width per block.
        init: ``"mup"`` or ``"standard"`` (see the module docstring).
        dtype: the parameters' dtype; JAX's default floating dtype when None.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from linops.backends import nn_jax
        >>> params = nn_jax.monarch_init(jax.random.key(0), 64, 32, nblocks=4, dtype="float32")
        >>> {name: p.shape for name, p in params.items()}
        {'L': (4, 8, 8), 'R': (4, 8, 16), 'bias': (32,)}
        >>> nn_jax.apply(params, jnp.ones((5, 7, 64), "float32")).shape
        (5, 7, 32)
    """
    _check("monarch_init", in_features, out_features, init)
    if nblocks < 1 or in_features % nblocks or out_features % nblocks:
        common = [b for b in range(1, math.gcd(in_features, out_features) + 1)
                  if in_features % b == 0 and out_features % b == 0]
        raise ValueError(f"monarch_init: nblocks={nblocks} must divide in_features={in_features} and "
                         f"out_features={out_features}; valid: {common}")
    dtype = _dtype(dtype)
    b_in, b_out = in_features // nblocks, out_features // nblocks
    b_mid = min(b_in, b_out) if b_mid is None else int(b_mid)
    L, R = _factors(key, [(nblocks, b_out, b_mid), (nblocks, b_mid, b_in)], [(b_mid, b_out), (b_in, b_mid)],
                    init, dtype)
    return _with_bias({"L": L, "R": R}, out_features, bias, dtype)


def btt_init(key, in_features: int, out_features: int, cores: int = 2, rank=1, *, bias: bool = True,
             in_shape=None, out_shape=None, init: str = "mup", dtype=None) -> dict:
    """The parameters of a Block Tensor-Train layer ``in_features → out_features`` with ``cores`` cores and
    bond ranks ``rank`` (an int, or the c − 1 ranks) (``linops.nn.BTTLinear``).

    The input width is read as ``in_shape = (m_c, …, m_1)`` and the output as ``out_shape = (n_1, …, n_c)``
    (default: :func:`linops.operators.btt.balanced_factors`, c factors as equal as possible); core k has
    shape ``(nblocks_k, n_k·r_k, m_k·r_{k−1})`` (:func:`linops.operators.btt.btt_core_shapes`). A d×d layer
    with two cores of √d and rank r has 2r·d^1.5 weights and multiply-adds per row. Other arguments as in
    :func:`monarch_init`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from linops.backends import nn_jax
        >>> params = nn_jax.btt_init(jax.random.key(0), 64, 64, rank=2, dtype="float32")
        >>> [core.shape for core in params["cores"]], nn_jax.operator(params).ranks
        ([(8, 8, 2, 8, 1), (8, 8, 1, 8, 2)], (2,))
        >>> nn_jax.apply(params, jnp.ones((3, 64), "float32")).shape
        (3, 64)
    """
    _check("btt_init", in_features, out_features, init)
    if cores < 2:
        raise ValueError(f"btt_init: cores must be ≥ 2, got {cores}")
    in_shape = tuple(balanced_factors(in_features, cores) if in_shape is None else in_shape)
    out_shape = tuple(balanced_factors(out_features, cores) if out_shape is None else out_shape)
    for name, shape, width in (("in_shape", in_shape, in_features), ("out_shape", out_shape, out_features)):
        if len(shape) != cores or math.prod(shape) != width:
            raise ValueError(f"btt_init: {name}={shape} must be {cores} factors of {width}")
    shapes, fans = btt_core_shapes(in_shape, out_shape, rank)
    dtype = _dtype(dtype)
    m, n = in_shape[::-1], out_shape
    bond = (1, *(s[1] // n_k for s, n_k in zip(shapes[:-1], n[:-1], strict=True)), 1)
    cores = [C.reshape(C.shape[0], n[k], bond[k + 1], m[k], bond[k])
             for k, C in enumerate(_factors(key, shapes, fans, init, dtype))]
    return _with_bias({"cores": tuple(cores)}, out_features, bias, dtype)


def dense_init(key, in_features: int, out_features: int, *, bias: bool = True, init: str = "mup",
               dtype=None) -> dict:
    """The parameters of a dense layer ``in_features → out_features`` (``weight`` of shape (out, in)), the
    like-for-like baseline of the structured layers (``linops.nn.DenseLinear``): ``init="mup"`` draws the
    weight with std in^-½ · min(1, √(out/in)), ``"standard"`` with in^-½.

    Example:
        >>> import jax
        >>> from linops.backends import nn_jax
        >>> nn_jax.dense_init(jax.random.key(0), 3, 2, bias=False, dtype="float32")["weight"].shape
        (2, 3)
    """
    _check("dense_init", in_features, out_features, init)
    dtype = _dtype(dtype)
    (weight,) = _factors(key, [(out_features, in_features)], [(in_features, out_features)], init, dtype)
    return _with_bias({"weight": weight}, out_features, bias, dtype)


def operator(params: dict):
    """The weight of the layer ``params`` as a linops operator (``Monarch``, ``BTT`` or ``Dense``), of
    shape (out, in); a BTT's cores are reshaped to ``lo.BTT``'s blocks ``(nblocks_k, n_k·r_k, m_k·r_{k−1})``.
    ``lo.Dense`` takes float32 and float64 only (cast a bfloat16 dense layer first).

    Example:
        >>> import jax, numpy as np
        >>> import linops as lo
        >>> from linops.backends import nn_jax
        >>> W = nn_jax.operator(nn_jax.monarch_init(jax.random.key(0), 16, 16, nblocks=4, dtype="float32"))
        >>> sign, logabs = lo.slogdet(W)                  # through the blocks, as for any lo.Monarch
        >>> W, bool(np.isclose(logabs, np.linalg.slogdet(np.asarray(W.to_dense()))[1], atol=1e-3))
        (Monarch(16×16, float32), True)
    """
    if "L" in params and "R" in params:
        return Monarch(params["L"], params["R"])
    if "cores" in params:
        cores = params["cores"]
        return BTT([C.reshape(C.shape[0], C.shape[1] * C.shape[2], C.shape[3] * C.shape[4]) for C in cores],
                   tuple(C.shape[2] for C in cores[:-1]))
    if "weight" in params:
        return Dense(params["weight"])
    raise ValueError(f"not the parameters of a linops.nn.jax layer: keys {sorted(params)}; expected "
                     f"L and R (Monarch), cores (BTT) or weight (dense)")


def apply(params: dict, x):
    """The layer ``params`` applied to ``x`` of shape ``(..., in)``: ``x Wᵀ + b`` of shape ``(..., out)``.

    Pure: use it under ``jax.jit``, ``jax.grad`` and ``jax.vmap``. The result has the common dtype of
    ``x`` and the parameters (bfloat16 parameters and input compute in bfloat16).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from linops.backends import nn_jax
        >>> params = nn_jax.monarch_init(jax.random.key(0), 16, 16, dtype="float32")
        >>> loss = lambda p, x: jnp.sum(nn_jax.apply(p, x) ** 2)
        >>> grads = jax.jit(jax.grad(loss))(params, jnp.ones((4, 16), "float32"))
        >>> sorted(grads), grads["L"].shape
        (['L', 'R', 'bias'], (4, 4, 4))
    """
    # a dense weight is a plain GEMM (lo.Dense refuses 16-bit floats)
    W = params["weight"] if "weight" in params else operator(params)
    m, n = W.shape
    if x.shape[-1:] != (n,):
        raise ValueError(f"apply: x of shape {tuple(x.shape)} does not fit the layer {n} → {m}; valid "
                         f"shapes are (..., {n})")
    y = (x.reshape(-1, n) @ W.T).reshape(*x.shape[:-1], m)
    return y + params["bias"] if "bias" in params else y


def mup_lr_multipliers(params: dict, *, base_width: int | None = None) -> dict:
    """The μP Adam learning rate of every parameter divided by ``lr``, as a pytree shaped like ``params``.

    ``lr`` is the Adam rate tuned for a dense layer of input width ``base_width`` (default: this layer's
    input width); factor k gets base_width/(c·d_in,k), the bias 1 (see the module docstring). Scale each
    parameter's Adam step by its multiplier, e.g. ``jax.tree.map(lambda p, s, k: p - lr * k * s, params,
    adam_steps, multipliers)`` (with optax: one ``optax.scale`` per leaf through ``optax.multi_transform``).

    Example:
        >>> import jax
        >>> from linops.backends import nn_jax
        >>> nn_jax.mup_lr_multipliers(nn_jax.monarch_init(jax.random.key(0), 64, 64, nblocks=8))
        {'L': 4.0, 'R': 4.0, 'bias': 1.0}
        >>> nn_jax.mup_lr_multipliers(nn_jax.btt_init(jax.random.key(0), 64, 64, rank=2, bias=False))
        {'cores': (4.0, 2.0)}
    """
    if "weight" in params:
        n_in = params["weight"].shape[1]
        fans_in = [n_in]
    else:
        W = operator(params)
        n_in = W.shape[1]
        fans_in = [d_in for _, d_in, _ in W.factors()]  # Monarch: L, then R; BTT: the cores in order
    base = n_in if base_width is None else base_width
    scales = [mup_lr(1.0, d_in, len(fans_in), base) for d_in in fans_in]
    if "weight" in params:
        multipliers = {"weight": scales[0]}
    elif "cores" in params:
        multipliers = {"cores": tuple(scales)}
    else:
        multipliers = {"L": scales[0], "R": scales[1]}
    if "bias" in params:
        multipliers["bias"] = 1.0
    return multipliers


def macs(params: dict) -> int:
    """Multiply-adds of the layer's weight per input row: its number of weight parameters (for Monarch and
    BTT the structured product costs exactly that; the bias adds ``out`` additions).

    Example:
        >>> import jax
        >>> from linops.backends import nn_jax
        >>> key = jax.random.key(0)
        >>> nn_jax.macs(nn_jax.dense_init(key, 64, 64)), nn_jax.macs(nn_jax.monarch_init(key, 64, 64, 8))
        (4096, 1024)
    """
    return sum(leaf.size for name, value in params.items() if name != "bias" for leaf in jax.tree.leaves(value))
