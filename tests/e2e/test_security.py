"""A cluster started the rlvr way (`rlvr.cluster.connect`) in its own process: every listening socket
is on loopback, clients without the right token are refused (GCS and dashboard HTTP), clients with it
get in, and the token appears in no output or Ray log. A full short `rlvr run` (generator replica,
verifiers, Ray Train learners with their process group) also listens on loopback only."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from rlvr.deploy.auth import redact
from rlvr.pipeline.startup import ORDER

pytestmark = pytest.mark.e2e

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
CLUSTER = textwrap.dedent("""
    import json, sys
    from rlvr.cluster import connect
    from rlvr.config.schema import ClusterConfig
    info = connect(ClusterConfig(num_cpus=1, dashboard=True))
    print(json.dumps(info), flush=True)
    sys.stdin.read()  # until the test closes our stdin
    import ray
    ray.shutdown()
""")
CLIENT = textwrap.dedent("""
    import sys, ray
    from rlvr.cluster import connect
    from rlvr.config.schema import ClusterConfig
    connect(ClusterConfig(address=sys.argv[1], auth=sys.argv[2]))
    print("ANSWER", ray.get(ray.remote(lambda: 41 + 1).remote()), flush=True)
""")


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    env["HOME"] = str(home)  # so no ~/.ray/auth_token is picked up by accident
    return env


def _stop(proc: subprocess.Popen, pids: set[int]) -> None:
    if proc.poll() is None and proc.stdin:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what this test started
            proc.wait(timeout=30)
    for pid in pids:  # anything the cluster left behind, by pid
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass


@pytest.fixture(scope="module")
def local_cluster(tmp_path_factory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("home")
    env = _clean_env(home)
    proc = subprocess.Popen(
        [sys.executable, "-c", CLUSTER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    pids: set[int] = set()
    try:
        line = _readline(proc, timeout=120)
        info = json.loads(line)
        pids = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)} | {proc.pid}
        yield {**info, "pids": pids, "proc": proc, "env": env, "stdout_first": line}
    finally:
        _stop(proc, pids)


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        raise TimeoutError(f"cluster did not start in {timeout}s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"cluster process died: {proc.stderr.read()[-2000:]}")
    return line


def _client(
    info: dict[str, Any], extra_env: dict[str, str], auth: str = "token"
) -> subprocess.CompletedProcess:
    env = dict(info["env"], **extra_env)
    return subprocess.run(
        [sys.executable, "-c", CLIENT, info["address"], auth],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _http(url: str, headers: dict[str, str]) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_token_file_is_private_and_never_printed(local_cluster):
    path = Path(local_cluster["token_file"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    token = path.read_text().strip()
    assert len(token) >= 32
    assert "local-only" in local_cluster["message"] and local_cluster["dashboard"] in local_cluster["message"]
    assert token not in local_cluster["stdout_first"]
    logs = [p for p in Path(local_cluster["session_dir"]).rglob("*") if p.is_file()]
    assert logs, "no Ray session files to check"
    for p in logs:
        assert token.encode() not in p.read_bytes(), f"token leaked into {p}"
    assert redact(f"Authorization: Bearer {token}") == "Authorization: Bearer <redacted>"


def test_every_listening_socket_is_loopback(local_cluster):
    pids = {p.pid for p in psutil.Process(local_cluster["proc"].pid).children(recursive=True)}
    pids |= {local_cluster["proc"].pid}
    listening = [
        c for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]
    ports = {c.laddr.port for c in listening}
    gcs_port = int(local_cluster["address"].rsplit(":", 1)[1])
    dash_port = int(local_cluster["dashboard"].rsplit(":", 1)[1])
    assert {gcs_port, dash_port} <= ports  # the check below is not vacuous
    public = [(psutil.Process(c.pid).name(), c.laddr) for c in listening if c.laddr.ip not in LOOPBACK]
    assert not public, f"listening beyond loopback: {public}"


def test_dashboard_http_requires_the_token(local_cluster):
    token = Path(local_cluster["token_file"]).read_text().strip()
    url = f"{local_cluster['dashboard']}/api/jobs/"
    assert _http(url, {}) == 401
    assert _http(url, {"Authorization": "Bearer not-the-token"}) == 403
    assert _http(url, {"Authorization": f"Bearer {token}"}) == 200


def test_gcs_refuses_clients_without_the_token(local_cluster, tmp_path):
    no_token = _client(local_cluster, {"RAY_AUTH_MODE": "disabled"}, auth="none")
    assert no_token.returncode != 0 and "ANSWER" not in no_token.stdout
    wrong = tmp_path / "wrong"
    wrong.write_text("0" * 64)
    bad = _client(local_cluster, {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(wrong)})
    assert bad.returncode != 0 and "ANSWER" not in bad.stdout
    assert "auth" in (bad.stderr + no_token.stderr).lower()


def test_gcs_accepts_the_token(local_cluster):
    ok = _client(
        local_cluster, {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": local_cluster["token_file"]}
    )
    assert "ANSWER 42" in ok.stdout, ok.stderr[-2000:]
    token = Path(local_cluster["token_file"]).read_text().strip()
    assert token not in ok.stdout + ok.stderr


RUN = [
    "trainer.max_steps=2",
    "trainer.prompts_per_step=4",
    "generator.n_samples=4",
    "learner.mini_batch_size=16",
    "learner.micro_batch_size=8",
    "logging.progress=false",
    "logging.tensorboard=false",
]


def _tree_names(root: int) -> set[str]:
    try:
        procs = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    except psutil.Error:
        return set()
    out = set()
    for p in procs:
        try:
            out.add(" ".join(p.cmdline())[:80])
        except psutil.Error:
            continue
    return out


def _listening(root: int) -> dict[tuple[str, int], tuple[int, str]]:
    """(ip, port) -> (pid, command line) of the process in `root`'s tree listening there."""
    try:
        procs = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    except psutil.Error:
        return {}
    out = {}
    for p in procs:
        try:
            conns = p.net_connections(kind="inet")
            cmd = " ".join(p.cmdline())[:80]
        except psutil.Error:  # exited meanwhile
            continue
        out |= {(c.laddr.ip, c.laddr.port): (p.pid, cmd) for c in conns if c.status == psutil.CONN_LISTEN}
    return out


@pytest.mark.slow
def test_full_run_listens_only_on_loopback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    cmd = [sys.executable, "-m", "rlvr.cli", "run", *RUN, f"trainer.output_dir={tmp_path / 'runs'}"]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    seen: dict[tuple[str, int], tuple[int, str]] = {}
    names: set[str] = set()
    try:
        # Poll while it runs: the learners' store and gloo sockets live only as long as training does.
        deadline = time.monotonic() + 900
        while proc.poll() is None and time.monotonic() < deadline:
            seen |= _listening(proc.pid)
            names |= _tree_names(proc.pid)
            time.sleep(0.3)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only what this test started
            proc.wait(timeout=30)
    assert proc.returncode == 0, err[-4000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["accounting"]["trained"] == 2 * 16
    # The start-up timeline (rlvr/pipeline/startup.py, benchmarks/startup.py): every phase, in the order a user waits for them.
    t = summary["startup"]
    assert list(t) == list(ORDER), t
    # Model+prompts and Ray overlap (rlvr/pipeline/boot.py): either may finish first.
    assert 0 < t["config"] <= min(t["prepared"], t["ray"]), t
    assert max(t["prepared"], t["ray"]) <= t["rollout_ready"] <= t["first_generation"], t
    assert t["learners_ready"] <= t["first_step"] and t["first_generation"] <= t["first_step"], t
    assert "[rlvr] start-up, seconds since the process began: imports+config" in err
    # A local run starts no process it does not need: Ray Train's preemption watcher is off (rlvr.cluster).
    assert any("RayTrainWorker" in n for n in names) and not any("PreemptionWatcher" in n for n in names)
    kinds = " ".join(cmd for _, cmd in seen.values())
    assert "RayTrainWorker" in kinds and "ServeReplica" in kinds, sorted(set(seen.values()))  # not vacuous
    public = {addr: who for addr, who in seen.items() if addr[0] not in LOOPBACK}
    # The one documented exception (docs/SECURITY.md): Ray Serve hard-codes its replica's inter-deployment
    # gRPC server to "[::]:0". Exactly one such socket per replica process, nothing else.
    serve_grpc = {a: w for a, w in public.items() if "ServeReplica" in w[1] and a[0] in ("::", "0.0.0.0")}
    others = {a: w for a, w in public.items() if a not in serve_grpc}
    assert not others, f"listening beyond loopback: {others}"
    per_replica = [pid for pid, _ in serve_grpc.values()]
    assert len(per_replica) == len(set(per_replica)) <= 1, serve_grpc  # generator.num_replicas=1
