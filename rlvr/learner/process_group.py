"""The learners' torch.distributed process group, with its rendezvous store bound to the node's IP only.

In: Ray Train's worker group (through `BoundStoreTorchConfig`, a drop-in `TorchConfig`). Out: every worker
in one process group (gloo or nccl). Ray Train's own setup hands `tcp://<node ip>:<port>` to
`init_process_group`, whose TCPStore server listens on *all* interfaces ("::"), whatever host it is
given. Here rank 0 binds a socket to its node IP (127.0.0.1 in a local run, the pod IP in Kubernetes) and
passes it to the TCPStore as `master_listen_fd`, so the store listens only there. Gloo's own sockets
follow `GLOO_SOCKET_IFNAME` (set by `rlvr.cluster` for loopback clusters). Nothing here trains.

This module imports no torch at its top. Ray Train's controller unpickles the config (and runs the
backend's hooks); Ray's own `TorchConfig` module imports torch there, 1.4 s of a core in every start-up
for a process that never touches a tensor. The functions the hooks send to the workers import torch there.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ray.train.backend import Backend, BackendConfig

log = logging.getLogger(__name__)
_LISTEN_FD: int | None = None  # rank 0's bound socket, between `_listen_on_node_ip` and `_init_group`


def _listen_on_node_ip() -> tuple[str, int]:
    """Rank 0: bind a listening socket to this node's Ray IP; its fd becomes the store's."""
    import ray

    global _LISTEN_FD
    addr = ray.util.get_node_ip_address()
    sock = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((addr, 0))
    sock.listen(128)
    port = int(sock.getsockname()[1])
    _LISTEN_FD = sock.detach()  # the TCPStore owns (and closes) it from here on
    return addr, port


def _set_master_env(addr: str, port: int) -> None:
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = addr, str(port)  # for env:// readers


def _init_group(backend: str, world_rank: int, world_size: int, addr: str, port: int, timeout_s: int) -> None:
    import torch.distributed as dist

    timeout = timedelta(seconds=timeout_s)
    if "nccl" in backend:  # fail on a hung collective instead of waiting forever (as Ray Train does)
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
    if world_rank == 0:
        if _LISTEN_FD is None:
            raise RuntimeError("rank 0 has no bound store socket (`_listen_on_node_ip` did not run here)")
        store = dist.TCPStore(
            addr, port, world_size, True, timeout, wait_for_workers=False, master_listen_fd=_LISTEN_FD
        )
    else:
        store = dist.TCPStore(addr, port, world_size, False, timeout)
    dist.init_process_group(backend, store=store, rank=world_rank, world_size=world_size, timeout=timeout)


def _set_torch_env() -> None:
    """On a worker: LOCAL_RANK, WORLD_SIZE and the rest, as Ray Train's torch backend sets them."""
    from ray.train.torch.config import _set_torch_distributed_env_vars

    _set_torch_distributed_env_vars()


def _shutdown(destroy_process_group: bool) -> None:
    """On a worker: Ray Train's own torch teardown (process group, CUDA cache)."""
    from ray.train.torch.config import _shutdown_torch

    _shutdown_torch(destroy_process_group=destroy_process_group)


class _BoundStoreBackend(Backend):  # type: ignore[misc]
    share_cuda_visible_devices: bool = True  # as Ray's torch backend

    def on_start(self, worker_group: Any, backend_config: Any) -> None:
        import ray
        from ray.train._internal.worker_group import WorkerGroup as V1WorkerGroup

        backend = backend_config.backend or "gloo"
        addr, port = worker_group.execute_single(0, _listen_on_node_ip)
        worker_group.execute(_set_master_env, addr=addr, port=port)
        if not isinstance(worker_group, V1WorkerGroup):
            worker_group.execute(_set_torch_env)  # LOCAL_RANK etc., as Ray Train does
        n = len(worker_group)
        ray.get(
            [
                worker_group.execute_single_async(
                    i,
                    _init_group,
                    backend=backend,
                    world_rank=i,
                    world_size=n,
                    addr=addr,
                    port=port,
                    timeout_s=backend_config.timeout_s,
                )
                for i in range(n)
            ]
        )

    def on_shutdown(self, worker_group: Any, backend_config: Any) -> None:
        import ray
        from ray._private import ray_constants
        from ray.exceptions import GetTimeoutError
        from ray.train.constants import (
            DEFAULT_TORCH_PROCESS_GROUP_SHUTDOWN_TIMEOUT_S,
            TORCH_PROCESS_GROUP_SHUTDOWN_TIMEOUT_S,
        )

        futures = worker_group.execute_async(_shutdown, destroy_process_group=len(worker_group) > 1)
        timeout_s = ray_constants.env_integer(
            TORCH_PROCESS_GROUP_SHUTDOWN_TIMEOUT_S, DEFAULT_TORCH_PROCESS_GROUP_SHUTDOWN_TIMEOUT_S
        )
        try:
            ray.get(futures, timeout=timeout_s)
        except GetTimeoutError:
            log.warning("torch process group shutdown timed out after %s s", timeout_s)

    def on_training_start(self, worker_group: Any, backend_config: Any) -> None:
        from ray.train._internal.worker_group import WorkerGroup as V1WorkerGroup

        if isinstance(worker_group, V1WorkerGroup):
            worker_group.execute(_set_torch_env)


@dataclass
class BoundStoreTorchConfig(BackendConfig):  # type: ignore[misc]
    """Ray Train's `TorchConfig` whose process-group store listens on the node IP only (see the module
    docstring). No `init_method`: the store is always the bound one."""

    backend: str | None = None
    timeout_s: int = 1800

    @property
    def backend_cls(self) -> type[Backend]:
        return _BoundStoreBackend

    @property
    def train_func_context(self) -> Any:
        from ray.train.torch.config import TorchConfigContextManager  # read in the driver, used on workers

        return TorchConfigContextManager

    @property
    def framework(self) -> Any:
        from ray.train.v2._internal.util import TrainingFramework

        return TrainingFramework.TORCH

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "timeout_s": self.timeout_s}
