"""The public functions: one module per family, each with its generic rules and Auto's use.

Importing this package registers the generic (dense) rules.
"""

from linops.functions import determinant, eigen, factor, inverse, shift_invert, trace, unary

__all__ = ["determinant", "eigen", "factor", "inverse", "shift_invert", "trace", "unary"]
