"""Overrides -> validated `RlvrConfig`.

In: Hydra-syntax overrides (`algorithms=simko`, `trainer.max_steps=5`, `verifiers=[math,logic]`).
Out: a validated config. Composition and override parsing are Hydra's; validation is pydantic's.
Every failure becomes a one-line `RlvrUserError` naming the key.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
from omegaconf import OmegaConf
from pydantic import ValidationError

from rlvr.config.schema import RlvrConfig
from rlvr.errors import RlvrUserError, closest

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("algorithms", "advantage", "verifiers", "model", "data")


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml") if not p.stem.startswith("_"))


# Config maps whose keys are the user's: `generator.engine_kwargs.enforce_eager=false` adds a key to them.
OPEN_DICTS = (
    "generator.engine_kwargs.",
    "algorithm.params.",
    "cluster.runtime_env.",
    "cluster.generator_resources.",
    "cluster.learner_resources.",
    "cluster.verifier_resources.",
)


def _path_shorthand(overrides: list[str]) -> list[str]:
    """`model=<folder>` / `data=<file or hub name>` mean model.path / data.source, not a preset."""
    out = []
    chosen = _chosen_verifiers(overrides)
    for ov in overrides:
        key, eq, value = ov.partition("=")
        target = {"model": "model.path", "data": "data.source"}.get(key)
        if eq and target and value not in group_options(key) and any(c in value for c in "/:.\\"):
            out.append(f"{target}={value}")
        elif eq and key == "algorithms" and value not in group_options(key) and _registered_algorithm(value):
            # A strategy registered from Python (or a plugin) without a preset YAML: its own defaults.
            out += ["~algorithms", f"algorithm.name={value}"]
        elif eq and key == "algorithm.advantage" and value in group_options("advantage"):
            # The estimator by its config key means its option: the old estimator's params leave with it.
            out.append(f"advantage={value}")
        elif eq and key in ("advantage", "algorithm.advantage") and _registered_advantage(value):
            # An estimator registered from Python without an option YAML: an empty option (so the preset's
            # estimator params leave), then its name; its params take their defaults.
            out += ["advantage=_registered", f"algorithm.advantage={value}"]
        elif eq and key.startswith(OPEN_DICTS) and key not in OPEN_DICTS:
            # Free-form maps (engine kwargs, algorithm params, ...) take new keys without Hydra's `+`.
            out.append(f"++{ov}")
        elif eq and key.startswith("verifiers.specs.") and key.count(".") == 3:
            # A verifier's options need no `+` either: each key is checked against the verifier (validate).
            # It must not bring in a verifier the `verifiers=` choice left out (`++` would create the entry).
            name = key.split(".")[2]
            if name not in chosen:
                raise RlvrUserError(
                    f"{key}: '{name}' is not one of this run's verifiers ({', '.join(sorted(chosen))}); "
                    f"add it with verifiers=[...,{name}]"
                )
            out.append(f"++{ov}")
        else:
            out.append(ov)
    return out


def _chosen_verifiers(overrides: list[str]) -> set[str]:
    """The verifier presets a run composes: the schema's `math` plus the `verifiers=` choice (default math)."""
    chosen = {"math"}
    for ov in overrides:
        key, eq, value = ov.lstrip("+").partition("=")
        if eq and key == "verifiers":
            chosen |= {v.strip() for v in value.strip("[]").split(",") if v.strip()}
    return chosen


def _registered_algorithm(name: str) -> bool:
    from rlvr.algorithms import ALGORITHMS

    return name in ALGORITHMS


def _registered_advantage(name: str) -> bool:
    from rlvr.algorithms import ADVANTAGES

    return name in ADVANTAGES


def _compose(overrides: list[str]) -> dict[str, Any]:
    overrides = _path_shorthand(overrides)
    ConfigStore.instance().store(name="base", node=RlvrConfig().model_dump(mode="json"))
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose(config_name="config", overrides=list(overrides))
    except MissingConfigException as e:
        raise _missing_option(overrides, e) from None
    except OverrideParseException as e:
        raise RlvrUserError(f"bad override syntax: {_first_line(e)}") from None
    except ConfigCompositionException as e:
        raise RlvrUserError(_composition_message(e)) from None
    finally:
        GlobalHydra.instance().clear()
    out = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(out, dict)
    return out  # type: ignore[return-value]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _missing_option(overrides: list[str], e: Exception) -> RlvrUserError:
    for ov in overrides:
        key, _, value = ov.lstrip("+~").partition("=")
        if key in GROUPS:
            opts = group_options(key)
            for v in value.strip("[]").split(","):
                if v.strip() and v.strip() not in opts:
                    v = v.strip()
                    return RlvrUserError(
                        f"{key}: unknown option '{v}'; available: {', '.join(opts)}{closest(v, opts)}"
                    )
    return RlvrUserError(_first_line(e))


def _composition_message(e: Exception) -> str:
    text = " ".join(str(e).split())
    cause = e.__cause__
    # Hydra wraps OmegaConf's "Key 'x' is not in struct" error; name the full key and what exists.
    if cause is not None and hasattr(cause, "full_key"):
        full_key = getattr(cause, "full_key", "") or ""
        parent, _, leaf = str(full_key).rpartition(".")
        allowed = _keys_at(parent)
        if allowed:
            return f"unknown config key '{full_key}'; keys under '{parent or '<root>'}': {', '.join(allowed)}{closest(leaf, allowed)}"
        return f"config key '{full_key}': {' '.join(str(cause).split()[:20])}"
    return text


def _keys_at(dotted: str) -> list[str]:
    node: Any = RlvrConfig().model_dump()
    for part in [p for p in dotted.split(".") if p]:
        if not isinstance(node, dict) or part not in node:
            return []
        node = node[part]
    return sorted(node) if isinstance(node, dict) else []


def validate(raw: dict[str, Any], plugins: bool = True) -> RlvrConfig:
    """The schema (pydantic), then, with `plugins`, what only the registries know (`validate_plugins`)."""
    try:
        cfg = RlvrConfig.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        got = err.get("input")
        got_s = "" if isinstance(got, dict | list) else f" (got {got!r})"
        raise RlvrUserError(f"config key '{loc}': {err['msg']}{got_s}") from None
    if plugins:
        validate_plugins(cfg)
    return cfg


def validate_plugins(cfg: RlvrConfig) -> None:
    """Names and params that only the registries know about. Imports the algorithms (torch) and the
    verifiers: `rlvr run` does this while its Ray cluster starts (`rlvr.pipeline.boot`)."""
    from rlvr.algorithms import from_config

    algo = from_config(cfg.algorithm)  # unknown name/advantage/loss: one line naming the key
    try:
        algo.Params.model_validate(cfg.algorithm.params)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise RlvrUserError(
            f"config key 'algorithm.params.{loc}': {err['msg']} (got {err.get('input')!r})"
        ) from None
    from rlvr.verifiers import available as verifiers_available
    from rlvr.verifiers import get as get_verifier

    names = verifiers_available()
    for name, spec in cfg.verifiers.specs.items():
        if name not in names:
            raise RlvrUserError(
                f"verifiers: unknown verifier '{name}'; registered: {', '.join(names)}{closest(name, names)}"
            )
        verifier = get_verifier(name)
        _check_spec_options(name, verifier, set(spec.model_extra or {}))
        in_process = getattr(verifier, "self_guarded", False) and not hasattr(verifier, "timeout_s")
        if in_process and "timeout_s" in spec.model_fields_set:
            raise RlvrUserError(
                f"verifiers.specs.{name}.timeout_s: '{name}' is checked in-process, bounded by construction, "
                "and takes no timeout"
            )
    from rlvr.rewards import RewardPlan

    RewardPlan.from_config(cfg.verifiers)  # group-reward names and weights, before anything starts
    if cfg.eval.max_prompts > cfg.data.eval_max_prompts:  # only eval_max_prompts are ever loaded
        raise RlvrUserError(
            f"eval.max_prompts={cfg.eval.max_prompts}: more than the data.eval_max_prompts="
            f"{cfg.data.eval_max_prompts} evaluation prompts that are loaded; raise data.eval_max_prompts too"
        )


def load_config(overrides: list[str] | tuple[str, ...] = (), plugins: bool = True) -> RlvrConfig:
    """Compose presets and overrides with Hydra, then validate with pydantic (and, with `plugins`, against
    the algorithm and verifier registries; without, call `validate_plugins` before using the config)."""
    return validate(_compose(list(overrides)), plugins=plugins)


def expand_sweep(overrides: list[str]) -> list[list[str]]:
    """`-m algorithms=grpo,simko seed=1` -> one override list per combination (Hydra's parser)."""
    parsed = OverridesParser.create().parse_overrides(overrides=list(overrides))
    axes: list[list[str]] = []
    for ov in parsed:
        key = ov.get_key_element()
        if ov.is_sweep_override():
            axes.append([f"{key}={v}" for v in ov.sweep_string_iterator()])
        else:
            axes.append([ov.input_line or ""])
    return [list(combo) for combo in itertools.product(*axes)]


def to_yaml(cfg: RlvrConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.create(cfg.model_dump(mode="json")))


def _check_spec_options(name: str, verifier: Any, keys: set[str]) -> None:
    """A key under verifiers.specs.<name> that the verifier does not take is a typo, not a silent no-op."""
    from rlvr.verifier_kwargs import ALWAYS_OPTIONS, option_names, takes_any_option

    if not keys or takes_any_option(verifier):
        return
    known = sorted(option_names(verifier) - ALWAYS_OPTIONS)
    for key in sorted(keys - set(known)):
        takes = f"its options: {', '.join(known)}" if known else "it takes no options"
        raise RlvrUserError(
            f"verifiers.specs.{name}.{key}: verifier '{name}' has no option '{key}' ({takes})"
            f"{closest(key, known)}"
        )
