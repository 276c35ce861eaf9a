#!/usr/bin/env bash
# Whether two checkouts train the same vectors: every stage on the shipped sample, one thread, three modes (sg ns
# window kernel, cbow hs window kernel, sg hs torch step), in each checkout; prints identical or the largest
# difference per mode.
#   git worktree add ../base <commit>; bench/same_vectors.sh ../base .
set -euo pipefail
PY=${PY:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
OUT=$(mktemp -d)
for side in a b; do
  repo=$([ $side = a ] && echo "$1" || echo "$2")
  (cd "$repo"
   D="$OUT/$side"
   $PY prep.py --dataset sample/taiga_ud.txt --data-dir "$D" >/dev/null 2>&1
   $PY convert_to_int.py --data-dir "$D" --min-count 3 >/dev/null 2>&1
   $PY pairs_dataset.py --data-dir "$D" --draws 2 --sample 1e-3 >/dev/null 2>&1
   $PY unigram_table.py --data-dir "$D" >/dev/null 2>&1
   for mode in "sg ns window" "cbow hs window" "sg hs torch"; do
     set -- $mode
     $PY train.py --data-dir "$D" --epochs 2 --dim 50 --threads 1 --neighbour-words --model "$1" --loss "$2" \
       --kernel "$3" >/dev/null 2>&1
     cp "$D/model/embeddings.npy" "$D/$1-$2-$3.npy"
   done)
done
$PY - "$OUT" <<'PYTHON'
import sys
from pathlib import Path
import numpy as np
out = Path(sys.argv[1])
for path in sorted((out / "a").glob("*-*-*.npy")):
    a, b = np.load(path), np.load(out / "b" / path.name)
    print(path.stem, "identical" if a.shape == b.shape and np.array_equal(a, b)
          else f"differ (largest {np.abs(a - b).max() if a.shape == b.shape else 'shapes ' + str((a.shape, b.shape))})")
PYTHON
rm -rf "$OUT"
