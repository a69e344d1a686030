"""PowerIteration: not implemented yet (settings only; asking it for any function is refused clearly)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from linops.algorithms.base import IterativeAlgorithm


@dataclass(frozen=True, repr=False)
class PowerIteration(IterativeAlgorithm):
    """Power iteration for the eigenvalue of largest magnitude."""

    key: Any = None
