"""CoLA's ``cola.backends.torch_fns``: linops' torch ``xnp`` namespace (:mod:`linops.backends.xnp_torch`).

Example:
    >>> from linops.compat.cola.backends import torch_fns
    >>> torch_fns.__name__
    'linops.compat.cola.backends.torch_fns'
"""

from linops.backends.xnp_torch import *  # noqa: F403 - CoLA's namespace is the whole module
