"""Start-up derivations (`rlvr.pipeline.prepare.derive`): values that follow from others, before any process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlvr.config import load_config
from rlvr.config.schema import KV_MIN_GIB
from rlvr.errors import RlvrUserError
from rlvr.pipeline.prepare import derive, kv_cache_gib

pytestmark = pytest.mark.unit


def _model(tmp_path: Path, max_pos: int = 512) -> str:
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "qwen2", "max_position_embeddings": max_pos})
    )
    return str(tmp_path)


def test_generator_dtype_follows_model_dtype(tmp_path: Path) -> None:
    cfg = load_config(["model.dtype=bfloat16"])  # generator.dtype defaults to auto
    derive(cfg, _model(tmp_path))
    assert cfg.generator.dtype == "bfloat16"
    explicit = load_config(["model.dtype=bfloat16", "generator.dtype=float32"])
    derive(explicit, _model(tmp_path))
    assert explicit.generator.dtype == "float32"  # an explicit choice wins


def test_max_model_len_is_clamped_to_the_model_context(tmp_path: Path) -> None:
    cfg = load_config(["generator.max_model_len=4096", "generator.max_tokens=64"])
    with pytest.warns(UserWarning, match="max_position_embeddings"):
        derive(cfg, _model(tmp_path, 512))
    assert cfg.generator.max_model_len == 512


def test_no_room_for_a_prompt_is_one_line_error(tmp_path: Path) -> None:
    cfg = load_config(["generator.max_model_len=256", "generator.max_tokens=300"])
    with pytest.raises(RlvrUserError, match="generator.max_tokens=300"):
        derive(cfg, _model(tmp_path, 512))


def test_chat_template_turns_off_extra_special_tokens(tmp_path: Path) -> None:
    cfg = load_config(["data.chat_template=true"])
    derive(cfg, _model(tmp_path))
    assert cfg.generator.add_special_tokens is False
    plain = load_config([])
    derive(plain, _model(tmp_path))
    assert plain.generator.add_special_tokens is True
    # A value the user sets is kept, either way.
    for chat, value in ((True, True), (False, False)):
        own = load_config(
            [f"data.chat_template={str(chat).lower()}", f"generator.add_special_tokens={value}"]
        )
        derive(own, _model(tmp_path))
        assert own.generator.add_special_tokens is value


def test_sync_mode_lets_each_component_use_the_shared_cores(tmp_path: Path, monkeypatch) -> None:
    import ray._private.utils as ray_utils

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(ray_utils, "get_num_cpus", lambda: 2)  # the machine, as Ray counts it
    remote = ["cluster.address=auto", "trainer.mode=sync"]
    cfg = load_config([*remote, "generator.num_cpus=1", "learner.cpus_per_worker=1"])
    derive(cfg, _model(tmp_path))
    assert cfg.generator.num_threads == 2 and cfg.learner.num_threads == 2  # what the two reserved
    # A local cluster is this machine alone: the defaults reserve 0.5 + 0.5 CPUs, yet each phase gets every core.
    local = load_config(["trainer.mode=sync"])
    derive(local, _model(tmp_path))
    assert local.generator.num_threads == 2 and local.learner.num_threads == 2
    monkeypatch.setattr(ray_utils, "get_num_cpus", lambda: 6)
    big = load_config(["trainer.mode=sync", "generator.num_replicas=2"])
    derive(big, _model(tmp_path))
    assert big.generator.num_threads == 3 and big.learner.num_threads == 6
    capped = load_config(["trainer.mode=sync", "cluster.num_cpus=3"])
    derive(capped, _model(tmp_path))
    assert capped.generator.num_threads == 3 and capped.learner.num_threads == 3
    elsewhere = load_config([*remote])
    derive(elsewhere, _model(tmp_path))
    # A cluster elsewhere: the driver's own cores say nothing about the nodes the two run on.
    assert elsewhere.generator.num_threads == 1 and elsewhere.learner.num_threads == 1
    asy = load_config(["trainer.mode=async", "generator.num_cpus=1", "learner.cpus_per_worker=1"])
    derive(asy, _model(tmp_path))
    assert asy.generator.num_threads is None and asy.learner.num_threads is None  # floor(own CPUs)
    pinned = load_config(["trainer.mode=sync", "learner.num_threads=1"])
    derive(pinned, _model(tmp_path))
    assert pinned.learner.num_threads == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's choice: sync mode derives nothing over it
    chosen = load_config(["trainer.mode=sync", "generator.num_cpus=1", "learner.cpus_per_worker=1"])
    derive(chosen, _model(tmp_path))
    assert chosen.generator.num_threads is None and chosen.learner.num_threads is None


def test_trust_remote_code_reaches_the_generator(tmp_path: Path) -> None:
    cfg = load_config(["model.trust_remote_code=true"])
    derive(cfg, _model(tmp_path))
    assert cfg.generator.engine_kwargs["trust_remote_code"] is True


def test_the_kv_cache_is_sized_from_the_step(tmp_path: Path) -> None:
    # SmolLM2-135M's shapes: 30 layers, 3 KV heads of 64 -> 23,040 bytes a token in bfloat16.
    shapes = {"model_type": "llama", "max_position_embeddings": 2048, "num_hidden_layers": 30,
              "num_attention_heads": 9, "num_key_value_heads": 3, "hidden_size": 576}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(shapes))
    base = ["model.dtype=bfloat16", "generator.max_model_len=1024", "generator.max_tokens=128"]
    cfg = load_config([*base, "trainer.prompts_per_step=16", "generator.n_samples=8"])
    derive(cfg, str(tmp_path))
    assert cfg.generator.kv_cache_space_gib == round(2 * 16 * 8 * 1024 * 23_040 / 2**30, 3)  # 5.625
    two = load_config(
        [*base, "trainer.prompts_per_step=16", "generator.n_samples=8", "generator.num_replicas=2"]
    )
    derive(two, str(tmp_path))
    assert two.generator.kv_cache_space_gib == round(5.625 / 2, 3)  # each replica gets half the prompts
    small = load_config([*base, "trainer.prompts_per_step=2", "generator.n_samples=4"])
    derive(small, str(tmp_path))
    assert small.generator.kv_cache_space_gib == round(2 * 2 * 4 * 1024 * 23_040 / 2**30, 3)  # 0.352
    explicit = load_config([*base, "generator.kv_cache_space_gib=3"])
    derive(explicit, str(tmp_path))
    assert explicit.generator.kv_cache_space_gib == 3.0  # a user's size wins
    unknown = load_config(["generator.max_model_len=256"])
    (tmp_path / "no_shapes").mkdir()
    derive(unknown, _model(tmp_path / "no_shapes"))
    assert unknown.generator.kv_cache_space_gib == KV_MIN_GIB  # shapes not in config.json: the floor
    tiny = load_config([*base, "trainer.prompts_per_step=1", "generator.n_samples=2"])
    derive(tiny, str(tmp_path))
    assert tiny.generator.kv_cache_space_gib == max(KV_MIN_GIB, round(2 * 2 * 1024 * 23_040 / 2**30, 3))


def test_counted_prompts_shrink_the_kv_cache_but_never_below_one_full_sequence(tmp_path: Path) -> None:
    """Sequences are the longest prompt plus max_tokens, not max_model_len; vLLM refuses to start when one
    max_model_len sequence does not fit, so that is a floor too."""
    shapes = {"model_type": "llama", "max_position_embeddings": 4096, "num_hidden_layers": 30,
              "num_attention_heads": 9, "num_key_value_heads": 3, "hidden_size": 576}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(shapes))
    base = ["model.dtype=bfloat16", "generator.max_model_len=1024", "generator.max_tokens=128"]
    cfg = load_config([*base, "trainer.prompts_per_step=16", "generator.n_samples=8"])
    assert kv_cache_gib(cfg, str(tmp_path), longest_prompt=100) == round(2 * 16 * 8 * 228 * 23_040 / 2**30, 3)
    assert kv_cache_gib(cfg, str(tmp_path), longest_prompt=5000) == kv_cache_gib(cfg, str(tmp_path))
    # 80 layers x 8 KV heads of 128: 327,680 bytes a token; one prompt, one sample.
    big = {**shapes, "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8,
           "hidden_size": 8192}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(big))
    one = load_config([*base, "trainer.prompts_per_step=1", "generator.n_samples=1"])
    assert kv_cache_gib(one, str(tmp_path), longest_prompt=10) == round(1.05 * 1024 * 327_680 / 2**30, 3)


@pytest.mark.parametrize(
    ("native", "overrides", "want"),
    [
        (False, [], "float32"),  # an AVX2-only CPU emulates bf16: float32
        (True, [], "bfloat16"),  # AVX-512 / AMX: bf16 kernels
        (False, ["learner.use_gpu=true"], "bfloat16"),
        (False, ["generator.num_gpus=0.5"], "bfloat16"),
    ],
)
def test_auto_dtype_is_bf16_only_where_it_is_native(monkeypatch, tmp_path: Path, native, overrides, want):
    import rlvr.pipeline.prepare as prep

    monkeypatch.setattr(prep, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr("rlvr.models.dtype.cpu_has_native_bf16", lambda: native)
    cfg = load_config(["model.dtype=auto", *overrides])
    derive(cfg, _model(tmp_path))
    assert (cfg.model.dtype, cfg.generator.dtype) == (want, want)  # the generator follows the resolved one


@pytest.mark.parametrize(
    ("key", "extra"),
    [("model.dtype=bfloat16", []), ("learner.bf16=true", []), ("learner.bf16=true", ["model.dtype=auto"])],
)
def test_asking_for_bf16_on_a_cpu_that_emulates_it_warns_naming_the_key(
    monkeypatch, tmp_path: Path, key, extra
):
    import warnings

    import rlvr.pipeline.prepare as prep

    monkeypatch.setattr(prep, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr("rlvr.models.dtype.cpu_has_native_bf16", lambda: False)
    with pytest.warns(UserWarning, match=f"{key}: this CPU has no native bf16"):
        derive(load_config([key, *extra]), _model(tmp_path))
    monkeypatch.setattr(prep, "cpu_has_native_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # native: no warning
        derive(load_config([key, *extra]), _model(tmp_path))


def test_float16_says_the_learner_trains_in_float32(tmp_path: Path) -> None:
    cfg = load_config(["model.dtype=float16"])
    with pytest.warns(UserWarning, match="model.dtype=float16: .*the learner trains in float32"):
        derive(cfg, _model(tmp_path))
    assert cfg.generator.dtype == "float16"


def test_the_hf_preset_resolves_its_dtype_from_the_hardware() -> None:
    from rlvr.models.dtype import auto_dtype, cpu_has_native_bf16

    assert load_config(["model=hf"]).model.dtype == "auto"
    assert auto_dtype(False) == ("bfloat16" if cpu_has_native_bf16() else "float32")
    assert auto_dtype(True) == "bfloat16"


def test_auto_backend_is_resolved_before_start_up(tmp_path: Path) -> None:
    """The run's config records the backend `auto` chose (here: no weights to count, so vLLM where it
    imports); an explicit one is kept."""
    from rlvr.generator.base import auto_backend

    cfg = load_config([])
    derive(cfg, _model(tmp_path))
    assert cfg.generator.backend == auto_backend(str(tmp_path)) != "auto"
    pinned = load_config(["generator.backend=hf"])
    derive(pinned, _model(tmp_path))
    assert pinned.generator.backend == "hf"


def test_vllm_engine_arguments_keep_vllm_or_name_the_key(tmp_path: Path, monkeypatch) -> None:
    """The HF loop reads only `tokenizer` and `trust_remote_code` of generator.engine_kwargs: under auto other
    keys keep vLLM (even for a small model), and with backend=hf they are a one-line error, never ignored."""
    monkeypatch.setattr("rlvr.pipeline.prepare.auto_backend", lambda path: "hf")  # a model under 20M
    monkeypatch.setattr("rlvr.pipeline.prepare.vllm_installed", lambda: True)
    cfg = load_config(["generator.engine_kwargs.enforce_eager=false"])
    derive(cfg, _model(tmp_path))
    assert cfg.generator.backend == "vllm"
    plain = load_config(["model.trust_remote_code=true"])
    derive(plain, _model(tmp_path))
    assert plain.generator.backend == "hf"  # the HF loop reads that one
    hf = load_config(["generator.backend=hf", "generator.engine_kwargs.enforce_eager=false"])
    with pytest.raises(RlvrUserError, match="generator.engine_kwargs.enforce_eager"):
        derive(hf, _model(tmp_path))
