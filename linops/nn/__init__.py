"""Structured neural-network layers: ``linops.nn`` (PyTorch) and ``linops.nn.jax`` (JAX).

``MonarchLinear``, ``BTTLinear`` and ``DenseLinear`` are ``torch.nn.Module`` layers y = W x + b whose
weight is a linops operator (``layer.operator``), with μP initialisation and per-factor learning-rate
groups (``layer.mup_param_groups(lr)``, or ``mup_param_groups(model, lr)`` for a whole model); the
formulas are in :mod:`linops.backends.nn_torch`, where the layers live. They load on first use, so
``import linops.nn`` imports no framework. The JAX counterparts are pure functions in
:mod:`linops.nn.jax`.

Example:
    >>> import torch
    >>> import linops.nn
    >>> layer = linops.nn.MonarchLinear(64, 64, nblocks=4)
    >>> layer(torch.ones(2, 64)).shape, layer.operator
    (torch.Size([2, 64]), Monarch(64×64, float32))
"""

import importlib

__all__ = ["BTTLinear", "DenseLinear", "MonarchLinear", "mup_param_groups"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("linops.backends.nn_torch"), name)
    if name == "jax":
        return importlib.import_module("linops.nn.jax")
    raise AttributeError(f"module 'linops.nn' has no attribute {name!r}")


def __dir__():
    return sorted([*__all__, "jax"])
