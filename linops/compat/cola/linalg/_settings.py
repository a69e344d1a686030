"""Translation of CoLA's algorithm settings to linops' (shared by the algorithm classes).

CoLA's iterative algorithms return their last iterate when they run out of iterations; linops'
raise ``ConvergenceError`` by default. The classes of ``cola.linalg`` build linops algorithms
with ``on_fail="warn"``, so CoLA code keeps its result and is told that it did not converge.

Example:
    >>> from linops.compat.cola.linalg._settings import no_progress_bar
    >>> no_progress_bar(True)
"""

from __future__ import annotations

import warnings

ON_FAIL = "warn"


def no_progress_bar(pbar) -> None:
    """CoLA's ``pbar``: accepted, no effect (linops draws no progress bars)."""
    del pbar


def unused_start_vector(start_vector, name: str) -> None:
    """CoLA's ``start_vector``: linops' Krylov methods draw their own (from ``key``); say so."""
    if start_vector is not None:
        warnings.warn(f"cola {name}: start_vector is not used by linops' {name}, which draws its start "
                      f"vector from key=; converged results do not depend on it", UserWarning, stacklevel=3)


def info_dict(info) -> dict:
    """CoLA's info dict from a linops :class:`linops.report.Info`: ``iterations``, ``errors`` (the
    final relative residual or error estimate, as a one-element list: linops keeps no history),
    ``converged`` and ``algorithm``.

    Example:
        >>> from linops.report import Info, Leaf
        >>> d = info_dict(Info([Leaf("solve", "A", "CG", iterations=3, residual=1e-9)]))
        >>> d["iterations"], d["errors"], d["algorithm"]
        (3, [1e-09], 'CG')
    """
    error = info.residual if info.residual is not None else info.error
    return {"iterations": info.iterations, "errors": [] if error is None else [error],
            "converged": info.converged, "algorithm": info.algorithm}
