"""Shared fixtures: every test that takes ``backend`` runs on numpy, jax and torch."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.helpers import BACKENDS

os.environ.setdefault("JAX_ENABLE_X64", "1")


def pytest_configure(config):
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
    except ImportError:  # jax is an optional extra
        pass


@pytest.fixture(params=BACKENDS)
def backend(request):
    pytest.importorskip(request.param if request.param != "numpy" else "numpy")
    return request.param


@pytest.fixture(params=["float64", "float32"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)
