"""CoLA's ``cola.utils.utils_linalg``: a dtype's working precision and its NumPy counterpart.

Example:
    >>> import numpy as np
    >>> from linops.compat.cola.backends import get_xnp
    >>> get_precision(get_xnp("numpy"), np.float32), get_numpy_dtype(np.float64)
    (1e-06, <class 'numpy.float64'>)
"""

from __future__ import annotations

import numpy as np

__all__ = ["get_numpy_dtype", "get_precision"]

_PRECISION = {"float32": 1e-6, "float64": 1e-15}
_NUMPY = {"float32": np.float32, "float64": np.float64, "complex64": np.complex64, "complex128": np.complex128,
          "int32": np.int32, "int64": np.int64}


def _name(dtype) -> str:
    return str(dtype).rpartition(".")[2].strip("'>") if not isinstance(dtype, type) else np.dtype(dtype).name


def get_precision(xnp, dtype) -> float:
    """CoLA's tolerance for ``dtype`` (float32: 1e-6, float64: 1e-15); a TypeError for other dtypes.

    Example:
        >>> import numpy as np
        >>> get_precision(None, np.float64)
        1e-15
    """
    if _name(dtype) not in _PRECISION:
        raise TypeError(f"Incorrect dtype {dtype}")
    return _PRECISION[_name(dtype)]


def get_numpy_dtype(dtype):
    """The NumPy scalar type for a NumPy, JAX or torch dtype (``torch.float32`` → ``np.float32``); an
    ImportError for other dtypes, as CoLA.

    Example:
        >>> import torch
        >>> get_numpy_dtype(torch.complex64)
        <class 'numpy.complex64'>
    """
    if _name(dtype) not in _NUMPY:
        raise ImportError(f"Dtype: {dtype} is not valid")
    return _NUMPY[_name(dtype)]
