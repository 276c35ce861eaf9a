"""Memory traffic and kernel launches of a torch step, tallied op by op (gpu_check.py's traffic model).

Every aten op that is not a view counts as one launch (on CUDA one kernel; cuBLAS bmm one or a few) and moves its
inputs read plus its outputs written, as if nothing stayed in cache between ops: a model for projections, not a
measurement of a GPU.
"""
from __future__ import annotations

import torch
import torch.utils._pytree
from torch.utils._python_dispatch import TorchDispatchMode


VIEW_OPS = {"view", "_unsafe_view", "reshape", "unsqueeze", "squeeze", "transpose", "t", "permute", "slice", "select",
            "expand", "alias", "as_strided", "detach", "lift_fresh", "split", "unbind", "_reshape_alias"}
GATHER_OPS = {"index", "index_select", "embedding"}  # read only the rows they return, not the whole table
SCATTER_OPS = {"index_add", "index_add_", "index_put_", "scatter_add_"}  # read-modify-write of the rows they touch


def distinct_bytes(tensor: torch.Tensor) -> int:
    """Bytes a kernel has to read for this argument: a broadcast (stride-0) dimension is read once."""
    numel = 1
    for size, stride in zip(tensor.shape, tensor.stride()):
        if stride != 0:
            numel *= size
    return numel * tensor.element_size()


class TrafficCount(TorchDispatchMode):
    """Tallies every aten op a step runs: one launch per op that is not a view, and the bytes it moves if every
    op reads its inputs from memory and writes its outputs back (no cache reuse between ops, a gathered row
    read once). On CUDA each such op is one kernel launch (cuBLAS bmm: one or a few)."""

    def __init__(self):
        super().__init__()
        self.launches, self.bytes, self.ops = 0, 0, {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if name in VIEW_OPS:
            return out
        tensors = [a for a in torch.utils._pytree.tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
        outputs = [o for o in torch.utils._pytree.tree_leaves(out) if isinstance(o, torch.Tensor)]
        if name in GATHER_OPS:
            moved = 2 * sum(o.nbytes for o in outputs) + sum(t.nbytes for t in tensors[1:])
        elif name in SCATTER_OPS:
            index, source = tensors[1], tensors[2]
            moved = 3 * distinct_bytes(source) + index.nbytes
        else:
            moved = sum(distinct_bytes(t) for t in tensors) + sum(o.nbytes for o in outputs)
        self.launches += 1
        self.bytes += moved
        self.ops[name] = self.ops.get(name, 0) + 1
        return out
