"""JAX structured layers as pure functions: ``linops.nn.jax`` (importing it imports JAX).

The JAX counterparts of ``linops.nn.MonarchLinear``, ``BTTLinear`` and ``DenseLinear``, implemented in
:mod:`linops.backends.nn_jax` (framework code lives in ``linops.backends``): ``monarch_init``,
``btt_init`` and ``dense_init`` return a parameter dict, ``apply(params, x)`` runs the layer,
``operator(params)`` is its weight as a linops operator and ``mup_lr_multipliers(params)`` the per-factor
μP learning-rate multipliers. Formulas and layouts: ``help(linops.backends.nn_jax)``.

Example:
    >>> import jax, jax.numpy as jnp
    >>> import linops.nn.jax as lnj
    >>> params = lnj.btt_init(jax.random.key(0), 16, 32, rank=2, dtype="float32")
    >>> lnj.apply(params, jnp.ones((2, 16), "float32")).shape, lnj.operator(params)
    ((2, 32), BTT(32×16, float32))
"""

from linops.backends.nn_jax import apply, btt_init, dense_init, macs, monarch_init, mup_lr_multipliers, operator

__all__ = ["apply", "btt_init", "dense_init", "macs", "monarch_init", "mup_lr_multipliers", "operator"]
