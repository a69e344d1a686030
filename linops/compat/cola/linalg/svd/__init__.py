"""CoLA's ``cola.linalg.svd`` (see :mod:`linops.compat.cola.linalg.svd.svd`).

Example:
    >>> from linops.compat.cola.linalg.svd.svd import svd
    >>> svd.__module__
    'linops.compat.cola.linalg.svd.svd'
"""
