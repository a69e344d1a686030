"""PyTorch structured linear layers: ``MonarchLinear``, ``BTTLinear`` and ``DenseLinear`` (``linops.nn``).

Each layer computes y = W x + b for x of any leading batch shape ``(..., in_features)``, holds its weight
as ``nn.Parameter`` block stacks, and gives that weight as a linops operator in ``.operator`` (so
``lo.logdet``, ``lo.solve``, ``lo.explain`` apply to it). The forward runs the operator's product on the
columns xᵀ (a strided view of x) in plain torch ops, so ``torch.compile`` traces it whole: one batched
matmul per factor with the tokens as the innermost axis, the shuffles between factors permutations of
outer axes, one copy for the output. It equals ``x @ layer.operator.to_dense().T + bias`` (tested).

μP (Compute Better Spent, Qiu et al. 2024, §3; Adam). Every factor k of a layer is a stack of dense blocks
with per-block fan-in d_in,k and fan-out d_out,k (``layer.factors()``), and c is the number of factors
(Dense 1, Monarch 2, BTT its number of cores):

* ``init="mup"``: entries of factor k are N(0, σ_k²) with σ_k = d_in,k^-½ · min(1, √(d_out,k / d_in,k)),
  which gives each factor spectral norm ≈ √(d_out,k / d_in,k); ``init="standard"``: σ_k = d_in,k^-½ (the
  per-block fan-in rule, the baseline without μP). Biases start at zero.
* ``layer.mup_param_groups(lr, base_width=None)``: ``lr`` is the Adam learning rate tuned for a dense
  layer of input width ``base_width`` (default: this layer's ``in_features``). Under μP a dense layer of
  width d = ``in_features`` gets η = lr·base_width/d, and factor k of a structured layer gets
  η·(d / d_in,k)/c = lr·base_width/(c·d_in,k). The bias gets ``lr`` (width-independent) and no weight decay.
  For a d×d layer that is b/2 times the dense rate for both factors of a Monarch with b blocks, and
  √d/2 (core 1) and √d/(2r) (core 2) for a two-core BTT with √d factors and rank r.

Example:
    >>> import torch, linops as lo
    >>> from linops.backends.nn_torch import BTTLinear
    >>> layer = BTTLinear(64, 32, cores=2, rank=2)
    >>> layer(torch.ones(5, 7, 64)).shape, layer.operator
    (torch.Size([5, 7, 32]), BTT(32×64, float32))
    >>> [round(g["lr"], 6) for g in layer.mup_param_groups(1e-3)]     # cores 1, 2 and the bias
    [0.004, 0.002, 0.001]
"""

from __future__ import annotations

import math

import torch
from torch import nn

from linops.operators.btt import BTT, balanced_factors, btt_core_shapes
from linops.operators.dense import Dense
from linops.operators.monarch import Monarch, mup_lr, mup_std

INITS = ("mup", "standard")


class _StructuredLinear(nn.Module):
    """What the layers share: the bias, the initialisation, the batch flattening and the μP groups."""

    def __init__(self, in_features: int, out_features: int, bias: bool, init: str, device, dtype):
        super().__init__()
        if init not in INITS:
            raise ValueError(f"{type(self).__name__}: init must be one of {INITS}, got {init!r}")
        if in_features < 1 or out_features < 1:
            raise ValueError(f"{type(self).__name__}: in_features and out_features must be ≥ 1, got "
                             f"{in_features} and {out_features}")
        self.in_features, self.out_features, self.init = int(in_features), int(out_features), init
        self._factory = {"device": device, "dtype": dtype}
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **self._factory))
        else:
            self.register_parameter("bias", None)

    def _parameter(self, shape):
        return nn.Parameter(torch.empty(shape, **self._factory))

    def factors(self) -> list[tuple[nn.Parameter, int, int]]:
        """``[(parameter, d_in, d_out), …]``: each weight factor with its per-block fan-in and fan-out."""
        raise NotImplementedError

    @property
    def macs(self) -> int:
        """Multiply-adds of the weight per input row (the number of weight parameters)."""
        return sum(p.numel() for p, _, _ in self.factors())

    def reset_parameters(self) -> None:
        """Draw every factor from N(0, σ_k²) (``init``'s rule, see the module docstring); zero the bias."""
        with torch.no_grad():
            for p, d_in, d_out in self.factors():
                p.normal_(0.0, mup_std(d_in, d_out) if self.init == "mup" else d_in**-0.5)
            if self.bias is not None:
                self.bias.zero_()

    def mup_param_groups(self, lr: float, *, base_width: int | None = None, weight_decay: float = 0.0) -> list[dict]:
        """Optimizer parameter groups with the μP Adam learning rate of every factor.

        Factor k gets lr·base_width/(c·d_in,k) (c factors, ``base_width`` defaulting to ``in_features``)
        and ``weight_decay``; the bias gets ``lr`` and no weight decay (see the module docstring).

        Example:
            >>> import torch
            >>> from linops.backends.nn_torch import MonarchLinear
            >>> layer = MonarchLinear(256, 256, nblocks=8)
            >>> [g["lr"] for g in layer.mup_param_groups(1e-3)]      # b/2 = 4 times the dense rate
            [0.004, 0.004, 0.001]
            >>> opt = torch.optim.Adam(layer.mup_param_groups(1e-3))
        """
        base = self.in_features if base_width is None else base_width
        factors = self.factors()
        groups = [{"params": [p], "lr": mup_lr(lr, d_in, len(factors), base), "weight_decay": weight_decay}
                  for p, d_in, _ in factors]
        if self.bias is not None:
            groups.append({"params": [self.bias], "lr": lr, "weight_decay": 0.0})
        return groups

    def _rows(self, x):
        """x Wᵀ for rows x of shape (B, in)."""
        raise NotImplementedError

    def forward(self, x):
        if x.shape[-1] != self.in_features:
            raise ValueError(f"{type(self).__name__}: input of shape {tuple(x.shape)} does not end in "
                             f"in_features={self.in_features}")
        y = self._rows(x.reshape(-1, self.in_features)).reshape(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias.to(y.dtype)  # autocast: y is lower precision

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class DenseLinear(_StructuredLinear):
    """A dense layer y = W x + b with the same interface as the structured ones (for comparisons).

    ``weight`` has shape ``(out_features, in_features)``; ``init="mup"`` draws it with std
    in^-½ · min(1, √(out/in)); ``.operator`` is ``lo.Dense(weight)`` (float32 / float64 only: ``lo.Dense``
    refuses 16-bit floats, so convert a bfloat16 layer first, e.g. ``layer.float().operator``).

    Example:
        >>> import torch
        >>> from linops.backends.nn_torch import DenseLinear
        >>> layer = DenseLinear(8, 4)
        >>> layer(torch.ones(3, 8)).shape, layer.macs, layer.operator.shape
        (torch.Size([3, 4]), 32, (4, 8))
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, init: str = "mup",
                 device=None, dtype=None):
        super().__init__(in_features, out_features, bias, init, device, dtype)
        self.weight = self._parameter((out_features, in_features))
        self.reset_parameters()

    def factors(self):
        return [(self.weight, self.in_features, self.out_features)]

    @property
    def operator(self) -> Dense:
        """The weight as ``lo.Dense``."""
        return Dense(self.weight)

    def _rows(self, x):
        return x @ self.weight.mT


class MonarchLinear(_StructuredLinear):
    """A Monarch layer y = M x + b, M = P·blockdiag(L)·Pᵀ·blockdiag(R) (``lo.Monarch``'s layout).

    Args:
        in_features, out_features: both divisible by ``nblocks``.
        nblocks: blocks per factor; the weight has (in + out)·b_mid parameters, 2d²/nblocks for d×d
            (the Monarch paper uses 2–4 blocks; √d blocks give the fewest, 2d^1.5).
        bias: add a learnable bias (zero at init).
        b_mid: the middle width per block (default min(in, out)/nblocks).
        init: ``"mup"`` or ``"standard"`` (see the module docstring).

    ``R`` has shape ``(nblocks, b_mid, in/nblocks)`` and ``L`` ``(nblocks, out/nblocks, b_mid)``;
    ``.operator`` is ``lo.Monarch(L, R)``.

    Example:
        >>> import torch, linops as lo
        >>> from linops.backends.nn_torch import MonarchLinear
        >>> layer = MonarchLinear(16, 16, nblocks=4, dtype=torch.float64)
        >>> x = torch.randn(3, 16, dtype=torch.float64)
        >>> torch.allclose(layer(x), x @ layer.operator.to_dense().T + layer.bias)
        True
        >>> bool(torch.isclose(lo.logdet(layer.operator), torch.linalg.slogdet(layer.operator.to_dense())[1]))
        True
    """

    def __init__(self, in_features: int, out_features: int, nblocks: int = 4, bias: bool = True, *,
                 b_mid: int | None = None, init: str = "mup", device=None, dtype=None):
        super().__init__(in_features, out_features, bias, init, device, dtype)
        if nblocks < 1 or in_features % nblocks or out_features % nblocks:
            common = [b for b in range(1, math.gcd(in_features, out_features) + 1)
                      if in_features % b == 0 and out_features % b == 0]
            raise ValueError(f"MonarchLinear: nblocks={nblocks} must divide in_features={in_features} and "
                             f"out_features={out_features}; valid: {common}")
        self.nblocks = int(nblocks)
        b_in, b_out = in_features // nblocks, out_features // nblocks
        self.b_mid = min(b_in, b_out) if b_mid is None else int(b_mid)
        self.L = self._parameter((nblocks, b_out, self.b_mid))
        self.R = self._parameter((nblocks, self.b_mid, b_in))
        self.reset_parameters()

    def factors(self):
        return [(self.L, self.b_mid, self.L.shape[1]), (self.R, self.R.shape[2], self.b_mid)]

    @property
    def operator(self) -> Monarch:
        """The weight as ``lo.Monarch(L, R)`` (gradients flow to ``L`` and ``R``)."""
        return Monarch(self.L, self.R)

    @classmethod
    def from_dense(cls, weight, bias=None, nblocks: int = 4, b_mid: int | None = None):
        """The layer whose weight is the Monarch nearest to ``weight`` (out×in; ``Monarch.from_dense``),
        with ``bias`` copied (no bias if None); dtype and device follow ``weight``.

        Example:
            >>> import torch
            >>> from linops.backends.nn_torch import MonarchLinear
            >>> W = MonarchLinear(16, 16, nblocks=4, dtype=torch.float64).operator.to_dense().detach()
            >>> torch.allclose(MonarchLinear.from_dense(W, nblocks=4).operator.to_dense(), W)
            True
        """
        op = Monarch.from_dense(weight.detach(), nblocks, b_mid)
        layer = cls(weight.shape[1], weight.shape[0], nblocks, bias is not None, b_mid=op.R.shape[1],
                    device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            layer.L.copy_(op.L)
            layer.R.copy_(op.R)
            if bias is not None:
                layer.bias.copy_(bias)
        return layer

    def _rows(self, x):
        # lo.Monarch's product on the columns X = xᵀ (a strided view, no copy): R's blocks, the shuffle as a
        # permutation of two outer axes (the token axis stays innermost), L's blocks, one copy for the output
        (nl, s, r), (nk, _, p) = self.L.shape, self.R.shape
        K = x.shape[0]
        Z = torch.matmul(self.R, x.mT.reshape(nk, p, K)).reshape(r, nl, K).transpose(0, 1)  # (l, r, K)
        return torch.matmul(self.L, Z).transpose(0, 1).reshape(s * nl, K).mT  # output (s, l), s slow

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, nblocks={self.nblocks}, b_mid={self.b_mid}"


class BTTLinear(_StructuredLinear):
    """A Block Tensor-Train layer y = W x + b with ``cores`` cores and bond ranks ``rank`` (``lo.BTT``).

    Args:
        in_features, out_features: the layer's widths.
        cores: the number of cores c ≥ 2.
        rank: the bond rank (an int) or the c − 1 ranks r_1, …, r_{c−1}.
        bias: add a learnable bias (zero at init).
        in_shape, out_shape: the factorisations ``(m_c, …, m_1)`` of ``in_features`` and
            ``(n_1, …, n_c)`` of ``out_features`` (default: ``balanced_factors``, c factors as equal as
            possible, so d^(1/c) each where d allows).
        init: ``"mup"`` or ``"standard"`` (see the module docstring).

    ``cores[k]`` has shape ``(nblocks_k, n_k·r_k, m_k·r_{k−1})``; a d×d layer with two cores of √d and
    rank r has 2r·d^1.5 parameters and multiply-adds per row. ``.operator`` is ``lo.BTT(cores, ranks)``.

    Example:
        >>> import torch
        >>> from linops.backends.nn_torch import BTTLinear
        >>> layer = BTTLinear(24, 24, cores=3, rank=2, dtype=torch.float64)
        >>> layer.in_shape, layer.out_shape, [tuple(C.shape) for C in layer.cores]
        ((4, 3, 2), (4, 3, 2), [(12, 8, 2), (16, 6, 6), (12, 2, 8)])
        >>> x = torch.randn(5, 24, dtype=torch.float64)
        >>> torch.allclose(layer(x), x @ layer.operator.to_dense().T + layer.bias)
        True
    """

    def __init__(self, in_features: int, out_features: int, cores: int = 2, rank=1, bias: bool = True, *,
                 in_shape=None, out_shape=None, init: str = "mup", device=None, dtype=None):
        super().__init__(in_features, out_features, bias, init, device, dtype)
        if cores < 2:
            raise ValueError(f"BTTLinear: cores must be ≥ 2, got {cores}")
        self.in_shape = tuple(balanced_factors(in_features, cores) if in_shape is None else in_shape)
        self.out_shape = tuple(balanced_factors(out_features, cores) if out_shape is None else out_shape)
        for name, shape, width in (("in_shape", self.in_shape, in_features),
                                   ("out_shape", self.out_shape, out_features)):
            if len(shape) != cores or math.prod(shape) != width:
                raise ValueError(f"BTTLinear: {name}={shape} must be {cores} factors of {width}")
        shapes, fans = btt_core_shapes(self.in_shape, self.out_shape, rank)
        self.ranks = tuple(C[1] // n for C, n in zip(shapes[:-1], self.out_shape[:-1], strict=True))
        self.cores = nn.ParameterList([self._parameter(shape) for shape in shapes])
        self._fans = fans
        self.reset_parameters()

    def factors(self):
        return [(C, d_in, d_out) for C, (d_in, d_out) in zip(self.cores, self._fans, strict=True)]

    @property
    def operator(self) -> BTT:
        """The weight as ``lo.BTT`` (gradients flow to the cores)."""
        return BTT(list(self.cores), self.ranks)

    @classmethod
    def from_dense(cls, weight, bias=None, cores: int = 2, rank=1, *, in_shape=None, out_shape=None):
        """The layer whose weight is ``BTT.from_dense(weight, …)`` (best for two cores; exact on BTTs),
        with ``bias`` copied (no bias if None); dtype and device follow ``weight``.

        Example:
            >>> import torch
            >>> from linops.backends.nn_torch import BTTLinear
            >>> W = BTTLinear(12, 12, cores=3, dtype=torch.float64).operator.to_dense().detach()
            >>> torch.allclose(BTTLinear.from_dense(W, cores=3).operator.to_dense(), W)
            True
        """
        out_features, in_features = weight.shape
        layer = cls(in_features, out_features, cores, rank, bias is not None, in_shape=in_shape,
                    out_shape=out_shape, device=weight.device, dtype=weight.dtype)
        op = BTT.from_dense(weight.detach(), layer.in_shape, layer.out_shape, layer.ranks)
        with torch.no_grad():
            for C, value in zip(layer.cores, op.cores, strict=True):
                C.copy_(value)
            if bias is not None:
                layer.bias.copy_(bias)
        return layer

    def _rows(self, x):
        # lo.BTT's product on the columns X = xᵀ (a strided view): one batched matmul per core, the regrouping
        # between cores a permutation of outer axes (the token axis stays innermost)
        m, n, bond = self.in_shape[::-1], self.out_shape, (1, *self.ranks, 1)
        K = x.shape[0]
        Z = x.mT.reshape(math.prod(m[1:]), m[0], K)
        for k, C in enumerate(self.cores[:-1]):
            done, rest = math.prod(n[:k]), math.prod(m[k + 2:])
            Y = torch.matmul(C, Z).reshape(done, rest, m[k + 1], n[k], bond[k + 1], K)
            Z = Y.permute(0, 3, 1, 2, 4, 5).reshape(done * n[k] * rest, m[k + 1] * bond[k + 1], K)
        return torch.matmul(self.cores[-1], Z).reshape(self.out_features, K).mT

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, in_shape={self.in_shape}, out_shape={self.out_shape}, ranks={self.ranks}"


def mup_param_groups(model: nn.Module, lr: float, *, base_width: int | None = None,
                     weight_decay: float = 0.0) -> list[dict]:
    """Parameter groups for a whole model: every linops layer's ``mup_param_groups`` (with the given
    ``base_width``; each layer's own ``in_features`` when None), then one group with every other
    parameter at ``lr`` (weight decay on tensors of ≥ 2 dimensions only).

    Example:
        >>> import torch
        >>> from linops.backends.nn_torch import MonarchLinear, mup_param_groups
        >>> model = torch.nn.Sequential(torch.nn.Linear(8, 64), MonarchLinear(64, 64, nblocks=8),
        ...                             torch.nn.LayerNorm(64))
        >>> [(len(g["params"]), g["lr"]) for g in mup_param_groups(model, 1e-3)]
        [(1, 0.004), (1, 0.004), (1, 0.001), (4, 0.001)]
    """
    groups, seen = [], set()
    for module in model.modules():
        if isinstance(module, _StructuredLinear):
            for group in module.mup_param_groups(lr, base_width=base_width, weight_decay=weight_decay):
                groups.append(group)
                seen.update(id(p) for p in group["params"])
    rest = [p for p in model.parameters() if id(p) not in seen]
    decayed = [p for p in rest if p.ndim >= 2 and weight_decay != 0.0]
    plain = [p for p in rest if not (p.ndim >= 2 and weight_decay != 0.0)]
    groups += [{"params": params, "lr": lr, "weight_decay": wd}
               for params, wd in ((decayed, weight_decay), (plain, 0.0)) if params]
    return groups
