"""CoLA's ``cola.backends.backends``: the ``xnp`` namespace for a framework name or a dtype.

Example:
    >>> import numpy as np
    >>> get_library_fns(np.float32).__name__
    'linops.backends.xnp_numpy'
"""

from __future__ import annotations

from types import ModuleType

from linops.backends import backend_named, backend_of_dtype_or_device

__all__ = ["check_valid_dtype", "get_library_fns", "get_xnp"]


def get_xnp(backend: str) -> ModuleType:
    """The ``xnp`` namespace of the framework ``backend`` ("numpy", "jax" or "torch"); a ValueError
    for another name, a RuntimeError when the framework is not installed (as CoLA).

    Unlike CoLA, asking for "jax" does not switch JAX to the CPU (``jax_platform_name``): linops
    changes no process-wide setting.

    Example:
        >>> get_xnp("numpy").float64
        <class 'numpy.float64'>
    """
    if backend not in ("numpy", "jax", "torch"):
        raise ValueError(f"Unknown backend {backend}.")
    try:
        return backend_named(backend).xnp
    except ImportError as err:
        raise RuntimeError(f"Could not import {backend}. It is likely not installed.") from err


def get_library_fns(dtype) -> ModuleType:
    """The ``xnp`` namespace of the framework whose dtype ``dtype`` is: ``torch.float32`` → torch,
    ``jnp.float32`` → JAX, NumPy dtypes (and anything else) → NumPy. (CoLA tries JAX first, so it
    answers JAX for NumPy dtypes when JAX is installed.)

    Example:
        >>> get_library_fns(float).__name__
        'linops.backends.xnp_numpy'
    """
    return backend_of_dtype_or_device(dtype).xnp


def check_valid_dtype(array, dtype, alloc_fn) -> bool:
    """Whether ``alloc_fn(array, dtype)`` (a conversion such as ``x.astype``) accepts ``dtype``: False
    where it raises a TypeError.

    Example:
        >>> import numpy as np
        >>> check_valid_dtype(np.array(0.1), np.float32, lambda x, d: x.astype(d))
        True
    """
    try:
        alloc_fn(array, dtype)
    except TypeError:
        return False
    return True
