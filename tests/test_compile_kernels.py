"""The Triton kernels compile for the GPUs users have, on a machine without one: w2v.kernels.compile_check
lowers the steps' own launches to PTX and runs the ptxas in Triton's wheel for a T4 (sm_75) and an H100 (sm_90a).
A compile error, a spill, a compile past a minute or a PTX past a megabyte fails. The slow test compiles every
shape training launches (dim 100 and 300, groups 1 and 64, both context blocks, two path blocks) for every target."""
import importlib.util

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                reason="triton is not installed (requirements-dev.txt installs it)")

# What the suite compiles: each kernel once at its largest common shape; sg hs at --triton-group 64, the group
# docs/gpu.md recommends for hs, which compiled for more than 9 minutes before its programs looped over windows.
SUITE_CASES = [("sg", "ns", 300, 1, 10, 0), ("sg", "hs", 300, 64, 10, 22), ("cbow", "ns", 300, 1, 10, 0),
               ("cbow", "hs", 300, 1, 10, 22)]


def usable(found: dict) -> list[str]:
    from w2v.kernels.compile_check import problems

    out = problems(found)
    if "error" not in found:
        if found["seconds"] > 60:
            out.append(f"compiled in {found['seconds']:.0f} s")
        if found["ptx_bytes"] > 1_000_000:
            out.append(f"{found['ptx_bytes']:,} bytes of PTX")
    return out


@pytest.mark.parametrize("arch", ["sm_75", "sm_90a"])
@pytest.mark.parametrize("case", SUITE_CASES, ids=lambda c: f"{c[0]}-{c[1]}-group{c[3]}")
def test_the_kernel_compiles_without_spilling(case, arch):
    from w2v.kernels.compile_check import ARCHS, compile_launch, make_case

    found = compile_launch(make_case(*case).launch, ARCHS[arch])
    assert not usable(found), (case, arch, found)
    assert found["registers"] <= 255 and found["sm_warps"] >= 8, found
    assert found["atomics"] > 0 and found["loads"] > 0  # the PTX was read: the kernel adds with atomics


def test_occupancy_from_registers():
    from w2v.kernels.compile_check import ARCHS, occupancy

    # 96 registers: 3,072 a warp, 21 warps' worth of the 64K file, 5 programs of 4 warps
    assert occupancy(ARCHS["sm_75"], 96, 2048, 4) == {"sm_warps": 20, "max_warps": 32, "limit": "registers"}
    assert occupancy(ARCHS["sm_75"], 64, 16, 4)["sm_warps"] == 32  # the T4's 32 warps
    assert occupancy(ARCHS["sm_90a"], 64, 16, 4)["sm_warps"] == 32  # 64 registers: half the H100's 64 warps
    assert occupancy(ARCHS["sm_90a"], 32, 16, 4)["sm_warps"] == 64
    assert occupancy(ARCHS["sm_86"], 40, 16, 4) == {"sm_warps": 48, "max_warps": 48, "limit": "warps"}
    assert occupancy(ARCHS["sm_80"], 32, 60_000, 4)["limit"] == "shared"


def test_launches_sharing_a_kernel_compile_once():
    """dim is a run-time argument of the sg kernels: dim 100 and 300 are one compiled kernel; CBOW's row block
    follows dim (128 and 512 columns), two kernels."""
    from w2v.kernels.compile_check import kernel_key, make_case

    assert kernel_key(make_case("sg", "ns", 100, 1, 10, 0).launch) == kernel_key(make_case("sg", "ns", 300, 1, 10,
                                                                                            0).launch)
    assert kernel_key(make_case("cbow", "ns", 100, 1, 10, 0).launch) != kernel_key(make_case("cbow", "ns", 300, 1,
                                                                                              10, 0).launch)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["sm_75", "sm_90a"])
def test_every_training_shape_compiles(arch, capsys):
    from w2v.kernels.compile_check import check, training_cases

    results = check(training_cases(), [arch], timeout=120)
    bad = [(labels[0], problem) for labels, _, found in results for problem in usable(found)]
    assert not bad, bad
