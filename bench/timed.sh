#!/bin/bash
# Runs "$@" in its own session with an autogroup nice of -10, for a timed run on a machine shared with other work:
#     setsid -w bench/timed.sh .venv/bin/python bench/peers.py ...
# With sched_autogroup_enabled=1 every session is one scheduling group with an equal share of the CPU whatever the
# nice values inside it, so other sessions' niced jobs would otherwise take their full share from a timed run
# (bench/LOG.md, "CBOW"). Needs CAP_SYS_NICE.
echo -10 > /proc/self/autogroup
exec "$@"
