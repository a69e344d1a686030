"""Every public function, as ``lo.linalg.<name>``."""

from linops.functions.determinant import det, logdet, slogdet
from linops.functions.eigen import eig, eigh, eigmax, eigmin, svd
from linops.functions.factor import cholesky, lu
from linops.functions.inverse import inv, pinv, solve
from linops.functions.trace import diag, trace
from linops.functions.unary import apply_unary, exp, isqrt, log, pow, sqrt  # noqa: A004 - the API's name

__all__ = ["apply_unary", "cholesky", "det", "diag", "eig", "eigh", "eigmax", "eigmin", "exp", "inv", "isqrt",
           "log", "logdet", "lu", "pinv", "pow", "slogdet", "solve", "sqrt", "svd", "trace"]
