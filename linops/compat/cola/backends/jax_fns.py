"""CoLA's ``cola.backends.jax_fns``: linops' jax ``xnp`` namespace (:mod:`linops.backends.xnp_jax`).

Example:
    >>> from linops.compat.cola.backends import jax_fns
    >>> jax_fns.__name__
    'linops.compat.cola.backends.jax_fns'
"""

from linops.backends.xnp_jax import *  # noqa: F403 - CoLA's namespace is the whole module
