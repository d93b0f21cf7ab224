"""Pod templates for the Ray head and worker groups of a rendered KubeRay manifest.

In: `DeployConfig` and what each pod must mount. Out: plain dicts (Kubernetes PodTemplateSpec).
Every container runs as a non-root user with no privilege escalation and no capabilities; nothing
here creates a Service or carries a secret value (only references to a user-created Secret).
"""

from __future__ import annotations

from typing import Any

from rlvr.config.schema import DeployConfig
from rlvr.generator.object_store import FREE_OBJECTS_ENV

CONFIG_DIR = "/etc/rlvr"
DATA_DIR = "/mnt/rlvr"
LABEL = "rlvr.io"


def labels(d: DeployConfig, cluster: str, role: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "rlvr",
        "app.kubernetes.io/instance": d.name,
        f"{LABEL}/cluster": cluster,
        f"{LABEL}/role": role,
    }


def secret_name(d: DeployConfig) -> str:
    return d.auth_secret or f"{d.name}-ray-auth"


def auth_env(d: DeployConfig) -> list[dict[str, Any]]:
    """Token auth for a container KubeRay does not manage itself (the RayJob submitter)."""
    ref = {"secretKeyRef": {"name": secret_name(d), "key": "auth_token"}}
    return [{"name": "RAY_AUTH_MODE", "value": "token"}, {"name": "RAY_AUTH_TOKEN", "valueFrom": ref}]


def container_security(d: DeployConfig) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": d.run_as_user,
        "runAsGroup": d.run_as_user,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security(d: DeployConfig) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": d.run_as_user,
        "runAsGroup": d.run_as_user,
        "fsGroup": d.run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _resources(cpus: int, memory_gib: int, gpus: int) -> dict[str, Any]:
    amount = {"cpu": str(cpus), "memory": f"{memory_gib}Gi"}
    limits = dict(amount, **({"nvidia.com/gpu": str(gpus)} if gpus else {}))
    return {"requests": dict(amount), "limits": limits}


def pod_template(
    d: DeployConfig,
    *,
    cluster: str,
    role: str,
    container: str,
    cpus: int,
    gpus: int,
    configmap: str,
    pvc: str | None,
    head: bool,
) -> dict[str, Any]:
    mounts = [
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "rlvr-config", "mountPath": CONFIG_DIR, "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory"}},
        {"name": "rlvr-config", "configMap": {"name": configmap}},
    ]
    if pvc:
        mounts.append({"name": "rlvr-data", "mountPath": DATA_DIR})
        volumes.append({"name": "rlvr-data", "persistentVolumeClaim": {"claimName": pvc}})
    spec: dict[str, Any] = {
        "name": container,
        "image": d.image,
        "imagePullPolicy": "IfNotPresent",
        "resources": _resources(cpus, d.memory_gib, gpus),
        "securityContext": container_security(d),
        "volumeMounts": mounts,
        "env": [
            {"name": "RAY_DEDUP_LOGS", "value": "0"},
            *({"name": k, "value": v} for k, v in FREE_OBJECTS_ENV.items()),
        ],
    }
    if head:
        spec["ports"] = [
            {"containerPort": 6379, "name": "gcs-server"},
            {"containerPort": 8265, "name": "dashboard"},
            {"containerPort": 10001, "name": "client"},
        ]
    return {
        "metadata": {"labels": labels(d, cluster, role)},
        "spec": {"securityContext": pod_security(d), "containers": [spec], "volumes": volumes},
    }


def submitter_template(d: DeployConfig, cluster: str) -> dict[str, Any]:
    """The pod that runs `ray job submit`; KubeRay fills in its command."""
    c = {
        "name": "ray-job-submitter",
        "image": d.image,
        "env": auth_env(d),
        "resources": _resources(1, 1, 0),
        "securityContext": container_security(d),
    }
    return {
        "metadata": {"labels": labels(d, cluster, "submitter")},
        "spec": {"restartPolicy": "Never", "securityContext": pod_security(d), "containers": [c]},
    }
