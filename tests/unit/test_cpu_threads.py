"""CPU components run as many threads as CPUs they reserved (each case in a fresh process: the setting is
process-wide)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def _threads(num_cpus: float, omp: str | None, threads: int | None = None) -> tuple[int, int, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if omp is not None:
        env["OMP_NUM_THREADS"] = omp
    code = (
        "import os, torch\nfrom rlvr.cpu_threads import limit_cpu_threads\n"
        f"n = limit_cpu_threads({num_cpus}, {threads})\nprint(n, torch.get_num_threads(), os.environ['OMP_NUM_THREADS'])"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    n, torch_n, env_n = out.stdout.split()
    return int(n), int(torch_n), env_n


@pytest.mark.parametrize(
    "num_cpus, omp, expected", [(0.5, None, 1), (0.0, None, 1), (3.0, None, 3), (2.7, None, 2), (0.5, "2", 2)]
)
def test_threads_follow_the_reservation_unless_the_user_chose(num_cpus, omp, expected):
    assert _threads(num_cpus, omp) == (expected, expected, str(expected))


def test_a_given_count_wins_over_the_environment():
    # Inside a Ray actor OMP_NUM_THREADS is Ray's floor(num_cpus), so a configured count must beat it.
    assert _threads(0.5, "1", threads=2) == (2, 2, "2")


def test_a_new_thread_adopts_the_count_before_its_first_torch_op():
    # vLLM's CPU attention aborted with "thread_num (2 vs. 1)" when the engine loop's fresh thread built
    # its metadata at OpenMP's default count and ran its kernel at torch's. Needs 2+ cores to mean anything.
    code = (
        "import ctypes, threading, torch\nfrom rlvr.cpu_threads import limit_cpu_threads\n"
        "from rlvr.generator.engine_loop import EngineLoop\n"
        "gomp = [l.split()[-1] for l in open('/proc/self/maps') if 'gomp' in l][0]\n"
        "omp = ctypes.CDLL(gomp)\nlimit_cpu_threads(1)\nseen = []\n"
        "t = threading.Thread(target=lambda: seen.append(omp.omp_get_max_threads())); t.start(); t.join()\n"
        "class B:\n"
        "    def add(self, *a): seen.append(omp.omp_get_max_threads())\n"
        "    def step(self): return [('r0', [])]\n"
        "loop = EngineLoop(B(), lambda: False, lambda: None)\n"
        "loop.submit(['p'], None).result(timeout=30)\nprint(*seen)"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    plain, in_loop = map(int, out.stdout.split())
    if (os.cpu_count() or 1) > 1:
        assert plain > 1  # a plain new thread really does start at the default: the test is not vacuous
    assert in_loop == 1
