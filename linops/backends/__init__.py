"""The thin per-framework layer.

A backend is chosen from an array's *type* (its module: ``numpy``, ``jax`` or ``torch``), never
from its dtype, and the framework is imported only when the user's arrays come from it, so
``import linops`` imports neither jax nor torch.

Example:
    >>> import numpy as np
    >>> from linops.backends import backend_of
    >>> backend_of(np.ones(3)).name
    'numpy'
"""

from __future__ import annotations

import functools
import importlib

import numpy as np

from linops.backends.base import Backend

_MODULES = {"numpy": "linops.backends.numpy", "jax": "linops.backends.jax", "torch": "linops.backends.torch"}
_FRAMEWORK_OF_ROOT = {"numpy": "numpy", "jax": "jax", "jaxlib": "jax", "torch": "torch"}
_FRAMEWORK_OF_SPARSE_ROOT = {"scipy": "numpy", "jax": "jax", "torch": "torch"}

__all__ = ["Backend", "backend_named", "backend_of", "backend_of_sparse", "backend_of_type",
           "foreign_array_as_numpy", "is_array", "is_canonical_dtype"]


@functools.cache
def backend_named(name: str) -> Backend:
    """The backend called ``name`` ("numpy", "jax" or "torch"), importing its framework."""
    if name not in _MODULES:
        raise ValueError(f"unknown backend {name!r}; valid backends are {sorted(_MODULES)}")
    return importlib.import_module(_MODULES[name]).BACKEND


def enable_float64(name: str) -> Backend:
    """The backend called ``name``, with float64 arrays available: JAX makes float32 arrays from
    float64 data unless its ``jax_enable_x64`` option is on, so for "jax" this turns it on, a
    process-wide JAX setting, as ``jax.config.update("jax_enable_x64", True)`` in a script does.
    NumPy and torch need nothing. For scripts such as ``python -m linops demo``; the library itself
    never calls it. An ImportError when the framework is not installed.

    Example:
        >>> import numpy as np
        >>> bk = enable_float64("jax")
        >>> bk.asarray(np.ones(2)).dtype
        dtype('float64')
    """
    backend = backend_named(name)
    if name == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
    return backend


@functools.cache
def backend_of_type(cls: type) -> Backend | None:
    """The backend for arrays of type ``cls``, or None when ``cls`` is no array type we know."""
    root = cls.__module__.partition(".")[0]
    name = _FRAMEWORK_OF_ROOT.get(root)
    if name is None:
        return None
    backend = backend_named(name)
    return backend if backend.is_array_type(cls) else None


def is_array(x) -> bool:
    """Whether ``x`` is an array of one of the three frameworks (0-d arrays included)."""
    return backend_of_type(type(x)) is not None


def backend_of(x) -> Backend:
    """The backend of array ``x``; a TypeError names the type when it is no supported array."""
    backend = backend_of_type(type(x))
    if backend is None:
        raise TypeError(
            f"expected a numpy, jax or torch array, got {type(x).__module__}.{type(x).__qualname__}"
        )
    return backend


def backend_of_sparse(x) -> Backend | None:
    """The backend whose sparse format ``x`` is (SciPy sparse matrices: NumPy), or None."""
    name = _FRAMEWORK_OF_SPARSE_ROOT.get(type(x).__module__.partition(".")[0])
    if name is None:
        return None
    backend = backend_named(name)
    return backend if backend.sparse.is_sparse(x) else None


def foreign_array_as_numpy(x) -> np.ndarray | None:
    """An array of another array-API library (one with ``__array_namespace__`` and ``__dlpack__``
    that is no numpy, jax or torch array, e.g. ``array_api_strict``) read as a NumPy array through
    DLPack (no copy for an array in host memory); None for anything else. An array that DLPack cannot
    bring to the host (on a GPU) is a TypeError that says so.

    Example:
        >>> import array_api_strict as xp
        >>> foreign_array_as_numpy(xp.ones(2, dtype=xp.float64)).tolist()
        [1.0, 1.0]
    """
    if is_array(x) or not (hasattr(x, "__array_namespace__") and hasattr(x, "__dlpack__")):
        return None
    try:
        return np.from_dlpack(x)
    except (BufferError, RuntimeError, TypeError, ValueError) as err:
        raise TypeError(f"cannot read the {type(x).__module__}.{type(x).__qualname__} array as a NumPy array "
                        f"through DLPack ({err}); convert it to a numpy, jax or torch array first") from None


def is_canonical_dtype(dtype) -> bool:
    """Whether ``dtype`` is a dtype object of its framework already (a NumPy or a torch dtype), which
    no backend converts."""
    return isinstance(dtype, np.dtype) or type(dtype).__module__ == "torch"


def backend_of_dtype_or_device(dtype, device=None) -> Backend:
    """The backend for a matrix-free operator that holds no array: from the dtype's or device's type.

    ``torch.float32``, torch devices and the device names "cuda…", "mps" and "meta" mean torch;
    ``jnp.float32``, jax devices and the names "gpu…" and "tpu…" mean jax; anything else (a numpy
    dtype, ``float``, "cpu") means numpy.
    """
    if isinstance(device, str):
        for prefix, name in (("cuda", "torch"), ("mps", "torch"), ("meta", "torch"), ("gpu", "jax"), ("tpu", "jax")):
            if device.startswith(prefix):
                return backend_named(name)
    for obj in (device, dtype):
        if obj is None:
            continue
        root = (obj if isinstance(obj, type) else type(obj)).__module__.partition(".")[0]
        if _FRAMEWORK_OF_ROOT.get(root) in ("jax", "torch"):
            return backend_named(_FRAMEWORK_OF_ROOT[root])
    return backend_named("numpy")
