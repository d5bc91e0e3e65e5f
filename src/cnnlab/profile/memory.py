"""Peak activation memory of inference, measured by following every tensor the forward pass creates.

A dispatch mode sees each operator's outputs; each new storage is counted while any tensor holding
it is alive. The peak is what the activations need at once, excluding weights and the input: the
number that decides whether a batch fits a device, and it does not depend on the allocator.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class _LiveTensors(TorchDispatchMode):
    def __init__(self, ignore: set[int]) -> None:
        super().__init__()
        self.ignore = ignore
        self.storage_bytes: dict[int, int] = {}
        self.storage_refs: dict[int, int] = {}
        self.tracked: set[int] = set()
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor):
                self._track(value)
        return out

    def _track(self, tensor: torch.Tensor) -> None:
        if id(tensor) in self.tracked:
            return
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if ptr in self.ignore or storage.nbytes() == 0:
            return
        self.tracked.add(id(tensor))
        if ptr not in self.storage_bytes:
            self.storage_bytes[ptr] = storage.nbytes()
            self.storage_refs[ptr] = 0
            self.current += storage.nbytes()
            self.peak = max(self.peak, self.current)
        self.storage_refs[ptr] += 1
        weakref.finalize(tensor, self._release, id(tensor), ptr)

    def _release(self, tensor_id: int, ptr: int) -> None:
        self.tracked.discard(tensor_id)
        self.storage_refs[ptr] -= 1
        if self.storage_refs[ptr] == 0:
            self.current -= self.storage_bytes.pop(ptr)
            del self.storage_refs[ptr]


def peak_activation_bytes(model: nn.Module, example: torch.Tensor) -> int:
    """Peak bytes of live activations during one inference forward pass on ``example``."""
    ignore = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    ignore.add(example.untyped_storage().data_ptr())
    was_training = model.training
    model.eval()
    tracker = _LiveTensors(ignore)
    try:
        with torch.inference_mode(), tracker:
            out = model(example)
            del out
    finally:
        model.train(was_training)
    return tracker.peak
