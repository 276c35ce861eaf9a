"""The fused Triton kernels (w2v/kernels/triton_steps.py, --kernel triton), proven on the CPU in Triton's interpreter: the
tables after a batch of real windows equal the numba window kernels' on one thread (sg and cbow, ns and hs), and
train.py --kernel triton trains the vectors train.py --kernel window trains (sg, ns and hs). The interpreter runs in a process of its own (tests/triton_checks.py, TRITON_INTERPRET=1), so the
setting, which Triton reads once when first imported, reaches no other test."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import convert_to_int
import prep
import train
from w2v.kernels import steps
from w2v.common import StageError
from word2vec import SkipGram
from helpers import TRAIN_ARGS, run_stages, write_corpus

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                reason="triton is not installed (requirements-dev.txt installs it)")
TESTS = Path(__file__).resolve().parent
SAMPLE = TESTS.parent / "sample" / "taiga_ud.txt"


def interpreted(check: str, *arguments: str) -> dict:
    """tests/triton_checks.py CHECK ARGUMENTS under TRITON_INTERPRET=1; its JSON line, or the test fails with its
    output."""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, str(TESTS / "triton_checks.py"), check, *arguments], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def sample_ids(tmp_path_factory) -> Path:
    """prep.py and convert_to_int.py on the shipped sample (make demo's --min-count 3)."""
    folder = tmp_path_factory.mktemp("sample")
    prep.main(["--dataset", str(SAMPLE), "--data-dir", str(folder), "--num-proc", "1"])
    convert_to_int.main(["--data-dir", str(folder), "--num-proc", "1", "--min-count", "3"])
    return folder


def test_the_triton_numba_and_torch_draws_of_a_negative_are_the_same_word():
    # triton_steps.unigram_draw (inside the ns kernels) against cpu.unigram_draws and torch_steps.unigram_draws,
    # bit for bit, on 70,001 words and on 3, at seeds up to 2^63 - 1 and counters past 2^40
    found = interpreted("negative_draws")
    assert len(found) == 6
    for case, result in found.items():
        assert result["triton_differs"] == 0 and result["torch_differs"] == 0, (case, result)
        assert result["distinct"] == 3 if case.startswith("3 ") else result["distinct"] > 10_000


@pytest.mark.slow
def test_the_kernel_on_real_windows_equals_the_cpu_window_kernel_on_one_thread(sample_ids):
    found = interpreted("sample_windows", str(sample_ids))
    assert found["windows"] >= 97 and found["longest"] >= 8  # contexts past one 8-row block: BLOCK_K 16
    assert found["rows_moved"] > 100 and found["largest_move"] > 0.01  # the batch moves the tables
    assert found["input_error"] < 1e-5 and found["output_error"] < 1e-5, found
    assert found["triton_loss"] == pytest.approx(found["cpu_loss"], rel=1e-5)
    # 8 windows a program, one after another: the same update
    assert found["group_input_error"] < 1e-5 and found["group_output_error"] < 1e-5, found


@pytest.mark.slow
def test_the_cbow_kernel_on_real_windows_equals_the_cpu_cbow_kernel_on_one_thread(sample_ids):
    found = interpreted("cbow_sample_windows", str(sample_ids))
    assert found["windows"] == 40 and found["rows_moved"] > 50 and found["largest_move"] > 0.01
    assert found["input_error"] < 1e-5 and found["output_error"] < 1e-5, found
    assert found["triton_loss"] == pytest.approx(found["cpu_loss"], rel=1e-5)


@pytest.mark.slow
def test_the_sg_hs_kernel_on_real_windows_equals_the_cpu_hs_window_kernel_on_one_thread(sample_ids):
    found = interpreted("sg_hs_sample_windows", str(sample_ids))
    assert found["windows"] == 65 and found["longest"] > 8  # a batch edge inside a window; BLOCK_K 16
    assert found["longest_path"] > 8  # paths masked within a 16-slot block
    assert found["clipped"] > 0  # scores outside +-MAX_SCORE: hs gives them no gradient
    assert found["root_moved"] and found["inner_rows_moved"] > 100 and found["largest_move"] > 0.01
    assert found["input_error"] < 1e-5 and found["inner_error"] < 1e-5, found
    assert found["triton_loss"] == pytest.approx(found["cpu_loss"], rel=1e-5)
    # 8 windows a program: equal to the grouped update (the top levels' gradients summed over the program's
    # windows, added after them), which differs from the window-by-window one
    assert found["group_input_error"] < 1e-5 and found["group_inner_error"] < 1e-5, found
    assert found["group_differs_from_one"] > 1e-2


@pytest.mark.slow
def test_the_cbow_hs_kernel_on_real_windows_equals_the_cpu_cbow_hs_kernel_on_one_thread(sample_ids):
    found = interpreted("cbow_hs_sample_windows", str(sample_ids))
    assert found["windows"] == 41 and found["clipped"] > 0 and found["root_moved"]
    assert found["rows_moved"] > 50 and found["largest_move"] > 0.01
    assert found["input_error"] < 1e-5 and found["inner_error"] < 1e-5, found
    assert found["triton_loss"] == pytest.approx(found["cpu_loss"], rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ns", "hs"])
def test_train_with_the_triton_kernel_trains_what_the_cpu_kernel_trains(tmp_path, loss):
    # train.py end to end in the interpreter (its reader threads, its step from the table, its self-check), against
    # train.py with the numba window kernel, which learns planted clusters (test_window_kernels, test_pipeline): the
    # same negatives (both draw them by unigram_draw from the batch seed), the same windows, the same update window
    # by window, so the same vectors to float rounding.
    write_corpus(tmp_path / "corpus.txt", documents=150)
    pairs_per_draw = run_stages(tmp_path / "data", tmp_path / "corpus.txt", pairs_per_shard=20_000, draws=1)
    data_dir = tmp_path / "data"
    flags = ["--epochs", "1", *TRAIN_ARGS, "--loss", loss, "--lr", "0.05"]
    found = interpreted("train", str(data_dir), *flags, "--kernel", "triton", "--self-check", "on")
    assert found["kernel"] == "triton" and found["device"] == "cpu" and found["loss"] == loss
    assert found["pairs"] == pairs_per_draw[0]
    assert len(found["self_check"]) == 1 and "equals the torch step" in found["self_check"][0], found
    triton_vectors = np.load(data_dir / "model" / "embeddings.npy")
    start = SkipGram(len(triton_vectors), triton_vectors.shape[1], seed=1, loss=loss).input.weight.detach().numpy()
    train.main(["--data-dir", str(data_dir), *flags, "--kernel", "window"])
    cpu_vectors = np.load(data_dir / "model" / "embeddings.npy")
    assert np.abs(cpu_vectors - start).max() > 0.05  # the run moved the vectors
    assert np.abs(triton_vectors - cpu_vectors).max() < 1e-4


@pytest.fixture(scope="module")
def planted_pairs(tmp_path_factory) -> Path:
    """Stages 1-4 on a small planted corpus (test_pipeline's)."""
    folder = tmp_path_factory.mktemp("planted")
    write_corpus(folder / "corpus.txt", documents=200)
    run_stages(folder / "data", folder / "corpus.txt", draws=1)
    return folder / "data"


@pytest.mark.slow
@pytest.mark.parametrize("model, batch_size", [("sg", 500), ("cbow", 150)])
def test_the_kernels_from_a_lean_batch_equal_the_kernels_from_the_loaders_batch(planted_pairs, model, batch_size):
    # feed.py's batch (cut by its reader threads) against dataset.py's (through a DataLoader): the same programs in
    # the same order under the interpreter, so the tables match exactly
    found = interpreted("lean_batch", str(planted_pairs), model, str(batch_size))
    assert found["pairs"] == found["old_pairs"] == batch_size and found["windows"] == found["old_windows"] > 20
    assert found["rows_moved"] > 10
    assert found["input_difference"] == 0.0 and found["output_difference"] == 0.0, found
    assert found["new_loss"] == found["old_loss"]


def test_auto_takes_the_triton_kernels_on_cuda_for_every_model_and_loss_and_never_on_the_cpu():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    for model in ("sg", "cbow"):
        for loss in ("ns", "hs"):
            assert steps.choose_kernel("auto", cuda, model, loss) == "triton"
            assert steps.choose_kernel("auto", cpu, model, loss) == "window"
    with pytest.raises(StageError, match="--kernel triton runs on cuda only, not on cpu: use --kernel window or"):
        steps.choose_kernel("triton", cpu, "sg", "ns")


def test_triton_group_must_be_a_power_of_two(tmp_path):
    import train

    with pytest.raises(StageError, match=r"^--triton-group must be a power of two \(1, 2, 4, ...\), got 3$"):
        train.main(["--data-dir", str(tmp_path), "--triton-group", "3"])


@pytest.mark.slow
def test_the_self_check_passes_every_triton_step_and_leaves_the_tables_as_they_were():
    found = interpreted("self_check", "none")
    for name in ("sg ns group 1", "sg ns group 64", "sg hs group 1", "sg hs group 64", "cbow ns group 1",
                 "cbow hs group 1"):
        assert found[name]["ok"] and found[name]["restored"], (name, found[name])
        assert found[name]["moved"] > 1e-3 and found[name]["error"] < 1e-4 * found[name]["moved"] + 1e-5
    assert found["auto_kernel"] == "triton" and found["named"] == "trained"


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["lr", "compile"])
def test_a_broken_triton_step_falls_back_to_torch_under_auto_and_stops_when_named(fault):
    found = interpreted("self_check", fault)
    assert not any(found[name]["ok"] for name in ("sg ns group 1", "sg hs group 64", "cbow hs group 1")), found
    assert all(found[name]["restored"] for name in ("sg ns group 1", "sg hs group 64", "cbow hs group 1"))
    assert found["auto_kernel"] == "torch"
    assert found["named"].startswith("self-check: the triton sg ns step") and "--kernel torch" in found["named"]
    assert ("failed: InterpreterError" if fault == "compile" else "differs from the torch step") in found["named"]


@pytest.mark.slow
def test_a_triton_step_that_writes_other_rows_stops_the_run_either_way():
    found = interpreted("self_check", "seed")
    assert "wrote rows outside the check batch's" in found["auto_kernel"]
    assert "wrote rows outside the check batch's" in found["named"]
