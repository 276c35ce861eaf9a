"""The short fault-injection run (bench/faults.py): each stage SIGKILLed once at a random moment, then run again.

The full run (20 kills per stage) is `bench/faults.py`; its counts are in bench/LOG.md ("Fault injection").
"""
import sys

import pytest

import faults


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; PR_SET_PDEATHSIG is Linux's")
def test_every_stage_killed_then_rerun_keeps_the_invariants(tmp_path):
    result = faults.run_faults(tmp_path / "faults", list(faults.STAGES), kills=1, seed=5, documents=1000,
                               echo=False)
    broken = [(r["stage"], r["violations"]) for r in result["records"] if r["violations"]]
    assert broken == []
    assert [counts["kills"] for counts in result["stages"].values()] == [1] * len(faults.STAGES)
