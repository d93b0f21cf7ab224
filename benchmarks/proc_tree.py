"""Measure one subprocess the way a user would feel it: wall time and its whole process tree's memory.

In: a command, its environment, a log file. Out (`measured`): exit status, wall seconds, the peak summed
RSS (every 0.2 s) and PSS (every 1 s: shared pages split, so Ray's object store counts once) of every
descendant of this process, the peak process count, and every process at the PSS peak (largest first). Call
`become_subreaper()` once first: orphans (double-forked daemons such as Ray's) then re-parent to this
process instead of init and stay in the measured tree. One measured run at a time: every descendant is
counted as that run's.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil


def become_subreaper() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def reap_orphans() -> None:
    """Collect the exit status of the run's orphans, handed to this subreaper when their parents exited:
    unreaped, they stay zombies for the rest of the benchmark. Call only when no child is being waited on."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class TreeSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_rss = self.peak_pss = 0
        self.peak_procs = 0
        self.largest: list[tuple[float, str]] = []  # (PSS GiB, command line) at the PSS peak
        self.peak_at_s = 0.0  # seconds after the start when the PSS peak was sampled
        self.timeline: list[tuple[float, float]] = []  # (seconds, tree PSS GiB), one point per PSS sample
        self.own_peak: dict[str, float] = {}  # command line -> that process's own highest PSS (GiB)
        self.seen: dict[int, float] = {}  # pid -> create_time, to clean up leftovers afterwards
        # CPU seconds (user + system) each process used, last seen; an exited process keeps its last value.
        self.cpu_last: dict[int, tuple[str, float]] = {}
        self.cpu_timeline: list[tuple[float, dict[str, float]]] = []  # (seconds, {name: CPU s}) every 1 s

    def run(self) -> None:
        me, tick, t0 = psutil.Process(), 0, time.time()
        while not self.stop.is_set():
            rss = pss = live = 0
            who = []
            procs = me.children(recursive=True)
            for p in procs:
                try:
                    if p.status() == psutil.STATUS_ZOMBIE:  # an exited orphan not reaped yet: not a process
                        continue
                    live += 1
                    rss += p.memory_info().rss
                    if tick % 5 == 0:
                        one = p.memory_full_info().pss
                        pss += one
                        name = " ".join(p.cmdline())[:70] or p.name()
                        who.append((round(one / 2**30, 3), name))
                        self.own_peak[name] = max(self.own_peak.get(name, 0.0), round(one / 2**30, 3))
                    self.seen.setdefault(p.pid, p.create_time())
                    if tick % 5 == 0:
                        c = p.cpu_times()
                        self.cpu_last[p.pid] = (short_name(p), c.user + c.system)
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
            self.peak_rss = max(self.peak_rss, rss)
            if tick % 5 == 0:
                self.timeline.append((round(time.time() - t0, 1), round(pss / 2**30, 3)))
                by_name: dict[str, float] = {}
                for name, cpu in self.cpu_last.values():
                    by_name[name] = by_name.get(name, 0.0) + cpu
                self.cpu_timeline.append((round(time.time() - t0, 1), by_name))
            if pss > self.peak_pss:
                self.peak_pss, self.largest = pss, sorted(who, reverse=True)
                self.peak_at_s = round(time.time() - t0, 1)
            self.peak_procs = max(self.peak_procs, live)
            tick += 1
            self.stop.wait(0.2)

    def cpu_at(self, t: float) -> dict[str, float]:
        """CPU seconds by process name from the start to the last sample at or before `t` seconds."""
        best: dict[str, float] = {}
        for when, by_name in self.cpu_timeline:
            if when > t:
                break
            best = by_name
        return {k: round(v, 2) for k, v in sorted(best.items(), key=lambda kv: -kv[1])}

    def leftovers(self) -> list[psutil.Process]:
        alive = []
        for pid, created in self.seen.items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                continue
        return alive


def short_name(p: psutil.Process) -> str:
    """A process's role: Ray's actor title (`ray::Name.method` -> `ray::Name`), else its command, cut."""
    cmd = " ".join(p.cmdline()) or p.name()
    if cmd.startswith("ray::ServeReplica:"):
        return "ray::ServeReplica:" + cmd.split()[0].rsplit(":", 1)[-1].split(".")[0]
    if cmd.startswith("ray::"):
        return cmd.split()[0].split(".")[0]
    return cmd[:60]


def measured(
    cmd: list[str],
    env: dict[str, str],
    log: Path,
    timeout_s: float,
    cwd: Path | None = None,
    cpu_at: Callable[[], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Run `cmd` (output to `log`); return wall time, exit status, peak tree memory, process count, load, and
    CPU seconds by process over the run. `cpu_at`, called after the run (when the moments are known, e.g.
    from its log), gives {label: seconds since the start}: CPU seconds by process up to each is added."""
    load_before = os.getloadavg()
    sampler = TreeSampler()
    t0 = time.time()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        sampler.start()
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    wall = time.time() - t0
    time.sleep(1.0)  # let the tree's own shutdown finish before counting what is left
    sampler.stop.set()
    sampler.join()
    left = sampler.leftovers()
    for p in left:  # only processes this run started (pid and start time match)
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(left, timeout=5)
    reap_orphans()
    return {
        "rc": rc,
        "process_wall_s": wall,
        "peak_rss_gib": sampler.peak_rss / 2**30,
        "peak_pss_gib": sampler.peak_pss / 2**30,
        "peak_processes": sampler.peak_procs,
        "largest_at_pss_peak": sampler.largest,
        "pss_peak_at_s": sampler.peak_at_s,
        "own_peak_pss_gib": sorted(((v, k) for k, v in sampler.own_peak.items()), reverse=True)[:10],
        "pss_timeline": sampler.timeline[:: max(1, len(sampler.timeline) // 60)],
        "leftover_processes_killed": len(left),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "log": str(log),
        "cpu_s_by_process": dict(list(sampler.cpu_at(float("inf")).items())[:12]),
        "cpu_s_by_process_until": {k: sampler.cpu_at(t) for k, t in (cpu_at() if cpu_at else {}).items()},
    }


def last_json_line(log: Path, key: str) -> dict[str, Any] | None:
    """The last line of `log` that is a JSON object holding `key` (a CLI's summary)."""
    import json

    for line in reversed(log.read_text(errors="replace").splitlines()):
        if line.startswith("{") and f'"{key}"' in line:
            return json.loads(line)
    return None
