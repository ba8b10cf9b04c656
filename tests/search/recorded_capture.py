"""A CPU stand-in for CUDA graph capture, to test captured simulations without a GPU.

`capture(fn)` records the ATen ops `fn` runs with the tensors they read and make, then
puts back every tensor the ops wrote in place, as if nothing had run (a CUDA capture only
records). The replay it returns runs the recorded ops again on the same tensors, copying
fresh results into the recorded ones, and runs no Python of `fn`: what a CUDA graph does.
So a simulation that keeps state in a new tensor, reads a tensor of an earlier search, or
decides anything in Python from a tensor's value replays wrongly here as on a GPU; a read
of a device value on the host, or a data-dependent shape, fails the capture as CUDA's would.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

aten = torch.ops.aten
# Ops that wait for the device or make a shape from data: a capture on CUDA fails at them.
HOST_READS = {
    aten._local_scalar_dense.default,
    aten.is_nonzero.default,
    aten.equal.default,
    aten.nonzero.default,
    aten.masked_select.default,
}


class HostReadInCapture(RuntimeError):
    pass


def _written(func, args, kwargs) -> list[torch.Tensor]:
    """The tensors an op writes in place (arguments its schema marks as written)."""
    written = []
    for position, argument in enumerate(func._schema.arguments):
        if argument.alias_info is None or not argument.alias_info.is_write:
            continue
        value = args[position] if position < len(args) else kwargs.get(argument.name)
        if isinstance(value, torch.Tensor):
            written.append(value)
    return written


class _Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops: list[tuple] = []
        self.before: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in HOST_READS:
            raise HostReadInCapture(f"{func} inside a captured simulation")
        self.before.extend((tensor, tensor.clone()) for tensor in _written(func, args, kwargs))
        out = func(*args, **kwargs)
        self.ops.append((func, args, kwargs, out))
        return out


class RecordedCapture:
    """`warm_up(fn)` and `capture(fn) -> replay` with the interface of the search's CUDA
    graph capture; counts what it was asked to do."""

    def __init__(self):
        self.warm_ups = self.captures = self.replays = 0

    def warm_up(self, simulation) -> None:
        self.warm_ups += 1
        simulation()

    def capture(self, simulation):
        self.captures += 1
        recorder = _Recorder()
        with recorder:
            simulation()
        for tensor, value in reversed(recorder.before):
            tensor.copy_(value)
        ops = recorder.ops

        def replay() -> None:
            self.replays += 1
            for func, args, kwargs, recorded in ops:
                fresh = func(*args, **kwargs)
                for new, old in zip(tree_flatten(fresh)[0], tree_flatten(recorded)[0]):
                    if isinstance(old, torch.Tensor) and new.data_ptr() != old.data_ptr():
                        old.copy_(new)

        return replay
