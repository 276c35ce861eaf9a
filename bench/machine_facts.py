"""What a benchmark ran on: CPU model, cores, memory, system, Python, load average (shared by the bench scripts)."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def machine_facts(**versions: str) -> dict:
    """The machine as a dict, plus any library versions given; the load average is taken now (before the run)."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        memory_gb = None
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": memory_gb,
            "system": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            **versions, "load_average": [round(x, 2) for x in os.getloadavg()]}


def machine_line() -> str:
    """One line for a table's title: CPU model, cores, system."""
    facts = machine_facts()
    return f"{facts['cpu']}, {facts['cores']} cores, {facts['system']}"
