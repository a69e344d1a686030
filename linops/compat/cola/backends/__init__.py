"""CoLA's ``cola.backends``: the ``xnp`` namespaces by framework name, as CoLA's tests and user code
reach them (``get_xnp("torch")``, ``get_library_fns(dtype)``, ``all_backends``).

The namespaces themselves are linops' (``linops.backends.xnp_numpy``, ``xnp_jax``, ``xnp_torch``,
also ``A.xnp`` of every operator); ``np_fns``, ``jax_fns`` and ``torch_fns`` are CoLA's names for them.

Example:
    >>> from linops.compat.cola.backends import get_xnp, all_backends
    >>> all_backends
    ['torch', 'jax', 'numpy']
    >>> get_xnp("numpy").diag(get_xnp("numpy").ones((2,), dtype=None, device=None)).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
"""

from linops.compat.cola.backends.backends import check_valid_dtype, get_library_fns, get_xnp
from linops.compat.cola.backends.np_fns import NumpyNotImplementedError

all_backends = ["torch", "jax", "numpy"]
tracing_backends = ["torch", "jax"]

__all__ = ["NumpyNotImplementedError", "all_backends", "check_valid_dtype", "get_library_fns", "get_xnp",
           "tracing_backends"]
