"""LoRA adapters through peft: wrap the policy, and turn it back into plain weights for the generator.

In: an HF causal LM and `LearnerConfig.lora`. Out: the peft-wrapped model (only the adapters require grad),
a merged state dict with the base model's parameter names (W + alpha/r * B @ A per adapted layer, in fp32 on
CPU) for the weight store, and checkpoint folders: the adapter alone (`PeftModel.from_pretrained`) and a
merged HF model (`AutoModelForCausalLM.from_pretrained`). Merging never touches the training model: peft's
`merge_and_unload` would fold the adapters into the live weights and drop them. Under ZeRO-3 the caller
gathers the parameters first (as for a full-model publish). Needs the `lora` extra (peft).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rlvr.errors import RlvrUserError

if TYPE_CHECKING:
    from rlvr.config.schema import LoraConfig

EXTRA = "pip install 'rlvr[lora]'"


def _peft() -> Any:
    try:
        import peft
    except ImportError:
        raise RlvrUserError(f"learner.lora.enabled: LoRA needs the lora extra: {EXTRA}") from None
    return peft


def is_lora(model: Any) -> bool:
    """True for a peft-wrapped model (without importing peft when the model cannot be one)."""
    return type(model).__module__.startswith("peft.")


def apply_lora(model: torch.nn.Module, cfg: LoraConfig) -> torch.nn.Module:
    """The model itself when `cfg.enabled` is off; else peft's LoRA wrapper with only the adapters trainable."""
    if not cfg.enabled:
        return model
    peft = _peft()
    config = peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=cfg.target_modules,
        task_type="CAUSAL_LM",
    )
    try:
        wrapped = peft.get_peft_model(model, config)
    except ValueError as e:  # peft: "Target modules {...} not found in the base model"
        msg = " ".join(str(e).split())[:200]
        raise RlvrUserError(f"learner.lora.target_modules: {msg}") from None
    from peft.tuners.lora import LoraLayer

    if isinstance(wrapped.get_output_embeddings(), LoraLayer):
        # The fused policy statistics read the head's .weight directly: an adapter there would be ignored.
        raise RlvrUserError("learner.lora.target_modules: the output head cannot be adapted; leave it out")
    return wrapped


def _adapter_key(key: str) -> bool:
    return any(part.startswith("lora_") for part in key.split("."))


def merged_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """fp32 CPU tensors under the base model's names, adapters merged in; the model is left as it was."""
    if not is_lora(model):
        return {k: v.detach().to("cpu", torch.float32).clone() for k, v in model.state_dict().items()}
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model()  # type: ignore[operator]  # PeftModel's method
    state = {
        key.replace(".base_layer.", "."): value.detach().to("cpu", torch.float32).clone()
        for key, value in base.state_dict().items()
        if not _adapter_key(key)
    }
    with torch.no_grad():
        for name, module in base.named_modules():
            if not isinstance(module, LoraLayer):
                continue
            for adapter in module.active_adapters:
                if adapter in module.merged_adapters or adapter not in module.scaling:
                    continue  # already folded into the base weight, or not on this layer
                # peft's scale * B @ A (layout-aware); every LoRA layer type defines it
                delta = module.get_delta_weight(adapter)  # type: ignore[attr-defined]
                state[f"{name}.weight"] += delta.detach().to("cpu", torch.float32)
    return state


def save_adapter(model: torch.nn.Module, out: str | Path) -> Path:
    """The adapter folder (adapter_config.json + weights) that `PeftModel.from_pretrained(base, out)` loads."""
    if not is_lora(model):
        raise TypeError("save_adapter needs a peft model (learner.lora.enabled=true)")
    out = Path(out)
    model.save_pretrained(str(out))  # type: ignore[operator]  # PeftModel.save_pretrained: adapters only
    return out


def save_merged(
    model: torch.nn.Module, out: str | Path, state: dict[str, torch.Tensor] | None = None
) -> Path:
    """A plain HF folder with the adapters merged in; `state` reuses a `merged_state_dict` already made."""
    out = Path(out)
    merged = state if state is not None else merged_state_dict(model)
    base = model.get_base_model() if is_lora(model) else model  # type: ignore[operator]
    base.save_pretrained(str(out), state_dict=merged)  # type: ignore[operator]  # HF PreTrainedModel
    return out
