"""Match a CPU process's thread count to the CPUs Ray reserved for it.

Ray reserves (fractional) CPUs but does not stop torch and OpenMP from starting one thread per core. On a
small machine the generator's OpenMP threads then spin-wait against the learner's, and both slow down.
Measured on 2 cores: vLLM CPU generation ran 3.2x slower next to one busy thread with its default 2 OpenMP
threads, 1.2x slower with 1. So each CPU component runs floor(reserved CPUs) threads, at least one, unless
the user set OMP_NUM_THREADS, or a count is given (`generator.num_threads`, `learner.num_threads`, or what
sync mode derives). A given count must be passed in: inside a Ray actor OMP_NUM_THREADS is always set,
by Ray itself (to floor(num_cpus)) when the user did not, so it cannot stand for the user's choice there.
"""

from __future__ import annotations

import os


def limit_cpu_threads(num_cpus: float, threads: int | None = None) -> int:
    """Set this process's torch/OpenMP threads to `threads`, else OMP_NUM_THREADS, else floor(num_cpus);
    returns the count. Call before building any model."""
    import torch

    n = threads or int(os.environ.get("OMP_NUM_THREADS") or max(1, int(num_cpus)))
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)
    return n


def adopt_thread_count() -> None:
    """Give the calling (new) thread the process's torch thread count.

    OpenMP keeps its thread count per thread: a thread started after `limit_cpu_threads` begins at the
    library default (one per core) until torch's lazy per-thread init runs inside its first parallel op.
    vLLM's CPU attention reads the count when it builds its metadata (before any torch op in a fresh
    thread) and checks it again in the kernel (after), and aborts on "thread_num (2 vs. 1)". Call this
    first thing in every thread that drives a model.
    """
    import torch

    torch.get_num_threads()  # runs at::internal::lazy_init_num_threads for this thread
