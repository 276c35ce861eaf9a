"""The bench tools' own tests (bench/test_*.py): make test runs them beside tests/. The stage scripts and the bench
tools are importable from them, and so are tests/helpers.py's small corpora."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "bench", ROOT / "tests"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
