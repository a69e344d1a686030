"""The device mode shared by every benchmark: ``--device cpu`` (the default) or ``--device cuda[:i]``.

One :class:`Device` per run places the benchmark's torch and JAX arrays on the chosen device, times
calls with a synchronisation around the timed region (``torch.cuda.synchronize`` on an accelerator only,
so torch and NumPy timings on the CPU are what they were before the mode existed;
``jax.block_until_ready`` on the timed call's result always, since JAX dispatches asynchronously on
the CPU too) and reads the peak accelerator memory of a case (``torch.cuda.max_memory_allocated``, reset
per case; JAX: ``peak_bytes_in_use`` of the device's ``memory_stats``, which cannot be reset, so it
is the peak of the run so far). NumPy rows stay on the host whatever the device.

A script adds the option with :func:`add_argument` and builds the mode with :func:`from_args` (or,
without argparse, :func:`from_argv`), which also makes the chosen device JAX's default device, so that
arrays linops creates inside a JAX computation land there too. Torch's default device is left alone
(``torch.set_default_device`` adds a Python dispatch layer to every torch call and would distort the
timings); every torch array a benchmark builds names its device.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_argument(parser)
    >>> device = from_args(parser.parse_args(["--device", "cpu"]))
    >>> device.name, device.accelerated
    ('cpu', False)
    >>> seconds = device.median_time(lambda: sum(range(100)), repeats=3, number=2)
    >>> device.peak_bytes() is None   # no accelerator memory on the host
    True
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


class Device:
    """The device of one benchmark run: array placement, synchronised timing, peak memory.

    Example:
        >>> import numpy as np
        >>> cpu = Device("cpu")
        >>> cpu.torch(np.ones(3)).device.type, str(cpu.torch(np.ones(3), "float32").dtype)
        ('cpu', 'torch.float32')
    """

    def __init__(self, name: str = "cpu", cpu_time: bool = False):
        self.name = name
        self.accelerated = not name.startswith("cpu")
        # the clock of every timing: wall time, or (CPU only) this process's CPU time over all its threads
        self.cpu_time = cpu_time and not self.accelerated
        self.clock = time.process_time if self.cpu_time else time.perf_counter

    def __repr__(self) -> str:
        return f"Device({self.name!r})"

    # --- placement ----------------------------------------------------------------------------------
    @property
    def torch_device(self):
        """The ``torch.device`` of the run."""
        import torch

        return torch.device(self.name)

    @property
    def jax_device(self):
        """The JAX device of the run (``cuda:1`` is the second GPU JAX sees)."""
        import jax

        platform, _, index = self.name.partition(":")
        return jax.devices("gpu" if platform == "cuda" else platform)[int(index or 0)]

    def torch(self, a, dtype=None):
        """``a`` (a NumPy array, a scalar or a tensor) as a torch tensor on the device; ``dtype`` is a
        torch dtype or its name (``"float32"``)."""
        import torch

        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        return torch.as_tensor(a, dtype=dtype, device=self.torch_device)

    def jax(self, a, dtype=None):
        """``a`` as a JAX array committed to the device."""
        import jax
        import jax.numpy as jnp

        return jax.device_put(jnp.asarray(a, dtype=dtype), self.jax_device)

    def torch_kwargs(self) -> dict:
        """``{"device": ...}`` for torch factory functions (``torch.zeros(n, **device.torch_kwargs())``)."""
        return {"device": self.torch_device}

    def _jax_device_if_any(self):
        """The JAX device of the run when JAX is imported and has one (a CPU-only JAX beside a CUDA
        torch has none: then the torch rows run alone), else ``None``."""
        if "jax" not in sys.modules:
            return None
        try:
            return self.jax_device
        except RuntimeError:  # "Unknown backend gpu": no such platform in this JAX
            return None

    def activate(self) -> Device:
        """Make the device JAX's default (when JAX is imported and has it); returns ``self``."""
        device = self._jax_device_if_any()
        if device is not None:
            import jax

            jax.config.update("jax_default_device", device)
        return self

    # --- timing -------------------------------------------------------------------------------------
    def sync(self, out=None):
        """Wait for ``out``'s JAX arrays and, on an accelerator, for torch's queued work. Returns ``out``."""
        if "jax" in sys.modules and out is not None:
            import jax

            jax.block_until_ready(out)
        if self.accelerated and "torch" in sys.modules:
            import torch

            if torch.cuda.is_initialized():
                torch.cuda.synchronize(self.torch_device)
        return out

    def time_once(self, fn):
        """``(seconds, fn())`` for one call, synchronised on an accelerator."""
        self.sync()
        start = self.clock()
        out = self.sync(fn())
        return self.clock() - start, out

    def median_time(self, fn, repeats: int = 5, number: int = 1, warmup: bool = True) -> float:
        """Median over ``repeats`` of the mean time of ``number`` calls (one untimed warm-up call first)."""
        if warmup:
            self.sync(fn())
        times = []
        for _ in range(repeats):
            self.sync()
            start = self.clock()
            for _ in range(number):
                out = fn()
            self.sync(out)
            times.append((self.clock() - start) / number)
        return statistics.median(times)

    def median_times(self, fns: dict, repeats: int = 5, number: int = 1) -> dict:
        """``{name: seconds}``: :meth:`median_time` of several functions run in alternation (after one
        warm-up call each), so that load from other processes falls on all of them alike."""
        for fn in fns.values():
            self.sync(fn())
        times = {name: [] for name in fns}
        for _ in range(repeats):
            for name, fn in fns.items():
                self.sync()
                start = self.clock()
                for _ in range(number):
                    out = fn()
                self.sync(out)
                times[name].append((self.clock() - start) / number)
        return {name: statistics.median(t) for name, t in times.items()}

    # --- memory -------------------------------------------------------------------------------------
    def reset_peak(self) -> None:
        """Start a new peak-memory window (torch on CUDA; JAX's peak cannot be reset)."""
        if self.accelerated and "torch" in sys.modules:
            import torch

            if torch.cuda.is_initialized():
                torch.cuda.reset_peak_memory_stats(self.torch_device)

    def peak_bytes(self) -> int | None:
        """The peak accelerator memory: the larger of torch's (since :meth:`reset_peak`) and JAX's
        (since the start); ``None`` on the CPU."""
        if not self.accelerated:
            return None
        peaks = []
        if "torch" in sys.modules:
            import torch

            if torch.cuda.is_initialized():
                peaks.append(torch.cuda.max_memory_allocated(self.torch_device))
        device = self._jax_device_if_any()
        if device is not None:
            stats = device.memory_stats() or {}
            peaks.append(stats.get("peak_bytes_in_use", 0))
        return max(peaks, default=None)

    def peak_text(self) -> str:
        """The peak accelerator memory in MiB, or ``"-"`` on the CPU."""
        peak = self.peak_bytes()
        return "-" if peak is None else f"{peak / 2**20:.0f} MiB"

    def peak_column(self) -> str:
        """``" peak <MiB>"`` for a table row on an accelerator (the peak since the last call, for torch;
        then a new window starts), ``""`` on the CPU, so that CPU tables keep their columns."""
        if not self.accelerated:
            return ""
        text = f" peak {self.peak_text()}"
        self.reset_peak()
        return text


def add_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--device`` (``cpu`` by default, ``cuda`` or ``cuda:i``) to ``parser``."""
    parser.add_argument("--device", default="cpu",
                        help="where torch and JAX arrays live: cpu (default), cuda or cuda:i; NumPy rows stay "
                             "on the host")
    parser.add_argument("--cpu-time", action="store_true",
                        help="on the CPU, time by this process's CPU time (all its threads) instead of the wall "
                             "clock: robust against other processes on a shared machine")


def from_args(args: argparse.Namespace) -> Device:
    """The :class:`Device` of parsed arguments, activated (JAX's default device set)."""
    return Device(args.device, getattr(args, "cpu_time", False)).activate()


def from_argv(argv: list[str] | None = None) -> Device:
    """The :class:`Device` named by ``--device`` in ``argv`` (``sys.argv[1:]`` by default), for scripts
    that take no other option; ``--help`` says what it takes."""
    parser = argparse.ArgumentParser()
    add_argument(parser)
    return from_args(parser.parse_args(sys.argv[1:] if argv is None else argv))
