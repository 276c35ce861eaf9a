"""bench/billion.py's reading of train.py's progress: the pairs/s it reports from time-stamped tqdm updates."""
from __future__ import annotations

import io

from tqdm import tqdm

import billion


def test_progress_pattern_reads_tqdm_bar_with_unit_scale():
    stream = io.StringIO()
    bar = tqdm(total=3_760_000_000, unit="pair", unit_scale=True, desc="train", file=stream, mininterval=0)
    bar.update(45_200_000)
    bar.set_postfix(epoch=1, loss="4.123", lr="0.03990")
    bar.close()
    line = stream.getvalue().split("\r")[-1]
    match = billion.PROGRESS.search(line)
    assert match is not None and line.startswith("train")
    assert float(match.group(1)) * billion.SCALE[match.group(2)] == 45_200_000
    assert float(match.group(3)) * billion.SCALE[match.group(4)] == 3_760_000_000
    assert billion.LOSS.search(line).group(1) == "4.123"


def test_rates_leave_out_warmup_and_pauses_and_split_by_writer():
    started = 100.0
    updates = [(started + 30.0, 0.0, True, 4.0)]  # start-up: no progress for 30 s
    t, pairs = started + 31.0, 0.0
    for second in range(100):  # 1,000 pairs/s while the writer runs, then 2,000/s
        writer = second < 60
        pairs += 1_000 if writer else 2_000
        updates.append((t, pairs, writer, 3.0))
        t += 1.0
    # a 10 s pause (a checkpoint) then 10 more seconds at 2,000/s
    t += 9.0
    for _ in range(10):
        pairs += 2_000
        updates.append((t, pairs, False, 2.9))
        t += 1.0
    result = billion.rates(updates, started)
    assert result["first_progress_s"] == 31.0
    # the slope starts WARMUP_S (20 s) after the first progress
    assert result["pairs_per_s_with_writer"] == 1_000 and result["seconds_with_writer"] == 39.0
    assert result["pairs_per_s_without_writer"] == 2_000
    assert result["paused_s"] == 10.0
    first, last = updates[21], updates[-1]
    assert result["steady_pairs_per_s"] == round((last[1] - first[1]) / (last[0] - first[0]))
    assert result["pairs_per_s_between_pauses"] == round((last[1] - first[1]) / (last[0] - first[0] - 10.0))


def test_rates_without_progress_report_only_the_updates():
    assert billion.rates([(1.0, 5.0, False, None), (2.0, 5.0, False, None)], 0.0) == {"updates": 2}


def test_stage_commands_write_the_default_codec_and_read_back_through_this_script(tmp_path):
    command = billion.stage_command("pairs_dataset", tmp_path, tmp_path / "corpus.parquet")
    assert command[command.index("--compression") + 1] == "lz4"  # the pipeline's default codec
    for stage in ("read_loader", "read_feed"):
        command = billion.stage_command(stage, tmp_path, tmp_path / "corpus.parquet")
        assert command[-4:] == ["--read-draw", str(tmp_path), "--stage", stage]
        assert stage in billion.STAGES and billion.UNITS[stage] == ("pairs", "pairs/s")
