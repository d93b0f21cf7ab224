"""Match a CPU process's thread count to the CPUs Ray reserved for it.

Ray reserves (fractional) CPUs but does not stop torch and OpenMP from starting one thread per core. On a
small machine the generator's OpenMP threads then spin-wait against the learner's, and both slow down.
Measured on 2 cores: vLLM CPU generation ran 3.2x slower next to one busy thread with its default 2 OpenMP
threads, 1.2x slower with 1. So each CPU component runs floor(reserved CPUs) threads, at least one, unless
the user set OMP_NUM_THREADS.
"""

from __future__ import annotations

import os


def limit_cpu_threads(num_cpus: float) -> int:
    """Set this process's torch/OpenMP threads; returns the count. Call before building any model."""
    import torch

    n = int(os.environ.get("OMP_NUM_THREADS") or max(1, int(num_cpus)))
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)
    return n
