"""The validated run configuration.

In: a plain dict (from Hydra compose + overrides). Out: `RlvrConfig`, a tree of pydantic
models with `extra="forbid"` so that a typo in a key is an error, not a silent default.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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
    seed: int = 0


class ModelConfig(_Strict):
    path: str = Field("tiny", description="'tiny' (built offline), a local HF folder, or a hub name")
    tiny: TinyModelConfig = TinyModelConfig()
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    trust_remote_code: bool = False


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
    prompt_template: str = "{question}"
    chat_template: bool = False
    max_prompts: int | None = Field(None, ge=1)
    num_procedural: int = Field(2000, ge=1)
    shuffle: bool = True
    seed: int = 0
    eval_source: str | None = None
    eval_max_prompts: int = Field(32, ge=1)


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
    dtype: str = "float32"
    max_model_len: int = Field(256, ge=16)
    kv_cache_space_gib: float = Field(0.5, gt=0)
    engine_kwargs: dict[str, Any] = {}
    startup_timeout_s: float = Field(180.0, gt=0)
    request_timeout_s: float = Field(120.0, gt=0)
    http: bool = Field(
        False, description="expose Serve's HTTP proxy (off: generators are called via handles)"
    )


class VerifierSpec(_Strict):
    """Per-verifier options; unknown keys go to the verifier as keyword arguments."""

    model_config = ConfigDict(extra="allow")

    timeout_s: float = Field(5.0, gt=0)


class VerifiersConfig(_Strict):
    specs: dict[str, VerifierSpec] = {"math": VerifierSpec()}
    pool_size: int = Field(2, ge=1)
    num_cpus: float = Field(0.25, ge=0.0)
    request_timeout_s: float = Field(60.0, gt=0)


class AlgorithmConfig(_Strict):
    name: str = "grpo"
    params: dict[str, Any] = {}


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
    bf16: bool = False
    start_timeout_s: float = Field(300.0, gt=0)


class TrainerConfig(_Strict):
    max_steps: int = Field(60, ge=0)
    prompts_per_step: int = Field(8, ge=1)
    mode: Literal["sync", "async"] = "async"
    max_staleness: int = Field(1, ge=0)
    filter_zero_advantage: bool = False
    seed: int = 0
    save_every: int = Field(0, ge=0, description="0 = only at the end")
    resume: str | None = Field(None, description="'latest' or a checkpoint path")
    eval_every: int = Field(0, ge=0)
    output_dir: str = "runs"
    run_name: str | None = None
    step_timeout_s: float = Field(600.0, gt=0)


class EvalConfig(_Strict):
    n: int = Field(16, ge=1)
    temperature: float = Field(1.0, ge=0.0)
    max_prompts: int = Field(32, ge=1)
    output: str | None = None


class ClusterConfig(_Strict):
    address: str | None = Field(None, description="None = start a local cluster; 'auto' or 'ray://host:port'")
    num_cpus: float | None = Field(None, gt=0)
    host: str = Field("127.0.0.1", description="bind address for ports rlvr opens")
    dashboard: bool = True
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
    gpus_per_worker: int = Field(1, ge=0)
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
    pvc_access_mode: Literal["ReadWriteOnce", "ReadWriteMany"] = "ReadWriteOnce"
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
