"""Rendered KubeRay manifests: schema-valid (KubeRay CRDs, Kubernetes), token auth on, nothing public,
non-root, GPUs and checkpoint storage carried into the job, one-line errors for bad overrides and layouts
that cannot work, a loud warning when the dashboard is exposed, and the Docker image builds where a
builder exists."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from rlvr.cli import main
from rlvr.config import load_config
from rlvr.deploy.render import EXPOSE_WARNING, render, render_to_dir

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO.parent / "shared" / "kuberay"
EXAMPLES = REPO / "deploy" / "examples"
K8S_VERSION = "1.32.0"
CRD_FILES = {
    "RayCluster": "ray.io_rayclusters.yaml",
    "RayJob": "ray.io_rayjobs.yaml",
    "RayService": "ray.io_rayservices.yaml",
}


def _closed(schema: Any) -> Any:
    """CRD schemas leave objects open; close every object with known properties so typos fail."""
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        if "properties" in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


@pytest.fixture(autouse=True, scope="module")
def _kuberay_crds(shared_dir: Path) -> None:
    """The CRDs live in ../shared/kuberay: without them these schema checks skip (CI=true: fail)."""


@functools.cache
def crd_validator(kind: str) -> jsonschema.Draft7Validator:
    crd = yaml.safe_load((CRD_DIR / CRD_FILES[kind]).read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = _closed(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    schema["properties"]["metadata"] = {"type": "object"}  # ObjectMeta is checked by the API server
    return jsonschema.Draft7Validator(schema)


def validate(doc: dict[str, Any]) -> None:
    if doc["apiVersion"] == "ray.io/v1":
        errors = sorted(crd_validator(doc["kind"]).iter_errors(doc), key=str)
        assert not errors, f"{doc['kind']}: {errors[0].message} at {list(errors[0].absolute_path)}"
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def all_docs(files: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [d for docs in files.values() for d in docs]


def containers(doc: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod spec, container) for every pod template in a RayJob / RayCluster."""
    spec = doc["spec"]
    out = []
    cluster = spec.get("rayClusterSpec", spec) if doc["kind"] == "RayJob" else spec
    templates = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    if "submitterPodTemplate" in spec:
        templates.append(spec["submitterPodTemplate"])
    for t in templates:
        out += [(t["spec"], c) for c in t["spec"]["containers"]]
    return out


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    ovs = ["algorithms=simko", "verifiers=math", "deploy.pvc_size_gib=20", "deploy.gpu_workers=2"]
    return render(load_config(ovs), ovs)


def test_closed_schema_catches_a_typo(rendered):
    job = copy.deepcopy(rendered["rayjob.yaml"][0])
    job["spec"]["rayClusterSpec"]["authOptionz"] = {"mode": "token"}
    with pytest.raises(AssertionError, match="authOptionz"):
        validate(job)
    cm = copy.deepcopy(rendered["configmap.yaml"][0])
    cm["dataz"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(cm)


def test_every_rendered_manifest_validates(rendered):
    assert {"rayjob.yaml", "raycluster.yaml", "configmap.yaml", "pvc.yaml"} <= set(rendered)
    for doc in all_docs(rendered):
        validate(doc)


def test_examples_in_repo_validate_and_are_current(tmp_path):
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert {f.name for f in files} >= {"rayjob.yaml", "raycluster.yaml", "configmap.yaml"}
    for f in files:
        for doc in yaml.safe_load_all(f.read_text()):
            validate(doc)
    ovs = ["algorithms=simko", "verifiers=math"]
    render_to_dir(load_config(ovs), ovs, tmp_path)
    for f in files:
        assert (tmp_path / f.name).read_text() == f.read_text(), f"{f.name} is stale: re-render the examples"


def test_job_runs_the_same_overrides_and_sizes_groups(rendered):
    job = rendered["rayjob.yaml"][0]["spec"]
    assert job["entrypoint"].startswith("rlvr run algorithms=simko verifiers=math deploy.pvc_size_gib=20")
    assert "cluster.address=auto" in job["entrypoint"]
    groups = {g["groupName"]: g for g in job["rayClusterSpec"]["workerGroupSpecs"]}
    assert groups["gpu-workers"]["replicas"] == 2
    assert groups["gpu-workers"]["resources"] == {"rlvr_gpu_node": "1000"}
    assert groups["cpu-workers"]["resources"] == {"rlvr_cpu_node": "1000"}
    gpu_limits = groups["gpu-workers"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu_limits["nvidia.com/gpu"] == "2"  # deploy.gpus_per_worker: a generator and a learner
    resolved = yaml.safe_load(rendered["configmap.yaml"][0]["data"]["config.yaml"])
    assert resolved["algorithm"]["name"] == "simko"
    assert resolved["cluster"]["verifier_resources"] == {"rlvr_cpu_node": 1.0}
    assert resolved["cluster"]["generator_resources"] == {"rlvr_gpu_node": 1.0}
    assert resolved["trainer"]["output_dir"].startswith("/mnt/rlvr/")
    pvc = rendered["pvc.yaml"][0]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "20Gi"
    head = job["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert any(
        v.get("persistentVolumeClaim", {}).get("claimName") == pvc["metadata"]["name"]
        for v in head["volumes"]
    )


def test_gpus_storage_and_placement_reach_the_job(rendered):
    job = rendered["rayjob.yaml"][0]["spec"]
    for ov in ("learner.use_gpu=true", "generator.num_gpus=1", "trainer.storage=/mnt/rlvr/checkpoints"):
        assert ov in job["entrypoint"].split()
    resolved = yaml.safe_load(rendered["configmap.yaml"][0]["data"]["config.yaml"])
    assert resolved["learner"]["use_gpu"] is True and resolved["generator"]["num_gpus"] == 1.0
    assert resolved["cluster"]["learner_resources"] == {"rlvr_gpu_node": 1.0}
    assert resolved["trainer"]["storage"] == "/mnt/rlvr/checkpoints"
    groups = {g["groupName"]: g for g in job["rayClusterSpec"]["workerGroupSpecs"]}
    assert groups["gpu-workers"]["rayStartParams"] == {"num-gpus": "2"}
    assert groups["cpu-workers"]["rayStartParams"] == {}
    # Learners on GPU pods write checkpoints to the PVC: it must be ReadWriteMany and mounted there.
    assert rendered["pvc.yaml"][0]["spec"]["accessModes"] == ["ReadWriteMany"]
    gpu_pod = groups["gpu-workers"]["template"]["spec"]
    mounts = {m["mountPath"] for m in gpu_pod["containers"][0]["volumeMounts"]}
    assert "/mnt/rlvr" in mounts


def test_bucket_storage_needs_no_shared_volume():
    ovs = ["deploy.storage=s3://bucket/rlvr", "deploy.pvc_size_gib=5"]
    files = render(load_config(ovs), ovs)
    job = files["rayjob.yaml"][0]["spec"]
    assert "trainer.storage=s3://bucket/rlvr" in job["entrypoint"].split()
    assert files["pvc.yaml"][0]["spec"]["accessModes"] == ["ReadWriteOnce"]  # only the head writes there
    groups = job["rayClusterSpec"]["workerGroupSpecs"]
    assert all("rlvr-data" not in {v["name"] for v in g["template"]["spec"]["volumes"]} for g in groups)
    for doc in all_docs(files):
        validate(doc)


def test_user_gpu_settings_win():
    ovs = ["learner.use_gpu=false", "generator.num_gpus=0.5"]
    job = render(load_config(ovs), ovs)["rayjob.yaml"][0]["spec"]["entrypoint"].split()
    assert "learner.use_gpu=true" not in job and "generator.num_gpus=1" not in job
    assert "generator.num_gpus=0.5" in job


@pytest.mark.parametrize(
    "ovs, key",
    [
        (["deploy.pvc_size_gib=5", "deploy.pvc_access_mode=ReadWriteOnce"], "deploy.pvc_access_mode"),
        (["learner.num_workers=2"], "deploy.gpu_workers"),
    ],
)
def test_layout_that_cannot_work_is_one_line_error(tmp_path, capsys, ovs, key):
    with pytest.raises(SystemExit) as exc:
        main(["deploy", "render", *ovs, "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err


def test_no_storage_warns(tmp_path, capsys):
    main(["deploy", "render", "--out", str(tmp_path)])
    assert "warning: no deploy.storage" in capsys.readouterr().out


@pytest.mark.slow
def test_docker_image_builds(tmp_path):
    """`deploy/Dockerfile` builds (CPU variant) wherever a Docker builder exists."""
    import shutil
    import subprocess

    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker binary on this machine: the image build cannot be checked here")
    if subprocess.run([docker, "info"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip("docker is installed but no daemon/builder answers (`docker info` fails)")
    tag = f"rlvr-test:{tmp_path.name.lower()[-20:]}"
    cmd = [docker, "build", "-f", "deploy/Dockerfile", "--build-arg", "VARIANT=cpu", "-t", tag, "."]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stderr[-4000:]
    run = subprocess.run([docker, "run", "--rm", tag, "rlvr", "--help"], capture_output=True, text=True)
    subprocess.run([docker, "rmi", "-f", tag], capture_output=True)
    assert run.returncode == 0 and "Usage" in run.stdout


def test_token_auth_on_and_no_secret_value_rendered(rendered):
    for doc in all_docs(rendered):
        assert doc["kind"] != "Secret"
        if doc["kind"] in ("RayJob", "RayCluster"):
            cluster = doc["spec"].get("rayClusterSpec", doc["spec"])
            assert cluster["authOptions"] == {"mode": "token", "secretName": "rlvr-ray-auth"}
    submitter = rendered["rayjob.yaml"][0]["spec"]["submitterPodTemplate"]["spec"]["containers"][0]
    env = {e["name"]: e for e in submitter["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "rlvr-ray-auth",
        "key": "auth_token",
    }


def test_nothing_public_and_non_root(rendered):
    for doc in all_docs(rendered):
        assert doc["kind"] != "Service"
        if doc["kind"] not in ("RayJob", "RayCluster"):
            continue
        cluster = doc["spec"].get("rayClusterSpec", doc["spec"])
        assert cluster["headGroupSpec"]["serviceType"] == "ClusterIP"
        for pod, c in containers(doc):
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert c["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["runAsUser"] == 1000
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert all("hostPort" not in p for p in c.get("ports", []))
            assert not pod.get("hostNetwork")


def test_every_ray_container_frees_released_objects_promptly(rendered):
    """Ray's default 1 s free period put about 0.9 s on the learner's path at every lent publish."""
    from rlvr.generator.object_store import FREE_OBJECTS_ENV

    seen = 0
    for doc in all_docs(rendered):
        if doc["kind"] not in ("RayJob", "RayCluster"):
            continue
        for _pod, c in containers(doc):
            if c["name"] == "ray-job-submitter":  # runs `ray job submit`, not a Ray node
                continue
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            assert all(env.get(k) == v for k, v in FREE_OBJECTS_ENV.items()), c["name"]
            seen += 1
    assert seen >= 2  # the head and at least one worker group


def test_expose_dashboard_warns(tmp_path, capsys):
    main(["deploy", "render", "deploy.expose_dashboard=true", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"warning: {EXPOSE_WARNING}"
    text = (tmp_path / "dashboard-service.yaml").read_text()
    assert text.startswith("# WARNING: ")
    docs = list(yaml.safe_load_all(text))
    assert [d["spec"]["type"] for d in docs] == ["LoadBalancer", "LoadBalancer"]
    for d in docs:
        validate(d)
    main(["deploy", "render", "--out", str(tmp_path)])  # asking no more removes the stale Service
    assert EXPOSE_WARNING not in capsys.readouterr().out
    assert not (tmp_path / "dashboard-service.yaml").exists()


@pytest.mark.parametrize(
    "bad, key",
    [
        ("deploy.gpu_workers=-1", "deploy.gpu_workers"),
        ("deploy.cpu_workers=-3", "deploy.cpu_workers"),
        ("deploy.pvc_size_gib=-1", "deploy.pvc_size_gib"),
    ],
)
def test_bad_override_is_one_line_error(tmp_path, capsys, bad, key):
    with pytest.raises(SystemExit) as exc:
        main(["deploy", "render", bad, "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err
    assert not list(tmp_path.iterdir())


def test_no_worker_groups_is_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["deploy", "render", "deploy.gpu_workers=0", "deploy.cpu_workers=0", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_cpu_only_layout_puts_everything_on_cpu_workers():
    ovs = ["deploy.gpu_workers=0"]
    files = render(load_config(ovs), ovs)
    spec = files["rayjob.yaml"][0]["spec"]["rayClusterSpec"]
    assert [g["groupName"] for g in spec["workerGroupSpecs"]] == ["cpu-workers"]
    assert "use_gpu" not in files["rayjob.yaml"][0]["spec"]["entrypoint"]
    assert spec["workerGroupSpecs"][0]["resources"] == {"rlvr_cpu_node": "1000"}
    for doc in all_docs(files):
        validate(doc)


def test_auth_none_is_refused_for_a_rendered_cluster():
    from rlvr.errors import RlvrUserError

    with pytest.raises(RlvrUserError, match=r"^cluster\.auth=none: a rendered cluster always uses"):
        render(load_config(["cluster.auth=none"]), ["cluster.auth=none"])
