"""Arnoldi: not implemented yet (settings only; asking it for any function is refused clearly)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from linops.algorithms.base import IterativeAlgorithm


@dataclass(frozen=True, repr=False)
class Arnoldi(IterativeAlgorithm):
    """Arnoldi iteration for general eigenproblems and matrix functions."""

    key: Any = None
    k: int | None = None
    which: str = "LM"
