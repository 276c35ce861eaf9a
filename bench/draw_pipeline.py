"""Draws src/pipeline.png, the README's picture of the stages and the files between them."""
import matplotlib
from benchlib import ROOT

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

# (script, what it does, file it writes under data/)
STAGES = [
    ("prep.py", "clean + tokenise", "prep/part-*.parquet\ntokens: list<string>"),
    ("convert_to_int.py", "count, vocabulary, ids", "ids/part-*.parquet\n+ vocab.json (one output)"),
    ("pairs_dataset.py", "sub-sample,\ndraw windows", "pairs/shard-*.parquet\nkept stream: id,\nwindow (b, doc start)"),
    ("unigram_table.py", "count^0.75\nalias table", "unigram_alias.npy"),
    ("dataset.py", "rebuild windows,\nstream batches", "(target, context,\nwindow offsets)"),
    ("word2vec.py", "model, Huffman tree,\nnearest()", "w2v/kernels/steps.py: one step\nper model x loss x kernel\n(cpu, torch_steps, triton_steps)"),
    ("train.py", "epochs, checkpoints", "model/vectors.txt .bin\nembeddings.npy, loss.png"),
]


def main() -> None:
    figure, axis = plt.subplots(figsize=(14, 3.6))
    axis.set_xlim(0, len(STAGES) * 2)
    axis.set_ylim(0, 3.6)
    axis.axis("off")
    axis.text(0.05, 3.35, "Taiga (0x7o/taiga, streamed) or local .txt / .jsonl / .parquet", fontsize=10,
              style="italic")
    for i, (script, does, output) in enumerate(STAGES):
        x = i * 2 + 0.15
        axis.add_patch(FancyBboxPatch((x, 1.9), 1.7, 1.1, boxstyle="round,pad=0.05", fc="#dbe9f6", ec="#2b6cb0"))
        axis.text(x + 0.85, 2.7, f"{i + 1}. {script}", ha="center", fontsize=9, weight="bold")
        axis.text(x + 0.85, 2.25, does, ha="center", va="center", fontsize=8)
        axis.add_patch(FancyBboxPatch((x, 0.3), 1.7, 0.95, boxstyle="round,pad=0.05", fc="#fdf1d6", ec="#b7791f"))
        axis.text(x + 0.85, 0.78, output, ha="center", va="center", fontsize=7.5, family="monospace")
        axis.annotate("", xy=(x + 0.85, 1.3), xytext=(x + 0.85, 1.85), arrowprops={"arrowstyle": "->"})
        if i + 1 < len(STAGES):
            axis.annotate("", xy=(x + 2.0, 2.45), xytext=(x + 0.85, 1.3),
                          arrowprops={"arrowstyle": "->", "color": "#718096", "connectionstyle": "arc3,rad=-0.2"})
    figure.tight_layout()
    (ROOT / "src").mkdir(exist_ok=True)
    figure.savefig(ROOT / "src" / "pipeline.png", dpi=110)


if __name__ == "__main__":
    main()
