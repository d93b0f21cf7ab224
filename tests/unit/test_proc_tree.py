"""benchmarks/proc_tree.py counts live processes only: a run's orphans, handed to the benchmark as their
subreaper, are reaped after the run instead of staying zombies that the next run would count."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
_BENCH = Path(__file__).resolve().parents[2] / "benchmarks"

# In a child interpreter: becoming a subreaper would also adopt the orphans of every later test here.
_SCRIPT = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import psutil
from proc_tree import become_subreaper, measured
become_subreaper()
tmp = Path(sys.argv[2])
# The subshell exits at once, so its background sleep is orphaned to us; it exits before the run ends.
cmd = ["sh", "-c", "(sleep 0.3 &); sleep 1.5"]
out = []
for i in range(2):
    r = measured(cmd, {}, tmp / f"{i}.log", timeout_s=30)
    zombies = [p.pid for p in psutil.Process().children() if p.status() == psutil.STATUS_ZOMBIE]
    out.append({"rc": r["rc"], "peak": r["peak_processes"], "zombies_after": zombies})
print(json.dumps(out))
"""


def test_orphans_are_reaped_and_never_counted_by_the_next_run(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(_BENCH), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    first, second = json.loads(r.stdout.strip().splitlines()[-1])
    assert first["rc"] == second["rc"] == 0
    assert first["zombies_after"] == [] and second["zombies_after"] == []
    # sh and its sleep, with the orphan early on: never more than 4, and the second run no more than the first.
    assert 2 <= first["peak"] <= 4 and 2 <= second["peak"] <= first["peak"] + 1
