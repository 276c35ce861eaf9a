"""bench/loader_feed.py: what the readers ship per pair, its floors and its --required-copy."""
import json

import pytest

from helpers import run_stages, write_corpus


@pytest.fixture(scope="module")
def corpus_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("feed")
    clusters = write_corpus(folder / "corpus.txt", documents=1500)
    pairs_per_draw = run_stages(folder / "data", folder / "corpus.txt", pairs_per_shard=20_000, draws=2)
    return folder / "data", pairs_per_draw, clusters


@pytest.mark.slow
def test_loader_feed_ships_the_contexts_and_one_target_and_offset_per_window(corpus_data, tmp_path):
    import pyarrow.parquet as pq

    import loader_feed

    data_dir, pairs_per_draw, _ = corpus_data
    common = ["--data-dir", str(data_dir), "--num-workers", "0", "--passes", "1", "--batch-size", "5000",
              "--device", "cpu"]
    lean = loader_feed.main(common)  # every batch of draw 0 after the first
    old = loader_feed.main(common + ["--feed", "loader"])
    for figures in (lean, old):
        assert figures["pairs"] == pairs_per_draw[0] - 5000 and figures["batches"] == -(-figures["pairs"] // 5000)
        assert figures["pairs_per_s"] > 0
    per_window, per_batch = 1 / lean["pairs_per_window"], 1 / 5000
    # the lean feed: int32 context per pair, int32 target and int32 offset per window (one more offset a batch);
    # the DataLoader's: the same window batch
    assert lean["bytes_per_pair_shipped"] == pytest.approx(4 + 8 * per_window + 4 * per_batch, abs=0.01)
    assert old["bytes_per_pair_shipped"] == pytest.approx(4 + 8 * per_window + 4 * per_batch, abs=0.01)
    assert lean["cpu_s_per_m_pairs"] > 0 and old["cpu_s_per_m_pairs"] is None
    floors = loader_feed.main(["--data-dir", str(data_dir), "--floors"])
    assert floors["pairs"] > 0 and floors["reader_pairs_per_cpu_s"] > 0 and floors["memcpy_gb_per_s"] > 0
    # --required-copy: the same pairs, in the same row groups, with columns that cannot be null
    loader_feed.main(["--data-dir", str(data_dir), "--required-copy", str(tmp_path / "required")])
    for shard in json.loads((data_dir / "pairs" / "meta.json").read_text())["shards"]:
        before, after = pq.ParquetFile(data_dir / "pairs" / shard["file"]), pq.ParquetFile(
            tmp_path / "required" / "pairs" / shard["file"])
        assert after.read().equals(before.read().cast(after.schema_arrow))
        assert after.metadata.num_row_groups == before.metadata.num_row_groups
        assert not any(field.nullable for field in after.schema_arrow)

