"""Every operator class, as ``lo.ops.<Name>``."""

from linops.operator import LinearOperator
from linops.operators.dense import Dense
from linops.operators.diagonal import Diagonal
from linops.operators.permutation import Permutation
from linops.operators.product import Product
from linops.operators.scalar import I_like, Identity, ScalarMul
from linops.operators.sliced import Sliced
from linops.operators.sum import Sum
from linops.operators.transpose import Adjoint, Transpose
from linops.operators.triangular import Triangular, TriangularInverse

__all__ = ["Adjoint", "Dense", "Diagonal", "I_like", "Identity", "LinearOperator", "Permutation", "Product",
           "ScalarMul", "Sliced", "Sum", "Transpose", "Triangular", "TriangularInverse"]
