import sys
from pathlib import Path

# The stage scripts live at the top level of the repository; make them importable from the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
