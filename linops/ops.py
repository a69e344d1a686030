"""Every operator class, as ``lo.ops.<Name>``."""

from linops.operator import LinearOperator
from linops.operators.banded import Banded
from linops.operators.block import Block, Concatenated
from linops.operators.blockdiag import BlockDiag
from linops.operators.btt import BTT
from linops.operators.circulant import Circulant
from linops.operators.dense import Dense
from linops.operators.derivatives import Hessian, Jacobian
from linops.operators.diagonal import Diagonal
from linops.operators.fft import FFT
from linops.operators.householder import Householder
from linops.operators.kernel import Kernel
from linops.operators.kronecker import Kronecker
from linops.operators.kronsum import KronSum
from linops.operators.lowrank import LowRank
from linops.operators.monarch import Monarch
from linops.operators.permutation import Permutation
from linops.operators.product import Product
from linops.operators.scalar import I_like, Identity, ScalarMul
from linops.operators.sliced import Sliced
from linops.operators.sparse import Sparse
from linops.operators.sum import Sum
from linops.operators.toeplitz import Toeplitz
from linops.operators.transpose import Adjoint, Transpose
from linops.operators.triangular import Triangular, TriangularInverse
from linops.operators.tridiagonal import Tridiagonal

__all__ = ["BTT", "FFT", "Adjoint", "Banded", "Block", "BlockDiag", "Circulant", "Concatenated", "Dense",
           "Diagonal", "Hessian", "Householder", "I_like", "Identity", "Jacobian", "Kernel", "KronSum", "Kronecker",
           "LinearOperator", "LowRank", "Monarch", "Permutation", "Product", "ScalarMul", "Sliced", "Sparse", "Sum",
           "Toeplitz", "Transpose", "Triangular", "TriangularInverse", "Tridiagonal"]
