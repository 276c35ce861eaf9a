"""Compile every Triton kernel for the GPUs users have, on a machine without one.

    python -m w2v.kernels.compile_check                       # every kernel, every shape, sm_75 .. sm_90a
    python -m w2v.kernels.compile_check --archs sm_75 --groups 1 --dims 100

Triton compiles for a named target without a driver: `triton.compile(ASTSource(...), target=GPUTarget("cuda", 75,
32))` lowers a kernel to PTX and runs the ptxas shipped in the wheel, whose `-v` log gives registers per thread,
spill bytes and shared memory. The launches compiled are the steps' own (triton_steps.sg_ns_launch and its
siblings: the same block sizes, constexprs and num_warps a CUDA launch takes, from CPU tensors of the shapes
training gives), specialised as Triton's JIT specialises a launch's arguments (its own binder, a CUDA backend), so
what compiles here is what a GPU would compile at its first batch.

Per kernel and target the table gives: compile time (Triton's passes and ptxas), registers per thread, spill bytes
(stores + loads), shared memory, the occupancy those allow (resident warps per SM out of the SM's maximum: 64K
registers, allocated per warp in units of 256, GPU_WARPS warps a program, the SM's warp, block and shared-memory
limits) and, counted in the PTX, the global loads, stores and atomics of a program (static instructions: a loop's
body counts once, an unrolled loop's every copy). A kernel whose compile takes past --timeout seconds is reported
as such (each compile runs in a child process, killed with its ptxas).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch

# The compile works on the CPU: Triton's interpreter must be off in this process (it decides at import).
if os.environ.get("TRITON_INTERPRET", "0") == "1":
    raise SystemExit("error: compile_check compiles for GPU targets: run it without TRITON_INTERPRET=1")

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource, make_backend  # noqa: E402
from triton.runtime.jit import create_function_from_signature  # noqa: E402

from w2v.batch import WindowBatch  # noqa: E402
from w2v.kernels import triton_steps as ts  # noqa: E402


@dataclass(frozen=True)
class Arch:
    """An SM's limits (the CUDA C Programming Guide's table of compute capabilities)."""

    name: str
    capability: int
    cards: str
    max_warps: int  # resident warps per SM
    max_blocks: int  # resident blocks per SM
    shared_per_sm: int  # bytes
    registers: int = 65536  # 32-bit registers per SM
    register_unit: int = 256  # registers are allocated per warp in units of this many


ARCHS = {a.name: a for a in (
    Arch("sm_75", 75, "T4, RTX 20xx", 32, 16, 64 * 1024),
    Arch("sm_80", 80, "A100, A30", 64, 32, 164 * 1024),
    Arch("sm_86", 86, "A10, A40, RTX 30xx", 48, 16, 100 * 1024),
    Arch("sm_89", 89, "L4, L40S, RTX 40xx", 48, 24, 100 * 1024),
    Arch("sm_90a", 90, "H100, H200", 64, 32, 228 * 1024),
)}
DEFAULT_ARCHS = tuple(ARCHS)
# Training's shapes: dim 100 and 300; windows of up to 5 or 10 contexts a side cut at batch edges (--window 5
# gives up to 10 contexts: BLOCK_K 16; 8 or fewer share BLOCK_K 8); 5 negatives; Huffman paths of text8's tree
# (22 nodes: 32 slots) and of a vocabulary of a few million words (up to 40 nodes: 64 slots).
DEFAULT_DIMS = (100, 300)
DEFAULT_GROUPS = (1, 64)
DEFAULT_LONGEST = (8, 10)
DEFAULT_PATHS = (22, 40)
NEGATIVES = 5


@dataclass
class Case:
    """One launch to compile: a kernel at one shape."""

    model: str  # sg or cbow
    loss: str  # ns or hs
    dim: int
    group: int
    longest: int
    path: int  # the tree's longest path (hs), 0 for ns
    launch: ts.Launch = field(repr=False, default=None)

    @property
    def label(self) -> str:
        shape = f"dim {self.dim}"
        if self.model == "sg":
            shape += f" group {self.group} K<={self.longest}"
        if self.loss == "hs":
            shape += f" path {self.path}"
        return f"{self.model} {self.loss} {shape}"


def _batch(longest: int) -> WindowBatch:
    """A small batch of windows whose longest has `longest` contexts (the launch's shapes depend on that only)."""
    sizes = np.array([longest] + [max(1, longest // 2)] * 7, dtype=np.int32)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    n_pairs = int(starts[-1])
    return WindowBatch(torch.zeros(n_pairs, dtype=torch.int32), torch.zeros(len(sizes), dtype=torch.int32),
                       torch.from_numpy(starts), longest)


def make_case(model: str, loss: str, dim: int, group: int, longest: int, path: int, vocab: int = 64) -> Case:
    """The step's own launch (triton_steps' *_launch, on_gpu=True) from CPU tensors of this shape."""
    input_w, output_w = torch.zeros(vocab, dim), torch.zeros(vocab, dim)
    batch = _batch(longest)
    window_loss = torch.zeros(batch.n_windows)
    lr = (0.025, 0.0001)
    if loss == "ns":
        table = torch.zeros(1000, dtype=torch.int64)  # the alias table's entries
        seed = 2**62 + 12345
        if model == "sg":
            launch = ts.sg_ns_launch(input_w, output_w, batch, table, NEGATIVES, *lr, seed, 16, window_loss, True,
                                     group=group)
        else:
            launch = ts.cbow_ns_launch(input_w, output_w, batch, table, NEGATIVES, *lr, seed, 16, window_loss, True)
    else:
        paths = torch.zeros(vocab, path, dtype=torch.int32)  # HuffmanTree.tensors' dtypes
        codes = torch.zeros(vocab, path, dtype=torch.int8)
        lengths = torch.full((vocab,), path, dtype=torch.int64)
        if model == "sg":
            launch = ts.sg_hs_launch(input_w, output_w, batch, paths, codes, lengths, *lr, 16, window_loss, True,
                                     group=group)
        else:
            launch = ts.cbow_hs_launch(input_w, output_w, batch, paths, codes, lengths, *lr, 16, window_loss, True)
    return Case(model, loss, dim, group, longest, path, launch)


def training_cases(dims=DEFAULT_DIMS, groups=DEFAULT_GROUPS, longest=DEFAULT_LONGEST, paths=DEFAULT_PATHS,
                   models=("sg", "cbow"), losses=("ns", "hs")) -> list[Case]:
    """Every launch training makes at these shapes (CBOW has no group and one block for any window length)."""
    cases = []
    for model in models:
        for loss in losses:
            for dim in dims:
                for group in (groups if model == "sg" else (1,)):
                    for k in (longest if model == "sg" else (max(longest),)):
                        for path in (paths if loss == "hs" else (0,)):
                            cases.append(make_case(model, loss, dim, group, k, path))
    return cases


def specialised(launch: ts.Launch, target: GPUTarget):
    """The launch's (ASTSource, options) as Triton's JIT would make them for `target`: its binder specialises the
    arguments (int widths, 16-byte alignment, constexprs), its _pack_args gives the signature and attributes."""
    kernel = launch.kernel
    backend = make_backend(target)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound, specialization, options = binder(*launch.args, **launch.constants)
    options, signature, constexprs, attrs = kernel._pack_args(backend, dict(launch.constants), bound,
                                                              specialization, options)
    return ASTSource(kernel, signature, constexprs, attrs), options


def kernel_key(launch: ts.Launch) -> str:
    """What makes two launches one compiled kernel (the specialised source's hash)."""
    source, options = specialised(launch, GPUTarget("cuda", 80, 32))
    return source.hash() + str(sorted(options.__dict__.items()))


PTXAS_REGISTERS = re.compile(r"Used (\d+) registers")
PTXAS_SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")
PTXAS_STACK = re.compile(r"(\d+) bytes stack frame")


def ptx_counts(ptx: str) -> dict:
    """Global loads, stores and atomics in the PTX (static instructions)."""
    lines = ptx.splitlines()

    def count(pattern: str) -> int:
        rx = re.compile(pattern)
        return sum(1 for line in lines if rx.search(line))
    return {"loads": count(r"^\s*(@%p\d+\s+)?ld\.global"), "stores": count(r"^\s*(@%p\d+\s+)?st\.global"),
            "atomics": count(r"^\s*(@%p\d+\s+)?(atom|red)\.global"), "ptx_bytes": len(ptx)}


def compile_launch(launch: ts.Launch, arch: Arch) -> dict:
    """Compile one launch for `arch` (always, past Triton's cache, so ptxas runs and logs): its figures."""
    from triton import knobs
    target = GPUTarget("cuda", arch.capability, 32)
    source, options = specialised(launch, target)
    saved = knobs.compilation.always_compile, knobs.nvidia.dump_ptxas_log
    knobs.compilation.always_compile, knobs.nvidia.dump_ptxas_log = True, True
    log = io.StringIO()
    began = time.perf_counter()
    try:
        with contextlib.redirect_stdout(log):
            compiled = triton.compile(source, target=target, options=options.__dict__)
    finally:
        knobs.compilation.always_compile, knobs.nvidia.dump_ptxas_log = saved
    seconds = time.perf_counter() - began
    text = log.getvalue()
    registers = PTXAS_REGISTERS.search(text)
    spills = PTXAS_SPILLS.search(text)
    stack = PTXAS_STACK.search(text)
    found = {"seconds": seconds, "registers": int(registers.group(1)) if registers else None,
             "spill_bytes": (int(spills.group(1)) + int(spills.group(2))) if spills else None,
             "stack_bytes": int(stack.group(1)) if stack else None, "shared": int(compiled.metadata.shared),
             "warps": int(compiled.metadata.num_warps), **ptx_counts(compiled.asm["ptx"])}
    found.update(occupancy(arch, found["registers"] or 0, found["shared"], found["warps"]))
    return found


def occupancy(arch: Arch, registers: int, shared: int, warps: int) -> dict:
    """Resident warps per SM that registers, shared memory and the SM's limits allow, and what limits them."""
    per_warp = -(-registers * 32 // arch.register_unit) * arch.register_unit
    limits = {"registers": (arch.registers // per_warp) // warps if per_warp else arch.max_blocks,
              "warps": arch.max_warps // warps, "blocks": arch.max_blocks,
              "shared": arch.shared_per_sm // shared if shared else arch.max_blocks}
    blocks = min(limits.values())
    return {"sm_warps": blocks * warps, "max_warps": arch.max_warps,
            "limit": min(limits, key=lambda name: (limits[name], name != "warps"))}


def _child(launch: ts.Launch, arch: Arch, answer) -> None:
    os.setpgrp()  # ptxas joins this group, so a timeout kills it too
    try:
        answer.send(compile_launch(launch, arch))
    except Exception as error:  # noqa: BLE001 - reported as the kernel's failure
        answer.send({"error": f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:300]}"})


def compile_with_timeout(launch: ts.Launch, arch: Arch, timeout: float) -> dict:
    """compile_launch in a child process (fork), killed with its ptxas past `timeout` seconds."""
    context = multiprocessing.get_context("fork")
    mine, theirs = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(launch, arch, theirs))
    began = time.perf_counter()
    child.start()
    if mine.poll(timeout):
        found = mine.recv()
        child.join()
        return found
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.join()
    return {"error": f"timeout: still compiling after {time.perf_counter() - began:.0f} s", "seconds": timeout}


def problems(found: dict, min_share: float = 0.0) -> list[str]:
    """What makes a compile unusable: an error, a timeout, a spill, occupancy below min_share of the SM's."""
    if "error" in found:
        return [found["error"]]
    out = []
    if found["spill_bytes"]:
        out.append(f"spills {found['spill_bytes']} bytes")
    if found["sm_warps"] < min_share * found["max_warps"]:
        out.append(f"occupancy {found['sm_warps']}/{found['max_warps']} warps")
    return out


HEADER = ("| kernel, shape | arch | compile s | regs | spill B | smem B | warps/SM | limit | PTX kB | ld | st "
          "| atom |\n|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")


def row(label: str, arch: Arch, found: dict) -> str:
    if "error" in found:
        return f"| {label} | {arch.name} | {found.get('seconds', 0):.1f} | **{found['error']}** |||||||||"
    return (f"| {label} | {arch.name} | {found['seconds']:.1f} | {found['registers']} | {found['spill_bytes']} | "
            f"{found['shared']} | {found['sm_warps']}/{found['max_warps']} | {found['limit']} | "
            f"{found['ptx_bytes'] / 1000:.0f} | {found['loads']} | {found['stores']} | {found['atomics']} |")


def check(cases: list[Case], archs=DEFAULT_ARCHS, timeout: float = 120.0, out=sys.stdout) -> list[tuple]:
    """Compile every case for every arch (a kernel shared by several cases once) and print the table as it goes;
    [(case labels, arch, figures)]."""
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(kernel_key(case.launch), []).append(case)
    print(HEADER, file=out, flush=True)
    results = []
    for members in groups.values():
        label = members[0].label
        if len(members) > 1:  # e.g. the sg kernels: dim is a run-time argument, dim 100 and 300 one kernel
            label += " (= " + ", ".join(m.label for m in members[1:]) + ")"
        for name in archs:
            arch = ARCHS[name]
            found = compile_with_timeout(members[0].launch, arch, timeout)
            print(row(label, arch, found), file=out, flush=True)
            results.append(([m.label for m in members], arch.name, found))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=list(DEFAULT_ARCHS), choices=list(ARCHS))
    parser.add_argument("--dims", nargs="+", type=int, default=list(DEFAULT_DIMS))
    parser.add_argument("--groups", nargs="+", type=int, default=list(DEFAULT_GROUPS))
    parser.add_argument("--longest", nargs="+", type=int, default=list(DEFAULT_LONGEST),
                        help="contexts in a batch's longest window (sets BLOCK_K)")
    parser.add_argument("--paths", nargs="+", type=int, default=list(DEFAULT_PATHS),
                        help="the Huffman tree's longest path (sets hs's BLOCK_PATH)")
    parser.add_argument("--models", nargs="+", default=["sg", "cbow"], choices=["sg", "cbow"])
    parser.add_argument("--losses", nargs="+", default=["ns", "hs"], choices=["ns", "hs"])
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a compile may take")
    args = parser.parse_args(argv)
    cases = training_cases(args.dims, args.groups, args.longest, args.paths, args.models, args.losses)
    results = check(cases, args.archs, args.timeout)
    bad = [(labels[0], arch, p) for labels, arch, found in results for p in problems(found)]
    for label, arch, problem in bad:
        print(f"problem: {label} on {arch}: {problem}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
