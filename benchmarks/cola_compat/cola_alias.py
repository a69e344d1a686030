"""A pytest plugin that makes ``import cola`` load ``linops.compat.cola`` (measurement only).

CoLA's own test files import ``cola.<module path>``; with this plugin every such import is served by
the module of the same path under ``linops.compat.cola``, so CoLA's tests run unchanged against the
compat layer. CoLA's test helpers (``cola.utils.utils_for_tests``) are not part of CoLA's API and
are loaded from the CoLA checkout named by ``COLA_SRC``. Nothing here imports cola-ml.

With ``COLA_STUB_INTERNALS=1`` (``run_cola_tests.py --stub-internals``), the CoLA modules in
``INTERNAL_MODULES`` — internals that CoLA's tests import but that are not CoLA's public API and that
the compat layer does not provide (Arnoldi/Lanczos/CG/GMRES internals, ``cola.linalg.tbd``) — are
served with every name the compat module lacks replaced by a stub that raises
``NotImplementedError`` when called. A test file that imports one of them then runs its other tests;
the tests that call an internal fail. Without it, such a file does not import and none of its tests
run.

Used by ``run_cola_tests.py``: ``python -m pytest -p cola_alias <COLA_SRC>/tests``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
import types

TEST_HELPERS = {"cola.utils.utils_for_tests": "cola/utils/utils_for_tests.py"}
INTERNAL_MODULES = ("cola.linalg.decompositions.arnoldi", "cola.linalg.decompositions.lanczos",
                    "cola.linalg.eig.iram", "cola.linalg.inverse.cg", "cola.linalg.inverse.gmres",
                    "cola.linalg.preconditioning.preconditioners", "cola.linalg.tbd.nullspace",
                    "cola.linalg.tbd.qr", "cola.linalg.tbd.slq")


def _stub(module_name, name):
    def internal(*args, **kwargs):
        raise NotImplementedError(f"{module_name}.{name} is a CoLA internal (not provided by the compat layer)")
    internal.__name__ = internal.__qualname__ = name
    return internal


class _WithStubs(types.ModuleType):
    """A CoLA internal module: the compat module's names where it has them, stubs for the others."""

    def __init__(self, name, real):
        super().__init__(name)
        self._real = real
        if real is not None and hasattr(real, "__path__"):
            self.__path__ = list(real.__path__)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if self._real is not None and hasattr(self._real, name):
            return getattr(self._real, name)
        return _stub(self.__name__, name)


class _Existing(importlib.abc.Loader):
    def __init__(self, module):
        self.module = module

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        return None


class ColaAlias(importlib.abc.MetaPathFinder):
    """Serves ``cola`` and ``cola.x.y`` from ``linops.compat.cola`` and ``linops.compat.cola.x.y``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "cola" and not fullname.startswith("cola."):
            return None
        if fullname in TEST_HELPERS:
            location = os.path.join(os.environ["COLA_SRC"], TEST_HELPERS[fullname])
            return importlib.util.spec_from_file_location(fullname, location)
        stub = os.environ.get("COLA_STUB_INTERNALS") == "1" and (
            fullname in INTERNAL_MODULES or any(m.startswith(fullname + ".") for m in INTERNAL_MODULES))
        try:
            module = importlib.import_module("linops.compat." + fullname)
        except ModuleNotFoundError as error:
            missing = error.name or ""
            if not (stub and ("linops.compat." + fullname + ".").startswith(missing + ".")):
                raise
            module = None
        if stub and (fullname in INTERNAL_MODULES or module is None):
            module = _WithStubs(fullname, module)
            if fullname not in INTERNAL_MODULES:  # a package on the way to an internal module
                module.__path__ = []
        spec = importlib.util.spec_from_loader(fullname, _Existing(module),
                                               is_package=hasattr(module, "__path__"))
        if hasattr(module, "__path__"):
            spec.submodule_search_locations = list(module.__path__)
        return spec


sys.meta_path.insert(0, ColaAlias())
