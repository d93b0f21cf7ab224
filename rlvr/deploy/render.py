"""Render KubeRay manifests for `rlvr run <overrides>` on Kubernetes.

In: a validated `RlvrConfig` and the overrides that produced it. Out: plain manifest dicts (a RayJob,
a RayCluster for interactive use, a ConfigMap with the resolved config, an optional PVC, and a
dashboard Service only when `deploy.expose_dashboard=true`), or YAML files in a folder.
Never renders a secret value: token auth references a Secret the user creates. Never exposes a
port outside the cluster unless asked, and then says so loudly.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import yaml

from rlvr.config.schema import RlvrConfig
from rlvr.deploy.pods import DATA_DIR, labels, pod_template, secret_name, submitter_template
from rlvr.errors import RlvrUserError

GPU_NODE, CPU_NODE = "rlvr_gpu_node", "rlvr_cpu_node"
CHECKPOINTS = f"{DATA_DIR}/checkpoints"  # trainer.storage when the PVC holds checkpoints
OPTIONAL_FILES = {"pvc.yaml", "dashboard-service.yaml"}
CAPACITY = "1000"  # a node advertises plenty of its marker resource; actors each ask for 1
EXPOSE_WARNING = (
    "deploy.expose_dashboard=true: the Ray dashboard gets a LoadBalancer Service reachable "
    "from outside the cluster; anyone who reaches it and holds the token can run code"
)
NO_STORAGE_WARNING = (
    "no deploy.storage and deploy.pvc_size_gib=0: checkpoints stay on the learner pods' own disks "
    "and are lost with them; set deploy.storage=s3://... or deploy.pvc_size_gib"
)


def _set_by_user(overrides: list[str], key: str) -> bool:
    return any(o.lstrip("+").split("=", 1)[0] == key for o in overrides)


def uses_gpus(cfg: RlvrConfig) -> bool:
    return bool(cfg.deploy.gpu_workers and cfg.deploy.gpus_per_worker)


def storage_override(cfg: RlvrConfig) -> str | None:
    """trainer.storage for the job: the bucket, else the PVC, else None (see NO_STORAGE_WARNING)."""
    if cfg.deploy.storage:
        return cfg.deploy.storage
    return CHECKPOINTS if cfg.deploy.pvc_size_gib else None


def pvc_access_mode(cfg: RlvrConfig) -> str:
    """Learners run on worker pods, so a PVC that holds checkpoints is written by several pods: RWX."""
    d = cfg.deploy
    storage = cfg.trainer.storage or storage_override(cfg) or ""
    several_writers = bool(d.pvc_size_gib) and storage.startswith(DATA_DIR)
    mode = d.pvc_access_mode or ("ReadWriteMany" if several_writers else "ReadWriteOnce")
    if several_writers and mode == "ReadWriteOnce":
        raise RlvrUserError(
            "deploy.pvc_access_mode=ReadWriteOnce: the learners on worker pods write checkpoints to the PVC, "
            "which then needs ReadWriteMany (or set deploy.storage=s3://... for checkpoints)"
        )
    return mode


def _check_gpus(cfg: RlvrConfig) -> None:
    d, g, lc = cfg.deploy, cfg.generator, cfg.learner
    have = d.gpu_workers * d.gpus_per_worker
    want = g.num_replicas * g.num_gpus + (lc.num_workers if lc.use_gpu else 0)
    if want > have:
        raise RlvrUserError(
            f"deploy.gpu_workers={d.gpu_workers} x deploy.gpus_per_worker={d.gpus_per_worker} = {have} GPU(s), "
            f"but generator.num_replicas x num_gpus + learner.num_workers need {want:g}"
        )


def job_overrides(cfg: RlvrConfig, overrides: list[str]) -> list[str]:
    """The user's overrides plus what the Kubernetes layout needs (join the cluster, placement, GPUs,
    checkpoint storage, PVC)."""
    d, c = cfg.deploy, cfg.cluster
    gpu_or_cpu = GPU_NODE if d.gpu_workers else CPU_NODE
    cpu_or_gpu = CPU_NODE if d.cpu_workers else GPU_NODE
    extra = ["cluster.address=auto"]
    for field, marker in (("generator", gpu_or_cpu), ("learner", gpu_or_cpu), ("verifier", cpu_or_gpu)):
        if not getattr(c, f"{field}_resources"):
            extra.append(f"++cluster.{field}_resources.{marker}=1")
    if uses_gpus(cfg):
        if not _set_by_user(overrides, "learner.use_gpu"):
            extra.append("learner.use_gpu=true")
        if not _set_by_user(overrides, "generator.num_gpus"):
            extra.append("generator.num_gpus=1")
    storage = storage_override(cfg)
    if storage and not _set_by_user(overrides, "trainer.storage"):
        extra.append(f"trainer.storage={storage}")
    if d.pvc_size_gib and not Path(cfg.trainer.output_dir).is_absolute():
        extra.append(f"trainer.output_dir={DATA_DIR}/{cfg.trainer.output_dir}")
    return [*overrides, *extra]


def _group_resources(cfg: RlvrConfig, components: list[str]) -> dict[str, str]:
    names = {k for comp in components for k in getattr(cfg.cluster, f"{comp}_resources")}
    return {k: CAPACITY for k in sorted(names)}


def _cluster_spec(cfg: RlvrConfig, cluster: str, configmap: str, pvc: str | None) -> dict[str, Any]:
    d = cfg.deploy
    shared_pvc = pvc if pvc_access_mode(cfg) == "ReadWriteMany" else None  # RWO: the head (driver) only
    head = {
        "serviceType": "ClusterIP",
        "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
        "template": pod_template(
            d,
            cluster=cluster,
            role="head",
            container="ray-head",
            cpus=d.head_cpus,
            gpus=0,
            configmap=configmap,
            pvc=pvc,
            head=True,
        ),
    }
    groups = []
    gpu_parts = [p for p in ("generator", "learner") if d.gpu_workers] + (
        [] if d.cpu_workers else ["verifier"]
    )
    cpu_parts = ["verifier"] * bool(d.cpu_workers) + ([] if d.gpu_workers else ["generator", "learner"])
    for name, replicas, cpus, gpus, parts in (
        ("gpu", d.gpu_workers, d.cpus_per_gpu_worker, d.gpus_per_worker, gpu_parts),
        ("cpu", d.cpu_workers, d.cpus_per_cpu_worker, 0, cpu_parts),
    ):
        if not replicas:
            continue
        groups.append(
            {
                "groupName": f"{name}-workers",
                "replicas": replicas,
                "minReplicas": replicas,
                "maxReplicas": replicas,
                "rayStartParams": {"num-gpus": str(gpus)} if gpus else {},
                "resources": _group_resources(cfg, parts),
                "template": pod_template(
                    d,
                    cluster=cluster,
                    role=f"{name}-worker",
                    container="ray-worker",
                    cpus=cpus,
                    gpus=gpus,
                    configmap=configmap,
                    pvc=shared_pvc,
                    head=False,
                ),
            }
        )
    return {
        "rayVersion": d.ray_version,
        "authOptions": {"mode": "token", "secretName": secret_name(d)},
        "enableInTreeAutoscaling": False,
        "headGroupSpec": head,
        "workerGroupSpecs": groups,
    }


def _meta(cfg: RlvrConfig, name: str, cluster: str, role: str) -> dict[str, Any]:
    return {"name": name, "namespace": cfg.deploy.namespace, "labels": labels(cfg.deploy, cluster, role)}


def _dashboard_service(cfg: RlvrConfig, cluster: str) -> dict[str, Any]:
    selector = {"rlvr.io/cluster": cluster, "rlvr.io/role": "head"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(cfg, f"{cluster}-dashboard", cluster, "dashboard"),
        "spec": {
            "type": "LoadBalancer",
            "selector": selector,
            "ports": [{"name": "dashboard", "port": 8265, "targetPort": 8265, "protocol": "TCP"}],
        },
    }


def render(cfg: RlvrConfig, overrides: list[str]) -> dict[str, list[dict[str, Any]]]:
    """File name -> the manifests in it."""
    from rlvr.config import load_config, to_yaml

    d = cfg.deploy
    if cfg.cluster.auth != "token":
        raise RlvrUserError(
            f"cluster.auth={cfg.cluster.auth}: a rendered cluster always uses Ray's token auth (other pods can "
            "reach it); drop the override"
        )
    if not d.gpu_workers and not d.cpu_workers:
        raise RlvrUserError(
            "deploy.gpu_workers and deploy.cpu_workers are both 0: no node would run the work"
        )
    ovs = job_overrides(cfg, list(overrides))
    resolved = load_config(ovs)  # the exact config the job will run, placement included
    if uses_gpus(resolved):
        _check_gpus(resolved)
    job, interactive = f"{d.name}-job", d.name
    configmap, pvc = f"{d.name}-config", (f"{d.name}-data" if d.pvc_size_gib else None)
    out: dict[str, list[dict[str, Any]]] = {}
    out["configmap.yaml"] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(cfg, configmap, d.name, "config"),
            "data": {"config.yaml": to_yaml(resolved), "overrides.txt": shlex.join(ovs) + "\n"},
        }
    ]
    if pvc:
        claim: dict[str, Any] = {
            "accessModes": [pvc_access_mode(cfg)],
            "resources": {"requests": {"storage": f"{d.pvc_size_gib}Gi"}},
        }
        if d.storage_class:
            claim["storageClassName"] = d.storage_class
        out["pvc.yaml"] = [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": _meta(cfg, pvc, d.name, "data"),
                "spec": claim,
            }
        ]
    out["rayjob.yaml"] = [
        {
            "apiVersion": "ray.io/v1",
            "kind": "RayJob",
            "metadata": _meta(cfg, job, job, "job"),
            "spec": {
                "entrypoint": shlex.join(["rlvr", "run", *ovs]),
                "shutdownAfterJobFinishes": True,
                "ttlSecondsAfterFinished": 3600,
                "submissionMode": "K8sJobMode",
                "submitterPodTemplate": submitter_template(d, job),
                "rayClusterSpec": _cluster_spec(resolved, job, configmap, pvc),
            },
        }
    ]
    out["raycluster.yaml"] = [
        {
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "metadata": _meta(cfg, interactive, interactive, "cluster"),
            "spec": _cluster_spec(resolved, interactive, configmap, pvc),
        }
    ]
    if d.expose_dashboard:
        out["dashboard-service.yaml"] = [_dashboard_service(cfg, job), _dashboard_service(cfg, interactive)]
    return out


def _header(cfg: RlvrConfig, overrides: list[str], fname: str) -> str:
    lines = [
        f"# Rendered by: rlvr deploy render {shlex.join(overrides)}".rstrip(),
        "# Re-render instead of editing. Token auth needs the Secret "
        f"'{secret_name(cfg.deploy)}' (key auth_token); see deploy/README.md.",
    ]
    if cfg.deploy.expose_dashboard and fname == "dashboard-service.yaml":
        lines.insert(0, f"# WARNING: {EXPOSE_WARNING}")
    return "\n".join(lines) + "\n"


def render_to_dir(cfg: RlvrConfig, overrides: list[str], out: Path | str) -> list[str]:
    """Write one YAML file per kind into `out`; returns the lines the CLI prints."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"warning: {EXPOSE_WARNING}"] if cfg.deploy.expose_dashboard else []
    files = render(cfg, overrides)
    if storage_override(cfg) is None and not cfg.trainer.storage:
        lines.append(f"warning: {NO_STORAGE_WARNING}")
    for fname, docs in files.items():
        text = "---\n".join(yaml.safe_dump(doc, sort_keys=False, width=1000) for doc in docs)
        (out / fname).write_text(_header(cfg, overrides, fname) + text)
        lines.append(f"wrote {out / fname}")
    for fname in OPTIONAL_FILES - set(files):  # drop what an earlier render wrote but this one does not
        old = out / fname
        if old.is_file() and old.read_text().startswith(("# Rendered by", "# WARNING")):
            old.unlink()
    apply = " ".join(f"-f {out / f}" for f in ("configmap.yaml", "pvc.yaml", "rayjob.yaml") if f in files)
    lines.append(
        f"next: kubectl create secret generic {secret_name(cfg.deploy)} -n {cfg.deploy.namespace} "
        f'--from-literal=auth_token="$(openssl rand -hex 32)" && kubectl apply {apply}'
    )
    return lines
