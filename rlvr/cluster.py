"""Connecting to (or starting) the Ray cluster a run uses.

In: `ClusterConfig`. Out: a connected Ray driver. Ports rlvr opens bind to loopback unless the
config says otherwise. Must never print or persist an auth token.
"""

from __future__ import annotations

import os
from typing import Any

from rlvr.config.schema import ClusterConfig


def connect(cfg: ClusterConfig) -> dict[str, Any]:
    import ray

    if ray.is_initialized():
        return {"address": ray.get_runtime_context().gcs_address, "started": False}
    if cfg.address:
        ray.init(address=cfg.address, namespace=cfg.namespace, runtime_env=cfg.runtime_env or None)
        return {"address": cfg.address, "started": False}
    ctx = ray.init(
        num_cpus=cfg.num_cpus,
        namespace=cfg.namespace,
        include_dashboard=cfg.dashboard,
        dashboard_host=cfg.host,
        _node_ip_address=cfg.host,
        runtime_env=cfg.runtime_env or None,
    )
    return {"address": ctx.address_info.get("gcs_address"), "dashboard": ctx.dashboard_url, "started": True}


def start_local_for_tests(num_cpus: float = 4) -> dict[str, Any]:
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    return connect(ClusterConfig(num_cpus=num_cpus, dashboard=False))
