"""A real two-node Ray cluster (separate `ray start` processes, loopback, token auth): actors placed
with `component_options` land on the node advertising their custom resources, and a full `rlvr run`
trains and resumes with its learner and generator on a worker node that sees none of the driver's paths.

The worker node runs with its own HOME, `RLVR_CACHE` and working directory, and, where mount namespaces
are available (`unshare --mount`), with an empty tmpfs over the driver's folder (its HOME, cache, model,
run directory), as a pod on another Kubernetes node would. Only `<tmp>/shared` is common to both, like a
ReadWriteMany volume. `two_node_cluster` yields {address, env, tmp, driver_dir, worker_dir, hidden, ...}."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from rlvr.deploy.auth import new_token_file, token_env

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hider(hidden: str) -> list[str] | None:
    """A command prefix that runs a program with an empty tmpfs over `hidden`, or None where impossible."""
    if not shutil.which("unshare"):
        return None
    mount = 'mount -t tmpfs rlvr-hidden "$0" && exec "$@"'
    for userns in ([], ["--user", "--map-root-user"]):
        prefix = ["unshare", *userns, "--mount", "--propagation", "private", "sh", "-c", mount, hidden]
        probe = subprocess.run(
            [*prefix, "test", "!", "-e", f"{hidden}/.probe"], capture_output=True, timeout=30
        )
        if probe.returncode == 0:
            return prefix
    return None


def _start_node(
    args: list[str], env: dict[str, str], log, prefix: list[str] | None = None, cwd: str | None = None
) -> subprocess.Popen:
    cmd = [
        *(prefix or []),
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--block",
        "--disable-usage-stats",
        "--object-store-memory=80000000",
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--metrics-export-port={_free_port()}",
        *args,
    ]
    return subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop_node(proc: subprocess.Popen) -> None:
    try:
        pids = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
    except psutil.Error:
        pids = set()
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: only what this test started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
    for pid in pids:
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass


def _wait_nodes(address: str, env: dict[str, str], n: int, timeout: float) -> None:
    probe = "import ray,sys; ray.init(address=sys.argv[1]); print(sum(1 for x in ray.nodes() if x['Alive']))"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(
            [sys.executable, "-c", probe, address], env=env, capture_output=True, text=True, timeout=90
        )
        if r.returncode == 0 and r.stdout.strip().splitlines()[-1:] == [str(n)]:
            return
        time.sleep(2)
    raise TimeoutError(f"{n} Ray nodes did not come up in {timeout}s")


@pytest.fixture(scope="module")
def two_node_cluster(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Head: {gen_learn: 2} on 127.0.0.2; worker: {verifier_node: 2, worker_node: 2} on 127.0.0.3 with its
    own HOME/cache/cwd and (where possible) the driver's folder hidden. Both token-auth."""
    tmp = tmp_path_factory.mktemp("multinode")
    token_file = new_token_file(tmp)
    driver_dir, worker_dir = tmp / "driver", tmp / "worker"
    for d in (driver_dir / "home", driver_dir / "cache", driver_dir / "work", worker_dir / "home"):
        d.mkdir(parents=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    base.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    env = dict(base, HOME=str(tmp), **token_env(token_file))
    worker_env = dict(env, HOME=str(worker_dir / "home"), RLVR_CACHE=str(worker_dir / "cache"))
    (driver_dir / ".probe").write_text("the worker node must not see this")
    hider = _hider(str(driver_dir))
    # Two distinct loopback addresses: Ray swaps exactly 127.0.0.1 for the routable IP, not 127.0.0.x.
    port = _free_port()
    address = f"127.0.0.2:{port}"
    procs: list[subprocess.Popen] = []
    try:
        with open(tmp / "head.log", "wb") as hlog, open(tmp / "worker.log", "wb") as wlog:
            procs.append(
                _start_node(
                    [
                        "--head",
                        "--node-ip-address=127.0.0.2",
                        f"--port={port}",
                        "--num-cpus=1",
                        "--include-dashboard=false",
                        f"--ray-client-server-port={_free_port()}",
                        "--resources",
                        json.dumps({"gen_learn": 2}),
                    ],
                    env,
                    hlog,
                )
            )
            _wait_nodes(address, env, 1, timeout=120)
            procs.append(
                _start_node(
                    [
                        f"--address={address}",
                        "--node-ip-address=127.0.0.3",
                        "--num-cpus=1",
                        "--resources",
                        json.dumps({"verifier_node": 2, "worker_node": 2}),
                    ],
                    worker_env,
                    wlog,
                    prefix=hider,
                    cwd=str(worker_dir / "home"),
                )
            )
            _wait_nodes(address, env, 2, timeout=120)
            yield {
                "address": address,
                "env": env,
                "token_file": str(token_file),
                "tmp": tmp,
                "driver_dir": driver_dir,
                "worker_dir": worker_dir,
                "worker_pid": procs[1].pid,
                "hidden": hider is not None,
            }
    finally:
        for p in reversed(procs):
            _stop_node(p)


PLACEMENT = textwrap.dedent("""
    import json, sys, ray
    from rlvr.cluster import component_options
    from rlvr.config.schema import ClusterConfig
    ray.init(address=sys.argv[1])
    cfg = ClusterConfig(generator_resources={"gen_learn": 0.1}, learner_resources={"gen_learn": 0.1},
                        verifier_resources={"verifier_node": 0.1})

    @ray.remote(num_cpus=0.1)
    class Where:
        def node(self):
            return ray.get_runtime_context().get_node_id()

    out = {}
    for comp in ("generator", "learner", "verifier"):
        actors = [Where.options(**component_options(cfg, comp)).remote() for _ in range(2)]
        out[comp] = ray.get([a.node.remote() for a in actors], timeout=120)
    nodes = {n["NodeID"]: n["Resources"] for n in ray.nodes() if n["Alive"]}
    out["gen_learn_node"] = [k for k, r in nodes.items() if "gen_learn" in r]
    out["verifier_node"] = [k for k, r in nodes.items() if "verifier_node" in r]
    print("RESULT", json.dumps(out), flush=True)
""")


def test_components_land_on_their_nodes(two_node_cluster):
    r = subprocess.run(
        [sys.executable, "-c", PLACEMENT, two_node_cluster["address"]],
        env=two_node_cluster["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, r.stderr[-3000:]
    out = json.loads(lines[0][len("RESULT ") :])
    (head,), (worker,) = out["gen_learn_node"], out["verifier_node"]
    assert head != worker
    assert set(out["generator"]) == {head} and set(out["learner"]) == {head}
    assert set(out["verifier"]) == {worker}


def test_cluster_refuses_a_driver_without_the_token(two_node_cluster):
    env = {k: v for k, v in two_node_cluster["env"].items() if not k.startswith("RAY_AUTH")}
    env["RAY_AUTH_MODE"] = "disabled"
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import ray,sys; ray.init(address=sys.argv[1]); print('IN')",
            two_node_cluster["address"],
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and "IN" not in r.stdout


def test_rlvr_run_on_two_nodes(two_node_cluster, tmp_path):
    """A short `rlvr run` against the existing cluster: verifiers on the verifier node, the rest on the head."""
    out_dir = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-m",
        "rlvr.cli",
        "run",
        f"cluster.address={two_node_cluster['address']}",
        "++cluster.generator_resources.gen_learn=0.1",
        "++cluster.learner_resources.gen_learn=0.1",
        "++cluster.verifier_resources.verifier_node=0.1",
        "trainer.max_steps=2",
        "trainer.prompts_per_step=4",
        "generator.n_samples=4",
        "learner.mini_batch_size=16",
        "learner.micro_batch_size=8",
        "logging.progress=false",
        f"trainer.output_dir={out_dir}",
    ]
    env = dict(
        two_node_cluster["env"], VLLM_ENABLE_V1_MULTIPROCESSING="0", HOME=os.environ.get("HOME", "/root")
    )
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    # Worker logs of a remote cluster reach the driver's stdout too: the summary is the last JSON line.
    summary = json.loads([ln for ln in r.stdout.splitlines() if ln.startswith('{"run_dir"')][-1])
    assert summary["accounting"]["balanced"] and summary["accounting"]["trained"] == 2 * 16
    resources = _node_resources(two_node_cluster)
    head = next(k for k, v in resources.items() if "gen_learn" in v)
    worker = next(k for k, v in resources.items() if "verifier_node" in v)
    placement = summary["placement"]
    assert placement["generator"] == [head]
    assert placement["learner"] == [head]
    assert set(placement["verifier"]) == {worker}


def _node_resources(cluster: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Node id -> resources of every live node, asked from a separate driver process."""
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json,ray,sys; ray.init(address=sys.argv[1]); "
            "print(json.dumps({n['NodeID']: n['Resources'] for n in ray.nodes() if n['Alive']}))",
            cluster["address"],
        ],
        env=cluster["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return dict(json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1]))


def _node_ids(cluster: dict[str, Any]) -> tuple[str, str]:
    """(head node id, worker node id)."""
    resources = _node_resources(cluster)
    head = next(k for k, v in resources.items() if "gen_learn" in v)
    return head, next(k for k, v in resources.items() if "worker_node" in v)


def _run_on_worker_node(cluster: dict[str, Any], *overrides: str) -> dict[str, Any]:
    """`rlvr run` from the driver's own HOME/cache/cwd, learner and generator forced onto the worker node."""
    driver = cluster["driver_dir"]
    cmd = [
        sys.executable,
        "-m",
        "rlvr.cli",
        "run",
        f"cluster.address={cluster['address']}",
        "++cluster.generator_resources.worker_node=0.1",
        "++cluster.learner_resources.worker_node=0.1",
        "++cluster.verifier_resources.gen_learn=0.1",
        "model.tiny.sft_steps=20",  # a model only this driver has (built into its own cache)
        "trainer.prompts_per_step=4",
        "generator.n_samples=4",
        "learner.mini_batch_size=16",
        "learner.micro_batch_size=8",
        "logging.progress=false",
        "generator.startup_timeout_s=600",  # vLLM on a 1-CPU node next to the learner starts slowly
        "trainer.output_dir=runs",
        f"trainer.storage={cluster['tmp'] / 'shared' / 'ckpt'}",
        *overrides,
    ]
    env = dict(
        cluster["env"],
        VLLM_ENABLE_V1_MULTIPROCESSING="0",
        HOME=str(driver / "home"),
        RLVR_CACHE=str(driver / "cache"),
    )
    r = subprocess.run(cmd, env=env, cwd=driver / "work", capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    # Worker logs of a remote cluster reach the driver's stdout too: the summary is the last JSON line.
    return json.loads([ln for ln in r.stdout.splitlines() if ln.startswith('{"run_dir"')][-1])


@pytest.mark.slow
def test_run_and_resume_with_learner_and_generator_on_a_node_without_driver_paths(two_node_cluster):
    cluster = two_node_cluster
    if not cluster["hidden"]:
        pytest.skip(
            "needs mount namespaces (unshare --mount) to hide the driver's folder from the worker node"
        )
    head, worker = _node_ids(cluster)
    shared = cluster["tmp"] / "shared" / "ckpt"

    first = _run_on_worker_node(cluster, "trainer.max_steps=2", "trainer.run_name=first")
    assert first["accounting"]["balanced"] and first["accounting"]["trained"] == 2 * 16
    assert first["placement"]["generator"] == [worker]
    # The learner wrote its node id into the run directory *as the worker node sees it* (the tmpfs);
    # the driver cannot see that file, the worker node's mount namespace can.
    pids = f"/proc/{cluster['worker_pid']}/root{cluster['driver_dir']}/work/runs/first/learner/pids"
    assert open(f"{pids}/rank0.node").read() == worker
    assert not (cluster["driver_dir"] / "work" / "runs" / "first" / "learner" / "pids").exists()
    assert first["checkpoint"] == str(shared / "first" / "learner" / "checkpoint_000002")
    # The model existed only on the driver: the worker node fetched its own copy into its own cache.
    copies = list((cluster["worker_dir"] / "cache" / "shipped").glob("*/*/config.json"))
    assert copies, "the worker node never received the driver's model"
    assert list((cluster["driver_dir"] / "cache" / "tiny").glob("*/config.json"))

    second = _run_on_worker_node(
        cluster, "trainer.max_steps=3", "trainer.run_name=second", "trainer.resume=latest"
    )
    assert second["accounting"]["balanced"] and second["accounting"]["trained"] == 16  # one more step
    assert second["checkpoint"] == str(shared / "second" / "learner" / "checkpoint_000003")
    meta = json.loads((shared / "second" / "learner" / "checkpoint_000003" / "meta.json").read_text())
    assert meta["step"] == 3
