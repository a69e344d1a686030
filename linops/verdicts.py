"""Value checks that read the device once per operator, not once per call.

A check such as "is this diagonal singular?" needs its answer on the host to raise an error, and on
a GPU that read waits for every queued kernel: a synchronisation that costs more than a small solve.
:func:`holds` reads such a condition once per operator and remembers that it held, against the
identity and version of every array the operator holds: a later call on the same operator, or on
its annotated copies (``lo.PSD(A)`` shares A's arrays), reads nothing. The rule for which checks
may read the device, and when, is in docs/design.md ("Where a check must sync").

Only a condition that *held* is remembered (a failing check raises, and is read again next time),
except for a choice between two correct paths, whose outcome is remembered either way. Nothing
is remembered where a read is free or a stamp cannot be trusted: NumPy arrays (mutable without a
version counter), torch inference tensors (no version counter), operators holding a function or
a foreign object (a matrix-free product: its closure can change unseen). Values that cannot be
read at all (JAX tracers, torch meta tensors, while ``lo.explain`` records) make :func:`holds`
answer ``None``, and the caller takes its no-read path (a NaN result, as under ``jax.jit``).
"""

from __future__ import annotations

import dataclasses
import weakref

from linops.backends import backend_of_type
from linops.backends.base import Backend
from linops.plan import can_read

_KEY = "_verdicts"


class Verdicts:
    """The conditions that held for one operator's arrays (held in the operator's ``__dict__``).

    It compares equal to any other and hashes alike, so an operator's pytree structure (in which
    JAX keeps it as static data) does not depend on what was checked; copies (pickle, deepcopy)
    start empty, since the stamps name the arrays of this process.
    """

    __slots__ = ("entries",)

    def __init__(self):
        self.entries = {}

    def __eq__(self, other):
        return isinstance(other, Verdicts)

    def __hash__(self):
        return 0

    def __reduce__(self):
        return Verdicts, ()

    def __deepcopy__(self, memo):
        return Verdicts()

    def __repr__(self) -> str:
        return f"Verdicts({sorted(self.entries)})"


def holds(owner, key, condition, *also, choice: bool = False) -> bool | None:
    """Whether ``condition`` (a 0-d boolean array, or a function returning one) holds, a fact
    about the values of the operator ``owner`` (and of the operators or arrays ``also``): read on
    the host at most once while those arrays stay the same objects with the same versions (torch's
    in-place updates bump the version); ``None`` where values cannot be read now (JAX tracers,
    torch meta tensors, while ``lo.explain`` records). ``key`` names the check (``None``: never
    remembered, e.g. for a user's function). A condition that failed is remembered only for a
    ``choice`` between two correct paths (a failed check raises, and is read again next time); a
    choice is also read while ``lo.explain`` records, so that the plan shows the path a call takes.

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.verdicts import holds
        >>> D = lo.Diagonal(np.array([1.0, 0.0]))
        >>> holds(D, "nonsingular", lambda: np.all(D.d != 0))
        False
    """
    bk = owner.bk
    if not (choice or can_read(bk)):
        return None
    # a without_structure() view is rebuilt per call: remember on the structured operator behind it
    # (linops.operator.structured, which this module sits below)
    owner = owner.__dict__.get("_dense_from") or owner
    # a backend without array versions (NumPy: its reads are free) never remembers
    versioned = key is not None and type(bk).array_version is not Backend.array_version
    stamp = _stamp(owner, also) if versioned else None
    store = owner.__dict__.get(_KEY) if stamp is not None else None
    if store is not None:
        known = store.entries.get(key)
        if known is not None and _matches(known[0], stamp):
            return known[1]
    value = condition() if callable(condition) else condition
    if bk.is_tracer(value):
        return None
    verdict = bk.to_host_bool(value)
    if stamp is not None and (verdict or choice):
        if store is None:
            store = owner.__dict__.setdefault(_KEY, Verdicts())
        store.entries[key] = (stamp, verdict)
    return verdict


def _stamp(owner, also):
    """``((weakref, version), ...)`` for every array ``owner`` and ``also`` hold, or None where no
    stamp can be trusted (a mutable array without version, a function or a foreign object, whose
    values are unknown)."""
    stamp = []
    if not _collect(owner, stamp):
        return None
    for value in also:
        if not _collect(value, stamp):
            return None
    return tuple(stamp)


_STATIC = frozenset({"shape", "dtype", "annotations", "_backend", "_device", "_pytree_keys", _KEY})
_PLAIN = (str, bytes, int, float, complex, type, frozenset)


def _collect(value, stamp) -> bool:
    """Append the stamps of the arrays in ``value`` (an array, an operator, a list or tuple, a
    dataclass of them) to ``stamp``; False where something in it has no trustworthy stamp."""
    if value is None or isinstance(value, _PLAIN):
        return True
    bk = backend_of_type(type(value))
    if bk is not None:
        version = bk.array_version(value)
        stamp.append((weakref.ref(value), version))
        return version is not None
    if isinstance(value, (list, tuple)):
        parts = value
    elif hasattr(value, "bk") and hasattr(value, "shape"):  # an operator: its attributes
        parts = [v for k, v in vars(value).items() if k not in _STATIC]
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):  # a kernel's parameters
        parts = vars(value).values()
    else:
        return False  # a function or a foreign object: its values are unknown
    return all(_collect(part, stamp) for part in parts)


def _matches(entry, stamp) -> bool:
    return (len(entry) == len(stamp)
            and all(ref() is now() and v == w for (ref, v), (now, w) in zip(entry, stamp, strict=True)))
