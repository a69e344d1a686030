"""Shared fixtures: every test that takes ``backend`` runs on numpy, jax and torch.

``--device <dev>`` (or ``LINOPS_TEST_DEVICE``; the option wins) puts every test array on ``dev``
("cpu", "cuda", "cuda:1", "gpu", "cpu:1" = ``jax.devices("cpu")[1]``); ``--foreign-default`` (or
``LINOPS_TEST_FOREIGN_DEFAULT=1``) moves the frameworks' default device elsewhere (see tests/helpers.py).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests import helpers
from tests.helpers import BACKENDS

os.environ.setdefault("JAX_ENABLE_X64", "1")
if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    # eight CPU devices (set before jax is imported): the sharding tests need several, and arrays
    # on a device other than the default one stand in for a GPU in the device-parity tests
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()


def pytest_addoption(parser):
    group = parser.getgroup("linops")
    group.addoption("--device", default=None,
                    help="device of every test array: cpu (default), cuda, cuda:1, gpu, cpu:1 "
                         "(env LINOPS_TEST_DEVICE)")
    group.addoption("--foreign-default", action="store_true", default=None,
                    help="proxy for a GPU: the frameworks' default device differs from the test device "
                         "(torch: meta; jax: a second host device) (env LINOPS_TEST_FOREIGN_DEFAULT=1)")


def pytest_configure(config):
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
    except ImportError:  # jax is an optional extra
        pass
    helpers.configure_device(config.getoption("--device", None), config.getoption("--foreign-default", None))


def pytest_report_header(config):
    mode = ", foreign default device (proxy)" if helpers.FOREIGN_DEFAULT else ""
    return f"linops test device: {helpers.DEVICE}{mode}"


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
