"""The validated run configuration.

In: a plain dict (from Hydra compose + overrides). Out: `RlvrConfig`, a tree of pydantic
models with `extra="forbid"` so that a typo in a key is an error, not a silent default.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TinyModelConfig(_Strict):
    """The offline Qwen2-architecture model rlvr builds and warm-starts itself."""

    task: str = "arith"
    hidden_size: int = Field(128, ge=64)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(2, ge=1)
    intermediate_size: int = Field(256, ge=16)
    max_position_embeddings: int = Field(256, ge=32)
    sft_steps: int = Field(1500, ge=0)  # ~40 s on 2 cores; arith acc ~25% at T=1, ~45% greedy
    sft_batch_size: int = Field(32, ge=1)
    sft_lr: float = Field(3e-3, gt=0)
    # A fraction of warm-start answers replaced by a near miss (off by 1 or 10): a model that can compute
    # the answer but also samples carry-style slips, the gap between sampled and greedy accuracy RL can close.
    sft_noise: float = Field(0.0, ge=0.0, lt=1.0)
    seed: int = 0


class ModelConfig(_Strict):
    path: str = Field("tiny", description="'tiny' (built offline), a local HF folder, or a hub name")
    tiny: TinyModelConfig = TinyModelConfig()
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "float32",
        description="auto: bfloat16 on a GPU run or a CPU with native bf16 (AVX-512/AMX), else float32 "
        "(resolved before start-up; emulated bf16 trains about 20x slower)",
    )
    trust_remote_code: bool = False
    tokenizer: str | None = Field(
        None, description="tokenizer folder or hub name; None = the one saved with model.path"
    )


class DataConfig(_Strict):
    source: str = Field(
        "procedural:arith", description="procedural:<task>, a .json/.jsonl/.parquet path, or a hub name"
    )
    split: str = "train"
    question_key: str = "problem"
    answer_key: str = "answer"
    data_source_key: str | None = Field(
        None, description="row field naming the verifier; None = default verifier"
    )
    default_data_source: str = "math"
    prompt_template: str = Field(
        "{question}", description="str.format template; {question} is the row's question ({{ }} for braces)"
    )
    prompt_template_file: str | None = Field(
        None, description="a file whose content replaces prompt_template (multi-line templates)"
    )
    chat_template: bool = Field(
        False, description="render the prompt as the user turn of the tokenizer's chat template"
    )
    system_prompt: str | None = Field(None, description="system message before the user turn (chat_template)")
    answer_format: str = Field(
        "raw",
        pattern=r"^(raw|gsm8k|boxed|regex:.+)$",
        description="how the gold is read from answer_key: raw | gsm8k (#### 72) | boxed | regex:<pattern>",
    )
    hub_config: str | None = Field(
        None, description="dataset config name for a hub source (openai/gsm8k: main)"
    )
    max_prompts: int | None = Field(None, ge=1)
    num_procedural: int = Field(2000, ge=1)
    shuffle: bool = True
    seed: int = 0
    eval_source: str | None = None
    eval_max_prompts: int = Field(32, ge=1)


KV_MIN_GIB = 0.125  # the smallest KV cache rlvr sizes for vLLM on CPU (and the size when none is derived)


class GeneratorConfig(_Strict):
    backend: Literal["auto", "vllm", "hf"] = "auto"
    num_replicas: int = Field(1, ge=1)
    num_cpus: float = Field(0.5, ge=0.0)
    num_gpus: float = Field(0.0, ge=0.0)
    n_samples: int = Field(8, ge=1, description="responses per prompt (group size)")
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(24, ge=1)
    seed: int | None = 0
    stop: list[str] = []
    dtype: str | None = Field(
        "auto", description='engine dtype; "auto" or null: follow model.dtype (resolved before start-up)'
    )
    max_model_len: int = Field(256, ge=16)
    kv_cache_space_gib: float | None = Field(
        None,
        gt=0,
        description="vLLM's KV cache on CPU, GiB; None = twice what one step's sequences need (the "
        "longest prompt + max_tokens, at most max_model_len), at least KV_MIN_GIB (set by rlvr before start-up)",
    )
    engine_kwargs: dict[str, Any] = {}
    startup_timeout_s: float = Field(180.0, gt=0)
    request_timeout_s: float = Field(
        120.0, gt=0, description="seconds every generate request may take at least (a floor)"
    )
    request_timeout_per_token_s: float = Field(
        0.02,
        ge=0.0,
        description="extra seconds per token a request may sample (prompts x n_samples x max_tokens)",
    )
    add_special_tokens: bool | None = Field(
        None,
        description="tokenize prompts with the tokenizer's special tokens; None: on for plain prompts, off "
        "for chat templates (whose text already holds them)",
    )
    num_threads: int | None = Field(
        None,
        ge=1,
        description="torch/OpenMP threads per CPU replica; None = OMP_NUM_THREADS if the user set it, else "
        "floor(num_cpus), or in sync mode (they take turns) the CPUs of the generator and learner together, on a "
        "local cluster all its CPUs",
    )
    http: bool = Field(
        False, description="expose Serve's HTTP proxy (off: generators are called via handles)"
    )


class VerifierSpec(_Strict):
    """Per-verifier options; unknown keys go to the verifier as keyword arguments."""

    model_config = ConfigDict(extra="allow")

    timeout_s: float = Field(5.0, gt=0)
    weight: float = Field(
        1.0, allow_inf_nan=False, description="this verifier's weight in the reward (rlvr.rewards)"
    )
    applies_to: Literal["source", "all"] = Field(
        "source", description="rows it scores: source = rows whose data_source names it; all = every row"
    )


class VerifiersConfig(_Strict):
    specs: dict[str, VerifierSpec] = {"math": VerifierSpec()}
    pool_size: int = Field(2, ge=1)
    num_cpus: float = Field(0.25, ge=0.0)
    request_timeout_s: float = Field(60.0, gt=0)
    group_rewards: list[str] = Field(
        [],
        description="group rewards (rlvr.register_group_reward) as name or name:weight (weight 1 if omitted)",
    )

    @field_validator("group_rewards")
    @classmethod
    def _group_reward_entries(cls, v: list[str]) -> list[str]:
        for entry in v:
            name, sep, weight = entry.partition(":")
            try:
                ok = bool(name.strip()) and (not sep or math.isfinite(float(weight)))
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"entry {entry!r} is not name or name:<finite weight>")
        return v


class AlgorithmConfig(_Strict):
    name: str = "grpo"
    params: dict[str, Any] = {}
    advantage: str | None = Field(
        None,
        description="advantage estimator replacing the preset's (rlvr.algorithms ADVANTAGES); None = preset's",
    )
    loss: str | None = Field(
        None,
        description="policy loss replacing the preset's (rlvr.algorithms POLICY_LOSSES); None = preset's",
    )


class LoraConfig(_Strict):
    """LoRA adapters through peft (`rlvr.learner.lora`); the generator always receives merged weights."""

    enabled: bool = Field(False, description="train LoRA adapters instead of the full model")
    r: int = Field(8, ge=1, description="adapter rank")
    alpha: float = Field(16.0, gt=0, description="scaling numerator: the update is alpha / r * B @ A")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the adapter input")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="module names to adapt, or all-linear (every linear layer but the head)"
    )


class LearnerConfig(_Strict):
    num_workers: int = Field(1, ge=1)
    cpus_per_worker: float = Field(0.5, ge=0.0)
    use_gpu: bool = False
    zero_stage: int = Field(0, ge=0, le=3)
    lr: float = Field(2e-4, gt=0)
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    mini_batch_size: int = Field(32, ge=1, description="responses per optimizer step")
    micro_batch_size: int = Field(16, ge=1, description="responses per forward/backward")
    ppo_epochs: int = Field(1, ge=1)
    logprob_source: Literal["behaviour", "recompute"] = "recompute"
    reference_model: bool = False
    chunk_size: int = Field(1024, ge=1, description="tokens per chunk in the fused policy statistics")
    bf16: bool = Field(
        False,
        description="bf16 weights/activations, fp32 master weights (CPU too); model.dtype=bfloat16 implies it",
    )
    start_timeout_s: float = Field(
        300.0,
        gt=0,
        description="seconds the learners may take to load the model and start (before their first batch "
        "request) without the run being declared stuck, when longer than trainer.step_timeout_s (the "
        "longer of the two applies until then); afterwards trainer.step_timeout_s applies",
    )
    gradient_checkpointing: bool = Field(
        False, description="recompute activations in backward (HF, use_reentrant=False): less memory, slower"
    )
    attn_implementation: Literal["auto", "sdpa", "eager"] = Field(
        "auto",
        description="attention in the learner's passes: auto = eager on CPU with bf16/fp16 weights for a "
        "micro-batch whose attention scores take at most 4 MiB a layer (torch's bf16 CPU flash-attention "
        "backward is slow), else sdpa; or always one of them (rlvr/learner/attention.py)",
    )
    lr_schedule: Literal["constant", "linear", "cosine"] = Field(
        "constant", description="after warm-up: constant, or decay to lr * min_lr_ratio at the last update"
    )
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)
    shuffle: bool = Field(True, description="shuffle a step's responses into mini-batches, anew every epoch")
    off_policy: Literal["none", "tis", "decoupled"] = Field(
        "tis",
        description="importance correction for sampler/learner mismatch and staleness: tis = min(pi_old/"
        "pi_behaviour, is_cap) per token; decoupled = AReaL's decoupled PPO (tokens above is_cap masked); "
        "inert with logprob_source=behaviour, where pi_old is pi_behaviour",
    )
    # >= 1: a cap below the on-policy weight 1 would scale (tis) or mask (decoupled) every token.
    is_cap: float = Field(2.0, ge=1.0, description="cap of the importance weight pi_old / pi_behaviour")
    num_threads: int | None = Field(
        None,
        ge=1,
        description="torch threads per CPU worker; None = OMP_NUM_THREADS if the user set it, else "
        "floor(cpus_per_worker), or in sync mode (where generation and training take turns) the CPUs of the "
        "generator and learner together, on a local cluster all its CPUs",
    )
    lora: LoraConfig = Field(LoraConfig(), description="LoRA adapters (needs the lora extra: peft)")


class TrainerConfig(_Strict):
    max_steps: int = Field(60, ge=0)
    prompts_per_step: int = Field(8, ge=1)
    mode: Literal["sync", "async"] = "async"
    max_staleness: int = Field(1, ge=0)
    filter_zero_advantage: bool = Field(
        False,
        description="DAPO dynamic sampling: drop groups whose verifier rewards are all equal and top up; the "
        "reward compared is the weighted sum of the verifiers and group rewards before the overlong penalty "
        "(so, as DAPO, a length penalty alone does not keep a group)",
    )
    seed: int = 0
    save_every: int = Field(0, ge=0, description="0 = only at the end")
    resume: str | None = Field(None, description="'latest' or a checkpoint path")
    eval_every: int = Field(0, ge=0)
    output_dir: str = "runs"
    storage: str | None = Field(
        None,
        description="checkpoint storage: a local path, a shared mount, or a pyarrow URI (s3://, gs://); "
        "None = the run directory",
    )
    run_name: str | None = None
    step_timeout_s: float = Field(600.0, gt=0)
    overlong: Literal["keep", "filter", "penalty"] = Field(
        "keep",
        description="responses cut at generator.max_tokens: keep their reward, filter them out of the loss "
        "(DAPO overlong filtering), or a soft length penalty over the last overlong_buffer tokens (DAPO)",
    )
    overlong_buffer: int = Field(
        16, ge=1, description="tokens before max_tokens where the soft penalty starts"
    )
    overlong_penalty: float = Field(1.0, ge=0.0, description="penalty at max_tokens (soft, linear ramp)")
    no_answer_warn: float = Field(
        0.95, ge=0.0, le=1.0, description="warn when this share of the first 3 steps' responses has no answer"
    )
    fail_on_no_answer: bool = Field(False, description="stop the run instead of warning (see no_answer_warn)")
    samples_per_step: int = Field(4, ge=0, description="rows appended to <run_dir>/samples.jsonl per step")
    samples_max_mb: float = Field(20.0, gt=0, description="samples.jsonl stops growing at this size")
    max_filter_rounds: int = Field(
        4, ge=1, description="DAPO top-up rounds per step with filter_zero_advantage"
    )


class EvalConfig(_Strict):
    n: int = Field(16, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    max_prompts: int = Field(32, ge=1)
    output: str | None = None


class ClusterConfig(_Strict):
    address: str | None = Field(None, description="None = start a local cluster; 'auto' or 'ray://host:port'")
    num_cpus: float | None = Field(None, gt=0)
    host: str = Field("127.0.0.1", description="bind address for ports rlvr opens")
    dashboard: bool = Field(
        False,
        description="start Ray's dashboard with a local cluster (about 10 more processes and 2-4 s of "
        "start-up on 2 cores: benchmarks/results/startup.json)",
    )
    auth: Literal["token", "none"] = "token"
    generator_resources: dict[str, float] = {}
    learner_resources: dict[str, float] = {}
    verifier_resources: dict[str, float] = {}
    runtime_env: dict[str, Any] = {}
    namespace: str = "rlvr"
    ship_code: bool | None = Field(
        None, description="upload rlvr via runtime_env py_modules; None = for remote addresses"
    )


class LoggingConfig(_Strict):
    tensorboard: bool = True
    jsonl: bool = True
    wandb: bool = False
    wandb_project: str = "rlvr"
    wandb_mode: Literal["online", "offline"] = "offline"
    progress: bool = True


class DeployConfig(_Strict):
    image: str = "rlvr:latest"
    namespace: str = "default"
    name: str = "rlvr"
    gpu_workers: int = Field(1, ge=0)
    gpus_per_worker: int = Field(
        2, ge=0, description="GPUs per GPU pod (default: one generator + one learner)"
    )
    cpu_workers: int = Field(1, ge=0)
    cpus_per_cpu_worker: int = Field(4, ge=1)
    cpus_per_gpu_worker: int = Field(8, ge=1)
    head_cpus: int = Field(2, ge=1)
    memory_gib: int = Field(16, ge=1)
    pvc_size_gib: int = Field(0, ge=0, description="0 = no PVC for checkpoints")
    expose_dashboard: bool = False
    run_as_user: int = Field(1000, ge=0)
    auth_secret: str | None = Field(
        None, description="Secret with key auth_token (you create it); None = <name>-ray-auth"
    )
    ray_version: str = "2.60.0"
    pvc_access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] | None = Field(
        None,
        description="None = ReadWriteMany when worker pods write checkpoints to the PVC, else ReadWriteOnce",
    )
    storage: str | None = Field(
        None, description="trainer.storage for the job (s3://..., gs://...); None = the PVC, if any"
    )
    storage_class: str | None = None


class RlvrConfig(_Strict):
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    generator: GeneratorConfig = GeneratorConfig()
    verifiers: VerifiersConfig = VerifiersConfig()
    algorithm: AlgorithmConfig = AlgorithmConfig()
    learner: LearnerConfig = LearnerConfig()
    trainer: TrainerConfig = TrainerConfig()
    eval: EvalConfig = EvalConfig()
    cluster: ClusterConfig = ClusterConfig()
    logging: LoggingConfig = LoggingConfig()
    deploy: DeployConfig = DeployConfig()
