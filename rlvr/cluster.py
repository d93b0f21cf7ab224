"""Connecting to (or starting) the Ray cluster a run uses, and where each component is placed.

In: `ClusterConfig`. Out: a connected Ray driver plus a dict describing the cluster (address,
dashboard, a one-line `message` for the user). A cluster rlvr starts binds every port to loopback
(unless `cluster.host` says otherwise) and requires a per-cluster random token. Must never print or
persist the token: only the path of its 0600 file is returned.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from rlvr.config.schema import ClusterConfig
from rlvr.deploy.auth import apply_env, new_token_file, token_env
from rlvr.generator.object_store import FREE_OBJECTS_ENV

Component = Literal["generator", "learner", "verifier"]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Ray resolves a loopback node IP to the machine's routable IP unless it believes the machine cannot
# host a multi-node cluster; this switch keeps the node IP (and so every bind) on loopback.
_SINGLE_HOST_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _loopback_interface() -> str:
    """The interface holding 127.0.0.1 ('lo' on Linux, 'lo0' on macOS)."""
    import psutil

    for name, addrs in psutil.net_if_addrs().items():
        if any(a.address == "127.0.0.1" for a in addrs):
            return name
    return "lo"


def loopback_env() -> dict[str, str]:
    """What the libraries inside Ray workers read to pick their bind/advertise address: gloo's pair
    sockets (`GLOO_SOCKET_IFNAME`), torch's env:// rendezvous (`MASTER_ADDR`) and vLLM's own sockets
    (`VLLM_HOST_IP`, `VLLM_LOOPBACK_IP`). The learners' TCPStore is bound by `rlvr.learner.process_group`."""
    lo = "127.0.0.1"
    return {
        "GLOO_SOCKET_IFNAME": _loopback_interface(),
        "MASTER_ADDR": lo,
        "VLLM_HOST_IP": lo,
        "VLLM_LOOPBACK_IP": lo,
    }


def component_options(cfg: ClusterConfig, component: Component) -> dict[str, Any]:
    """Ray actor/task options that pin `component` to the nodes advertising its custom resources."""
    resources = {
        "generator": cfg.generator_resources,
        "learner": cfg.learner_resources,
        "verifier": cfg.verifier_resources,
    }[component]
    return {"resources": dict(resources)} if resources else {}


@contextlib.contextmanager
def _loopback_node_ip(active: bool) -> Iterator[None]:
    """Keep Ray from swapping a loopback node IP for the routable one (it would then bind beyond lo)."""
    if not active:
        yield
        return
    from ray._private import ray_constants

    os.environ[_SINGLE_HOST_ENV] = "0"  # read by every Ray process this driver spawns
    saved, ray_constants.ENABLE_RAY_CLUSTER = ray_constants.ENABLE_RAY_CLUSTER, False  # parsed at import
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def _ships_code(cfg: ClusterConfig) -> bool:
    if cfg.ship_code is not None:
        return cfg.ship_code
    return bool(cfg.address) and cfg.address != "auto"


def _connect_existing(cfg: ClusterConfig) -> dict[str, Any]:
    import ray

    if cfg.auth == "token":
        # The token comes from the user's RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH / ~/.ray/auth_token.
        apply_env({"RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token")})
    runtime_env = cfg.runtime_env
    staged: Path | None = None
    if _ships_code(cfg):
        from rlvr.deploy.runtime_env import code_runtime_env

        runtime_env = code_runtime_env(cfg.runtime_env)
        staged = Path(runtime_env["py_modules"][0]).parent
    host = (cfg.address or "").removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    try:
        with _loopback_node_ip(host in LOOPBACK):
            ray.init(address=cfg.address, namespace=cfg.namespace, runtime_env=runtime_env or None)
    finally:  # ray.init has uploaded the staged copy (or failed): it is not read again
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
    msg = f"connected to the Ray cluster at {cfg.address}"
    return {"address": cfg.address, "started": False, "dashboard": None, "message": msg}


_started: set[str] = set()  # GCS addresses of the clusters this process started (`started_here`)


def started_here() -> bool:
    """Whether the cluster this process is connected to is a local one it started (one fixed node)."""
    import ray

    return ray.is_initialized() and ray.get_runtime_context().gcs_address in _started


def _start_local(cfg: ClusterConfig) -> dict[str, Any]:
    import ray

    token_file = None
    if cfg.auth == "token":
        token_file = new_token_file()
        os.environ.pop("RAY_AUTH_TOKEN", None)  # an inline token would win over this cluster's file
        apply_env(token_env(token_file))
        atexit.register(shutil.rmtree, token_file.parent, True)
    else:
        apply_env({"RAY_AUTH_MODE": "disabled"})
    local_only = cfg.host in LOOPBACK
    kwargs: dict[str, Any] = {}
    if local_only:
        kwargs["_node_ip_address"] = "127.0.0.1"
    elif cfg.host not in ("0.0.0.0", "::"):
        kwargs["_node_ip_address"] = cfg.host
    if local_only:
        os.environ.update(loopback_env())  # inherited by every Ray process this cluster starts
    # One node that lives and dies with this driver: Ray Train's node-preemption watcher (one more Python
    # process per training run) has nothing to watch. The user's own setting wins.
    os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
    for key, value in FREE_OBJECTS_ENV.items():  # a replaced weight version leaves the object store sooner
        os.environ.setdefault(key, value)
    with _loopback_node_ip(local_only):
        ctx = ray.init(
            address="local",
            num_cpus=cfg.num_cpus,  # type: ignore[arg-type]
            namespace=cfg.namespace,
            include_dashboard=cfg.dashboard,
            dashboard_host=cfg.host,
            dashboard_port=0,
            runtime_env=cfg.runtime_env or None,
            **kwargs,
        )
    address_info: dict[str, Any] = getattr(ctx, "address_info", {})
    _started.add(ray.get_runtime_context().gcs_address)
    dashboard = f"http://{ctx.dashboard_url}" if cfg.dashboard and ctx.dashboard_url else None
    scope = "local-only (loopback)" if local_only else f"reachable on {cfg.host}"
    auth = f"token auth on, token file {token_file}" if token_file else "token auth OFF"
    where = f"dashboard {dashboard}" if dashboard else "dashboard off (cluster.dashboard=true)"
    msg = f"started a local Ray cluster, {scope}; {where}; {auth}"
    return {
        "address": address_info.get("gcs_address"),
        "started": True,
        "dashboard": dashboard,
        "token_file": str(token_file) if token_file else None,
        "local_only": local_only,
        "session_dir": address_info.get("session_dir"),
        "message": msg,
    }


def connect(cfg: ClusterConfig) -> dict[str, Any]:
    """Start a local cluster (`address` None) or join one ('auto', 'host:port', 'ray://host:port')."""
    import ray

    if ray.is_initialized():
        address = ray.get_runtime_context().gcs_address
        return {
            "address": address,
            "started": False,
            "dashboard": None,
            "message": f"using the Ray cluster this process is already connected to ({address})",
        }
    return _connect_existing(cfg) if cfg.address else _start_local(cfg)


def start_local_for_tests(num_cpus: float = 4) -> dict[str, Any]:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    return connect(ClusterConfig(num_cpus=num_cpus, dashboard=False))
