"""CoLA's ``cola.backends.np_fns``: linops' numpy ``xnp`` namespace (:mod:`linops.backends.xnp_numpy`).

Example:
    >>> from linops.compat.cola.backends import np_fns
    >>> np_fns.__name__
    'linops.compat.cola.backends.np_fns'
"""

from linops.backends.xnp_numpy import *  # noqa: F403 - CoLA's namespace is the whole module
