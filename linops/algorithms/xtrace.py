"""XTrace: not implemented yet (settings only; asking it for any function is refused clearly)."""

from __future__ import annotations

from dataclasses import dataclass

from linops.algorithms.hutch import Hutch


@dataclass(frozen=True, repr=False)
class XTrace(Hutch):
    """XTrace: exchangeable low-rank-plus-remainder trace estimator."""
