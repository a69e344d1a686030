"""CoLA's ``cola.linalg.preconditioning`` (see :mod:`linops.compat.cola.linalg.preconditioning.preconditioners`).

Example:
    >>> from linops.compat.cola.linalg.preconditioning.preconditioners import NystromPrecond
    >>> NystromPrecond.__name__
    'NystromPrecond'
"""
