"""Test helpers: arrays on each backend (on the test device), dense references, tolerances.

The test device: ``pytest --device cuda`` (or ``LINOPS_TEST_DEVICE=cuda``; the option wins) puts
every torch tensor and jax array the helpers build on that device; NumPy ignores it. The default is
the CPU. ``--foreign-default`` (or ``LINOPS_TEST_FOREIGN_DEFAULT=1``) also moves the frameworks'
*default* device away from the test device for the run (torch: ``meta``; jax: test arrays on a second
CPU device), so library code that allocates on the default device fails on a CPU-only machine just as
it would against a GPU. Tests take the device from :func:`device_for`, never a literal ``"cpu"``.
"""

from __future__ import annotations

import os

import numpy as np

BACKENDS = ("numpy", "jax", "torch")
TOL = {"float64": 1e-8, "float32": 2e-3, "complex128": 1e-8, "complex64": 2e-3}

# the device spec ("cpu", "cuda", "cuda:1", "gpu", "cpu:1", ...) and the proxy flag; conftest's
# ``configure_device`` overrides them from the command line before any test module is imported
DEVICE = os.environ.get("LINOPS_TEST_DEVICE", "").strip() or "cpu"
FOREIGN_DEFAULT = os.environ.get("LINOPS_TEST_FOREIGN_DEFAULT", "").strip().lower() not in ("", "0", "false", "no")
_RESOLVED: dict = {}  # backend -> the framework's device object for DEVICE


def _split(spec: str) -> tuple[str, int | None]:
    kind, _, index = spec.partition(":")
    return kind.strip().lower(), (int(index) if index else None)


def _torch_device(spec: str):
    import torch

    kind, index = _split(spec)
    kind = "cuda" if kind == "gpu" else kind
    if kind == "cpu":  # torch has one CPU device: "cpu:1" means the CPU
        return torch.device("cpu")
    return torch.device(kind, index) if index is not None else torch.device(kind)


def _jax_device(spec: str):
    import jax

    kind, index = _split(spec)
    platform = "gpu" if kind in ("cuda", "gpu", "rocm") else kind
    devices = jax.devices(platform)
    if FOREIGN_DEFAULT and index is None and devices[0] == jax.devices()[0] and len(devices) > 1:
        return devices[1]  # proxy: a device other than the default one (the lead's 8 host devices)
    return devices[index or 0]


def configure_device(spec: str | None = None, foreign_default: bool | None = None) -> None:
    """Set the test device (and proxy mode) for this process; conftest calls it once per run.

    In proxy mode torch's default device becomes ``meta`` (unless the test device is meta) and jax's
    default device stays ``jax.devices()[0]`` while test arrays go to another device (if the test
    device is the default one and no other device of its platform exists, jax's default moves to the
    CPU instead).
    """
    global DEVICE, FOREIGN_DEFAULT
    if spec:
        DEVICE = spec
    if foreign_default is not None:
        FOREIGN_DEFAULT = foreign_default
    _RESOLVED.clear()
    if not FOREIGN_DEFAULT:
        return
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and device_for("torch").type != "meta":
        torch.set_default_device("meta")
    try:
        import jax
    except ImportError:
        return
    device = device_for("jax")
    if device == jax.devices()[0] and device.platform != "cpu":
        jax.config.update("jax_default_device", jax.devices("cpu")[0])


def device_for(backend: str):
    """The device the tests put ``backend``'s arrays on: a ``torch.device``, a jax ``Device``, or
    ``None`` for NumPy."""
    if backend == "numpy":
        return None
    if backend not in _RESOLVED:
        _RESOLVED[backend] = {"torch": _torch_device, "jax": _jax_device}[backend](DEVICE)
    return _RESOLVED[backend]


def tdev():
    """The torch device of the tests (for ``torch.zeros(..., device=tdev())``)."""
    return device_for("torch")


def jdev():
    """The jax device of the tests (for ``jax.device_put(x, jdev())``)."""
    return device_for("jax")


def on_device(x, backend: str):
    """A backend array (or anything ``jax.device_put`` / ``Tensor.to`` takes) moved to the test device."""
    if backend == "jax":
        import jax

        return jax.device_put(x, device_for("jax"))
    if backend == "torch":
        return x.to(device_for("torch"))
    return x


def to_backend(x, backend: str, dtype: str | None = None):
    """A numpy array (or scalar) as an array of ``backend`` with ``dtype`` (default: keep), on the
    test device."""
    x = np.asarray(x)
    if dtype is not None:
        x = x.astype(dtype)
    if backend == "numpy":
        return x
    if backend == "jax":
        import jax

        return jax.device_put(x, device_for("jax"))
    if backend == "torch":
        import torch

        return torch.as_tensor(x, device=device_for("torch"))
    raise ValueError(backend)


def jarr(x, dtype: str | None = None):
    """``to_backend(x, "jax", dtype)``: a numpy array, list or scalar as a jax array on the test device."""
    return to_backend(x, "jax", dtype)


def to_numpy(x):
    """Any backend's array (or a LinearOperator) as a numpy array."""
    import linops as lo

    if isinstance(x, lo.LinearOperator):
        x = x.to_dense()
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def assert_on_device(x):
    """A torch tensor or single-device jax array ``x`` lives on the test device (anything else passes).

    :func:`assert_close` checks this in a device run (a ``--device`` other than the CPU, or the proxy)."""
    module = type(x).__module__
    if module.startswith("torch"):
        assert x.device == device_for("torch"), f"result on {x.device}, expected {device_for('torch')}"
    elif module.startswith(("jax", "jaxlib")) and hasattr(x, "devices"):
        devices = x.devices()
        assert len(devices) > 1 or devices == {device_for("jax")}, f"result on {devices}, expected {device_for('jax')}"


def assert_close(actual, expected, dtype="float64", scale=1.0):
    """Relative closeness at the tolerance of ``dtype`` (and, in a device run, ``actual`` on the test
    device)."""
    import linops as lo

    if isinstance(actual, lo.LinearOperator):
        actual = actual.to_dense()
    if FOREIGN_DEFAULT or _split(DEVICE) != ("cpu", None):
        assert_on_device(actual)
    actual, expected = to_numpy(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    tol = TOL[str(dtype)] * scale
    norm = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    err = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    assert err <= tol * norm, f"max abs error {err:.3g} > {tol * norm:.3g}"


def count_host_reads(monkeypatch, names=("item", "__bool__", "__float__", "__int__")) -> list[str]:
    """Patch torch.Tensor's host reads ``names`` to record each call's name in the returned list.

    A read that re-enters itself (a torch function mode, such as the proxy's default device, routes
    ``Tensor.__bool__`` back through the patched method) counts once.
    """
    import torch

    reads, depth = [], [0]

    def counting(name, original):
        def read(self, *args, **kwargs):
            if not depth[0]:
                reads.append(name)
            depth[0] += 1
            try:
                return original(self, *args, **kwargs)
            finally:
                depth[0] -= 1

        return read

    for name in names:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    return reads


def random_spd(rng, n, cond=10.0):
    """A random symmetric positive-definite n×n matrix with condition number about ``cond``."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.geomspace(1.0, cond, n)) @ Q.T


def plan_rules(fn, *args, **kwargs) -> list[str]:
    """The rule names ``lo.explain`` records for a call (to check that a structured path ran)."""
    import linops as lo

    return [node.rule for node in lo.explain(fn, *args, **kwargs).walk()]


def backend_dtype(backend: str, dtype: str):
    """The dtype object a user of ``backend`` would pass to a constructor."""
    if backend == "numpy":
        return np.dtype(dtype)
    if backend == "jax":
        import jax.numpy as jnp

        return getattr(jnp, dtype)
    import torch

    return getattr(torch, dtype)
