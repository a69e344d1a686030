"""linops: compositional numerical linear algebra on NumPy, JAX and PyTorch.

Build a big matrix from structured pieces and call ``solve``, ``logdet``, ``eig``, ``trace``,
``exp``, ``sqrt``...: dispatch rules rewrite the problem along its structure, and what is left
runs on the best dense or iterative algorithm for it.

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.Diagonal(np.array([1.0, 2.0, 4.0])) + 0.5 * lo.Identity((3, 3), np.float64)
    >>> lo.solve(A, np.ones(3)).round(3).tolist()
    [0.667, 0.4, 0.222]
"""

from linops import functions as _functions  # noqa: F401 - registers the generic rules
from linops import linalg, ops
from linops.algorithms import (
    CG,
    GMRES,
    LOBPCG,
    LU,
    MINRES,
    SLQ,
    Algorithm,
    Arnoldi,
    Auto,
    BiCGStab,
    Cholesky,
    Eig,
    Eigh,
    Exact,
    Hutch,
    HutchPP,
    Lanczos,
    PowerIteration,
    XTrace,
)
from linops.annotations import PSD, Hermitian, SelfAdjoint, Unitary
from linops.dispatch import dispatch
from linops.errors import ConvergenceError, NotPSDError, SingularMatrixError
from linops.explain import explain
from linops.linalg import (
    apply_unary,
    cholesky,
    det,
    diag,
    eig,
    eigh,
    eigmax,
    eigmin,
    exp,
    inv,
    isqrt,
    log,
    logdet,
    lu,
    pinv,
    pow,  # noqa: A004 - the API's name
    slogdet,
    solve,
    sqrt,
    svd,
    trace,
)
from linops.operator import LinearOperator
from linops.operators.block import concatenate
from linops.operators.blockdiag import block_diag
from linops.operators.dense import densify, lazify
from linops.operators.kernel import rbf
from linops.operators.kronecker import kron
from linops.operators.kronsum import kronsum
from linops.operators.sparse import from_scipy
from linops.ops import (
    BTT,
    FFT,
    Adjoint,
    Banded,
    Block,
    BlockDiag,
    Circulant,
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
    LowRank,
    Monarch,
    Permutation,
    Product,
    ScalarMul,
    Sliced,
    Sparse,
    Sum,
    Toeplitz,
    Transpose,
    Triangular,
    Tridiagonal,
)

__version__ = "0.1.0"

__all__ = [
    "BTT", "CG", "FFT", "GMRES", "LOBPCG", "LU", "MINRES", "PSD", "SLQ", "Adjoint", "Algorithm", "Arnoldi", "Auto",
    "Banded", "BiCGStab", "Block", "BlockDiag", "Cholesky", "Circulant", "Concatenated", "ConvergenceError", "Dense",
    "Diagonal", "Eig", "Eigh", "Exact", "Hermitian", "Hessian", "Householder", "Hutch", "HutchPP", "I_like",
    "Identity", "Jacobian", "Kernel", "KronSum", "Kronecker", "Lanczos", "LinearOperator", "LowRank", "Monarch",
    "NotPSDError", "Permutation", "PowerIteration", "Product", "ScalarMul", "SelfAdjoint", "SingularMatrixError",
    "Sliced", "Sparse", "Sum", "Toeplitz", "Transpose", "Triangular", "Tridiagonal", "Unitary", "XTrace",
    "apply_unary", "block_diag", "cholesky", "concatenate", "densify", "det", "diag", "dispatch", "eig", "eigh",
    "eigmax", "eigmin", "exp", "explain", "from_scipy", "inv", "isqrt", "kron", "kronsum", "lazify", "linalg", "log",
    "logdet", "lu", "ops", "pinv", "pow", "rbf", "slogdet", "solve", "sqrt", "svd", "trace",
]
