"""CoLA's ``cola.ops``: the operator classes (``cola.ops.Diagonal``, ...) and ``LinearOperator``.

Example:
    >>> import numpy as np, linops as lo
    >>> D = Diagonal(diag=np.array([1.0, 2.0]))
    >>> isinstance(D, lo.Diagonal), Dense is lo.Dense
    (True, True)
"""

from linops.compat.cola.ops.operator_base import Array, LinearOperator
from linops.compat.cola.ops.operators import (
    FFT,
    Adjoint,
    BlockDiag,
    Concatenated,
    Dense,
    Diagonal,
    Hessian,
    Householder,
    I_like,
    Identity,
    Jacobian,
    Kernel,
    Kronecker,
    KronSum,
    Permutation,
    Product,
    ScalarMul,
    Sliced,
    Sparse,
    Sum,
    Transpose,
    Triangular,
    Tridiagonal,
)

__all__ = ["FFT", "Adjoint", "Array", "BlockDiag", "Concatenated", "Dense", "Diagonal", "Hessian", "Householder",
           "I_like", "Identity", "Jacobian", "Kernel", "KronSum", "Kronecker", "LinearOperator", "Permutation",
           "Product", "ScalarMul", "Sliced", "Sparse", "Sum", "Transpose", "Triangular", "Tridiagonal"]
