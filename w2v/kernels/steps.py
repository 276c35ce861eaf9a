"""The table of training steps: every (model, loss, kernel) that train.py can train, registered once.

A step trains one batch of windows (batch.WindowBatch: contexts, one target per window, offsets) in place and
returns its summed loss:
    step(batch, lr_start, lr_end, batch_seed) -> float
the learning rate falling linearly from lr_start to lr_end across the batch; batch_seed seeds the negatives a step
draws itself (train.batch_seed, so a resumed run draws the same).

Kernels: "window", the numba kernels (cpu.py), CPU only, a window at a time with its negatives drawn inside the
kernel; "torch", the batched steps (torch_steps.py) in micro-batches, which run on any device; "triton", the fused
kernels (triton_steps.py), registered where Triton imports, on CUDA (and on the CPU only in Triton's interpreter,
TRITON_INTERPRET=1, for the tests). A new kernel is one `register` call. `--kernel auto` takes, for the device, the
first step registered for the model and loss that runs there: the CPU gets "window"; CUDA gets "triton" where
Triton imports, else "torch". A step marked `feed` is read through feed.WindowFeed's reader threads (the GPU
kernels, whose batches go to the device from pinned buffers); the others through a DataLoader.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from w2v.batch import WindowBatch
from w2v.common import fail
from w2v.kernels.cpu import cbow_hs_step_cpu, cbow_step_cpu, sg_window_hs_step_cpu, sg_window_step_cpu
from w2v.kernels.torch_steps import (cbow_hs_step_torch, cbow_step_torch, sg_window_hs_step_torch, sg_window_step_torch,
                           window_negatives)
from w2v.huffman import HuffmanTree

Step = Callable[[WindowBatch, float, float, int], float]
# build(model, cfg, tree, unigram): the step on the model's device. cfg gives threads, loss_every, negatives,
# micro_batch / hs_micro_batch; tree is the Huffman tree (hs), unigram the alias table of the negatives (ns,
# unigram_table.py), on the model's device.
Build = Callable[[nn.Module, object, HuffmanTree | None, torch.Tensor | None], Step]


@dataclass(frozen=True)
class StepSpec:
    build: Build
    devices: frozenset[str] | None  # device types it runs on (torch.device.type); None: any
    micro_batched: bool  # updates a micro-batch of pairs from the same table values (--micro-batch sets its size)
    feed: bool = False  # read through feed.WindowFeed's threads (pinned buffers for the device), not a DataLoader

    def runs_on(self, device_type: str) -> bool:
        return self.devices is None or device_type in self.devices


STEPS: dict[tuple[str, str, str], StepSpec] = {}
CPU_ONLY = frozenset({"cpu"})


def register(model: str, loss: str, kernel: str, devices: frozenset[str] | None = None,
             micro_batched: bool = False, feed: bool = False) -> Callable[[Build], Build]:
    """Decorator: `build` makes the step of (model, loss, kernel)."""
    def add(build: Build) -> Build:
        key = (model, loss, kernel)
        if key in STEPS:
            raise ValueError(f"step {key} registered twice")
        STEPS[key] = StepSpec(build, devices, micro_batched, feed)
        return build
    return add


def kernel_names() -> list[str]:
    """The table's kernels in registration order."""
    return list(dict.fromkeys(kernel for _, _, kernel in STEPS))


def _kernels_on(model: str, loss: str, device_type: str) -> list[str]:
    return [kernel for (m, l, kernel), spec in STEPS.items() if (m, l) == (model, loss) and spec.runs_on(device_type)]


def _no_step(model: str, loss: str, kernel: str) -> None:
    built = ", ".join(f"--model {m} --loss {l} --kernel {k}" for m, l, k in STEPS)
    fail(f"no training step for --model {model} --loss {loss} --kernel {kernel} in this train.py "
         f"(there are: {built})")


def choose_kernel(kernel: str, device: torch.device, model: str, loss: str) -> str:
    """--kernel resolved for the device, model and loss: a kernel of the table, or one line saying why not. auto:
    the first step registered for the model and loss that runs on the device."""
    if kernel != "auto" and kernel not in kernel_names():
        fail(f"--kernel must be {', '.join(['auto', *kernel_names()])}, not {kernel!r}")
    if kernel == "auto":
        found = _kernels_on(model, loss, device.type)
        if not found:
            _no_step(model, loss, f"auto on {device.type}")
        return found[0]
    spec = STEPS.get((model, loss, kernel))
    if spec is None:
        _no_step(model, loss, kernel)
    if not spec.runs_on(device.type):
        others = _kernels_on(model, loss, device.type)
        where = "the CPU" if spec.devices == CPU_ONLY else ", ".join(sorted(spec.devices))
        ways = ([f"--kernel {' or '.join(others)}"] if others else []) + [f"--device {min(spec.devices)}"]
        instead = "use " + " or ".join(ways)
        fail(f"--kernel {kernel} runs on {where} only, not on {device.type}: {instead}")
    return kernel


def make_step(model_name: str, loss: str, kernel: str, model: nn.Module, cfg, tree: HuffmanTree | None = None,
              unigram: torch.Tensor | None = None) -> Step:
    """The step of (model_name, loss, kernel) on the model's device; one line naming the table's steps for a
    combination it has none for."""
    spec = STEPS.get((model_name, loss, kernel))
    if spec is None:
        _no_step(model_name, loss, kernel)
    return spec.build(model, cfg, tree, unigram)


def reads_feed(model: str, loss: str, kernel: str) -> bool:
    """Whether the step of (model, loss, kernel) is read through feed.WindowFeed (else a DataLoader)."""
    spec = STEPS.get((model, loss, kernel))
    return spec is not None and spec.feed


def micro_batched(kernel: str) -> bool:
    """Whether `kernel`'s steps update in micro-batches (so --micro-batch sizes them), by the table."""
    return any(spec.micro_batched for (_, _, name), spec in STEPS.items() if name == kernel)


def micro_batch(cfg, loss: str) -> int:
    """Pairs per update of a micro-batched step: --hs-micro-batch for hs (every path starts at the root, so the
    top nodes sum a micro-batch's stale gradients and want fewer pairs), else --micro-batch."""
    return cfg.hs_micro_batch if loss == "hs" else cfg.micro_batch


# --- the numba window kernels (cpu.py): tables shared with the model as numpy views --------------------

def _numba_ns(kernel) -> Build:
    """A numba ns kernel: negatives drawn inside it by unigram_draw from the batch seed and the window's index."""
    def build(model: nn.Module, cfg, tree: HuffmanTree | None, unigram: torch.Tensor | None) -> Step:
        input_w, output_w = model.input.weight.data.numpy(), model.output.weight.data.numpy()
        table = unigram.numpy()
        return lambda batch, lr_start, lr_end, seed: kernel(
            input_w, output_w, batch.window_target.numpy(), batch.context.numpy(), batch.window_starts.numpy(), table,
            cfg.negatives, lr_start, lr_end, seed, cfg.threads, cfg.loss_every)
    return build


def _numba_hs(kernel) -> Build:
    """A numba hs kernel: the target's Huffman path from the tree."""
    def build(model: nn.Module, cfg, tree: HuffmanTree | None, unigram: torch.Tensor | None) -> Step:
        input_w, inner_w = model.input.weight.data.numpy(), model.inner.weight.data.numpy()
        return lambda batch, lr_start, lr_end, seed: kernel(
            input_w, inner_w, batch.window_target.numpy(), batch.context.numpy(), batch.window_starts.numpy(),
            tree.paths, tree.codes, tree.lengths, lr_start, lr_end, cfg.threads, cfg.loss_every)
    return build


# --- the torch steps (torch_steps.py): the batch moved to the model's device --------------------------------

def _torch_ns(step) -> Build:
    """A torch ns step: one set of negatives per window, drawn on the model's device from the alias table by the
    batch seed and the window's index (`window_negatives`), the numba and Triton kernels' negatives."""
    def build(model: nn.Module, cfg, tree: HuffmanTree | None, unigram: torch.Tensor | None) -> Step:
        device = model.input.weight.device
        size = micro_batch(cfg, "ns")

        def torch_step(batch: WindowBatch, lr_start: float, lr_end: float, seed: int) -> float:
            return step(model, batch.window_target.to(device, non_blocking=True),
                        batch.context.to(device, non_blocking=True), batch.window_starts,
                        window_negatives(seed, unigram, batch.n_windows, cfg.negatives),
                        lr_start, lr_end, size)
        return torch_step
    return build


def _torch_hs(step) -> Build:
    """A torch hs step: the target's Huffman path, padded to the micro-batch's longest."""
    def build(model: nn.Module, cfg, tree: HuffmanTree | None, unigram: torch.Tensor | None) -> Step:
        device = model.input.weight.device
        size = micro_batch(cfg, "hs")
        return lambda batch, lr_start, lr_end, seed: step(
            model, batch.window_target.to(device, non_blocking=True), batch.context.to(device, non_blocking=True),
            batch.window_starts, tree, lr_start, lr_end, size)
    return build


# --- the Triton kernels (triton_steps.py): one launch per batch, negatives drawn inside as the numba kernels do --
# The batch is already on the device (feed.WindowFeed copies it) with its longest window known on the host, so a
# launch needs no device sync.

def _triton_ns(kernel) -> Build:
    def build(model: nn.Module, cfg, tree: HuffmanTree | None, unigram: torch.Tensor | None) -> Step:
        input_w, output_w = model.input.weight.data, model.output.weight.data
        return lambda batch, lr_start, lr_end, seed: kernel(
            input_w, output_w, batch, unigram, cfg.negatives, lr_start, lr_end, seed, cfg.loss_every,
            group=getattr(cfg, "triton_group", 1))
    return build


def _triton_hs(kernel) -> Build:
    """A Triton hs kernel: the tree's paths, codes and lengths copied to the tables' device once."""
    def build(model: nn.Module, cfg, tree: HuffmanTree | None, unigram: torch.Tensor | None) -> Step:
        input_w, inner_w = model.input.weight.data, model.inner.weight.data
        paths, codes, lengths = tree.tensors(input_w.device)
        return lambda batch, lr_start, lr_end, seed: kernel(
            input_w, inner_w, batch, paths, codes, lengths, lr_start, lr_end, cfg.loss_every,
            group=getattr(cfg, "triton_group", 1))
    return build


try:  # Triton is a development requirement (requirements-dev.txt): a CPU-only install has no triton kernel
    from w2v.kernels.triton_steps import (INTERPRETED, cbow_hs_step_triton, cbow_step_triton, sg_window_hs_step_triton,
                                sg_window_step_triton)
except ImportError:
    sg_window_step_triton = None

# The table. Registration order is --kernel auto's preference on a device.
register("sg", "ns", "window", CPU_ONLY)(_numba_ns(sg_window_step_cpu))
register("sg", "hs", "window", CPU_ONLY)(_numba_hs(sg_window_hs_step_cpu))
register("cbow", "ns", "window", CPU_ONLY)(_numba_ns(cbow_step_cpu))
register("cbow", "hs", "window", CPU_ONLY)(_numba_hs(cbow_hs_step_cpu))
if sg_window_step_triton is not None:
    TRITON_DEVICES = frozenset({"cuda", "cpu"}) if INTERPRETED else frozenset({"cuda"})
    register("sg", "ns", "triton", TRITON_DEVICES, feed=True)(_triton_ns(sg_window_step_triton))
    register("cbow", "ns", "triton", TRITON_DEVICES, feed=True)(_triton_ns(cbow_step_triton))
    register("sg", "hs", "triton", TRITON_DEVICES, feed=True)(_triton_hs(sg_window_hs_step_triton))
    register("cbow", "hs", "triton", TRITON_DEVICES, feed=True)(_triton_hs(cbow_hs_step_triton))
register("sg", "ns", "torch", micro_batched=True)(_torch_ns(sg_window_step_torch))
register("sg", "hs", "torch", micro_batched=True)(_torch_hs(sg_window_hs_step_torch))
register("cbow", "ns", "torch", micro_batched=True)(_torch_ns(cbow_step_torch))
register("cbow", "hs", "torch", micro_batched=True)(_torch_hs(cbow_hs_step_torch))
