"""Helpers shared by the pipeline e2e tests."""

from __future__ import annotations

import json
from pathlib import Path


def learner_steps(run_dir: Path) -> list[int]:
    """The learner steps logged so far in a run directory (rows carrying a loss), sorted."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return sorted({json.loads(x)["step"] for x in path.read_text().splitlines() if '"loss"' in x})


def session_stacks(sid: int, limit: int = 40) -> str:
    """py-spy dumps of the Python processes in session `sid` (a child started with start_new_session, and
    the Ray cluster it started), for the message of a test that timed out; says so when py-spy is absent."""
    import shutil
    import subprocess
    import sys

    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return "(py-spy is not installed: no stacks)"
    ps = subprocess.run(["ps", "-eo", "pid=,sid=,args="], capture_output=True, text=True).stdout
    out = []
    for line in ps.splitlines():
        pid, s, args = line.split(None, 2) if len(line.split(None, 2)) == 3 else (line, "", "")
        if s != str(sid) or not ("python" in args or args.startswith("ray::")):
            continue
        r = subprocess.run([spy, "dump", "--pid", pid], capture_output=True, text=True, timeout=30)
        out.append(f"=== {pid} {args[:80]}\n{r.stdout}{r.stderr}")
        if len(out) >= limit:
            break
    return "\n".join(out)
